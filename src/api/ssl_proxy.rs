//! `ngx.ssl.proxysslcert` and `ngx.ssl.proxysslverify`'s C side:
//! lua-nginx-module master's `ngx_http_lua_ffi_proxy_ssl_*` functions, with
//! its names, C signatures and messages, acting on the upstream connection
//! of the request (proxy_ssl_*_by_lua*), and `ngx.ssl`'s
//! `ngx_http_lua_ffi_get_upstream_ssl_pointer`.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use nginx_sys::{
    BIO_free, ERR_clear_error, EVP_PKEY_free, SSL, SSL_certs_clear, SSL_session_reused, SSL_version, X509,
    X509_STORE_CTX, X509_STORE_CTX_get_error, X509_STORE_CTX_get0_cert, X509_STORE_CTX_set_error, X509_free,
    X509_up_ref, d2i_PrivateKey_bio, ngx_http_request_t,
};

use super::ssl::{ERROR, OK, fail, mem_bio_or_fail, set_chain, set_der_chain, set_pkey};
use crate::runtime::proxy_ssl;

type Err = *mut *const c_char;

/// The SSL object of the request's upstream connection.
///
/// # Safety
/// `r` must be null or a live request.
unsafe fn upstream_ssl(r: *mut ngx_http_request_t) -> Result<*mut SSL, &'static CStr> {
    // SAFETY: per the contract; the upstream's connection is live while set.
    unsafe {
        if r.is_null() || (*r).upstream.is_null() {
            return Err(c"bad request");
        }
        let c = (*(*r).upstream).peer.connection;
        if c.is_null() || (*c).ssl.is_null() {
            return Err(c"bad upstream connection");
        }
        let ssl = (*(*c).ssl).connection as *mut SSL;
        if ssl.is_null() {
            return Err(c"bad ssl conn");
        }
        Ok(ssl)
    }
}

macro_rules! upstream_ssl_or {
    ($r:expr, $err:expr, $ret:expr) => {
        match upstream_ssl($r) {
            Ok(s) => s,
            Err(m) => {
                fail($err, m);
                return $ret;
            }
        }
    };
}

/// The certificate check under way for the request's upstream handshake.
unsafe fn store_or(r: *mut ngx_http_request_t, err: Err) -> Option<*mut X509_STORE_CTX> {
    // SAFETY: per upstream_ssl.
    let ssl = match unsafe { upstream_ssl(r) } {
        Ok(s) => s,
        Err(m) => {
            // SAFETY: err is the caller's.
            unsafe { fail(err, m) };
            return None;
        }
    };
    let store = proxy_ssl::store_of(ssl);
    if store.is_none() {
        // SAFETY: err is the caller's.
        unsafe { fail(err, c"bad lua context") };
    }
    store
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_get_tls1_version(
    r: *mut ngx_http_request_t,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe { SSL_version(upstream_ssl_or!(r, err, ERROR)) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_clear_certs(
    r: *mut ngx_http_request_t,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe {
            SSL_certs_clear(upstream_ssl_or!(r, err, ERROR));
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_set_der_certificate(
    r: *mut ngx_http_request_t,
    data: *const c_char,
    len: usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; data has len bytes.
        unsafe {
            let ssl = upstream_ssl_or!(r, err, ERROR);
            let Some(bio) = mem_bio_or_fail(data.cast(), len, err) else {
                return ERROR;
            };
            // A client certificate: nothing for $ssl_server_* to note.
            let rc = set_der_chain(ssl, bio, err, false);
            BIO_free(bio);
            if rc != OK {
                ERR_clear_error();
            }
            rc
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_set_der_private_key(
    r: *mut ngx_http_request_t,
    data: *const c_char,
    len: usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; data has len bytes.
        unsafe {
            let ssl = upstream_ssl_or!(r, err, ERROR);
            let Some(bio) = mem_bio_or_fail(data.cast(), len, err) else {
                return ERROR;
            };
            let pkey = d2i_PrivateKey_bio(bio, ptr::null_mut());
            BIO_free(bio);
            if pkey.is_null() {
                ERR_clear_error();
                return fail(err, c"d2i_PrivateKey_bio() failed");
            }
            let rc = set_pkey(ssl, pkey.cast(), err);
            EVP_PKEY_free(pkey);
            rc
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_set_cert(
    r: *mut ngx_http_request_t,
    cdata: *mut c_void,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; cdata is a parsed chain.
        unsafe { set_chain(upstream_ssl_or!(r, err, ERROR), cdata, err) }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_set_priv_key(
    r: *mut ngx_http_request_t,
    cdata: *mut c_void,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; cdata is a parsed key.
        unsafe {
            let ssl = upstream_ssl_or!(r, err, ERROR);
            if cdata.is_null() {
                return fail(err, c"invalid private key");
            }
            set_pkey(ssl, cdata, err)
        }
    })
}

/// OpenSSL takes the error of the check as the handshake's verify result
/// (what nginx's `proxy_ssl_verify` looks at after the handshake).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_set_verify_result(
    r: *mut ngx_http_request_t,
    verify_result: c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; the store lives while the
        // verify callback runs (store_of checks that).
        unsafe {
            let Some(store) = store_or(r, err) else {
                return ERROR;
            };
            X509_STORE_CTX_set_error(store, verify_result);
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_get_verify_result(
    r: *mut ngx_http_request_t,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: as in set_verify_result.
        unsafe {
            let Some(store) = store_or(r, err) else {
                return ERROR;
            };
            X509_STORE_CTX_get_error(store)
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_get_verify_cert(
    r: *mut ngx_http_request_t,
    err: Err,
) -> *mut c_void {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: as in set_verify_result; the caller owns the reference
        // taken here (freed by ngx_http_lua_ffi_proxy_ssl_free_verify_cert).
        unsafe {
            let Some(store) = store_or(r, err) else {
                return ptr::null_mut();
            };
            let x509 = X509_STORE_CTX_get0_cert(store);
            if x509.is_null() || X509_up_ref(x509) == 0 {
                fail(err, c"get verify result failed");
                return ptr::null_mut();
            }
            x509.cast()
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_proxy_ssl_free_verify_cert(cdata: *mut c_void) {
    crate::glue::catch((), || {
        if !cdata.is_null() {
            // SAFETY: a reference from get_verify_cert, freed once (ffi.gc).
            unsafe { X509_free(cdata as *mut X509) }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_get_upstream_ssl_pointer(
    r: *mut ngx_http_request_t,
    err: Err,
) -> *mut c_void {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: r comes from get_request; the upstream's connection is
        // live while set.
        unsafe {
            let msg = if r.is_null() {
                c"bad request"
            } else if (*r).upstream.is_null() {
                c"bad upstream"
            } else if (*(*r).upstream).peer.connection.is_null() {
                c"bad peer connection"
            } else {
                let c = (*(*r).upstream).peer.connection;
                if !(*c).ssl.is_null() && !(*(*c).ssl).connection.is_null() {
                    return (*(*c).ssl).connection.cast();
                }
                c"not ssl connection"
            };
            fail(err, msg);
            ptr::null_mut()
        }
    })
}

/// `ngx.ssl.ssl_session_reused(ssl)`: 1 or 0, or -1 unless `ssl` is the
/// SSL object of the request's own connection or of its upstream's (the
/// pointers `get_req_ssl_pointer` / `get_upstream_ssl_pointer` give).
/// lua-resty-core calls OpenSSL's `SSL_session_reused` on any cdata, which
/// a null or stale pointer crashes; ours only takes a live one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_session_reused(
    r: *mut ngx_http_request_t,
    ssl: *mut c_void,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; only a pointer equal to one of
        // its live SSL objects is handed to OpenSSL.
        unsafe {
            if r.is_null() || ssl.is_null() {
                return ERROR;
            }
            let own = super::ssl::ssl_of(r).ok();
            let upstream = upstream_ssl(r).ok();
            let ssl = ssl as *mut SSL;
            if own != Some(ssl) && upstream != Some(ssl) {
                return ERROR;
            }
            SSL_session_reused(ssl)
        }
    })
}
