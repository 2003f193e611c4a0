//! `ngx.ssl.verify_client`'s C side: asks the client for a certificate in
//! ssl_certificate_by_lua*, optionally against CA certificates of its own.
//! As with nginx's `ssl_verify_client optional`, a failed verification does
//! not end the handshake: `$ssl_client_verify` tells.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use nginx_sys::{
    OPENSSL_STACK, OPENSSL_sk_new_null, OPENSSL_sk_num, OPENSSL_sk_pop_free, OPENSSL_sk_push,
    OPENSSL_sk_value, SSL_ctrl, SSL_set_client_CA_list, SSL_set_verify, SSL_set_verify_depth, X509,
    X509_NAME_dup, X509_NAME_free, X509_STORE_CTX, X509_STORE_add_cert, X509_STORE_free, X509_STORE_new,
    X509_get_subject_name, ngx_http_request_t, ngx_http_ssl_module, ngx_http_ssl_srv_conf_t,
};
use ngx::http::Request;

use super::ssl::{ERROR, OK, fail, ssl_of};
use crate::runtime::context;
use crate::runtime::ctx::RequestCtx;

const SSL_VERIFY_PEER: c_int = 1;
const SSL_CTRL_SET_VERIFY_CERT_STORE: c_int = 106;

unsafe extern "C" fn accept_any(_ok: c_int, _store: *mut X509_STORE_CTX) -> c_int {
    1
}

unsafe extern "C" fn free_name(p: *mut c_void) {
    // SAFETY: an X509_NAME of a list being freed.
    unsafe { X509_NAME_free(p.cast()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_verify_client(
    r: *mut ngx_http_request_t,
    ca_certs: *mut c_void,
    depth: c_int,
    err: *mut *const c_char,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: as in verify_client.
        unsafe { verify_client(r, ca_certs, ptr::null_mut(), depth, err) }
    })
}

/// lua-nginx-module master's `verify_client(client_certs, depth,
/// trusted_certs)`: master changed `ngx_http_lua_ffi_ssl_verify_client` to
/// take the trusted chain too, which lua-resty-core 0.1.25's declaration
/// of it (kept above) does not; our Lua face calls this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_verify_client_trusted(
    r: *mut ngx_http_request_t,
    client_certs: *mut c_void,
    trusted_certs: *mut c_void,
    depth: c_int,
    err: *mut *const c_char,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: as in verify_client.
        unsafe { verify_client(r, client_certs, trusted_certs, depth, err) }
    })
}

/// Asks the client for a certificate; `client_certs` are trusted and named
/// to the client as acceptable CAs, `trusted_certs` only trusted.
///
/// # Safety
/// r comes from get_request; each chain is null or a chain of
/// ngx_http_lua_ffi_parse_*_cert.
unsafe fn verify_client(
    r: *mut ngx_http_request_t,
    client_certs: *mut c_void,
    trusted_certs: *mut c_void,
    depth: c_int,
    err: *mut *const c_char,
) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        match RequestCtx::get(Request::from_ngx_http_request(r)) {
            None => return fail(err, c"no request ctx found"),
            Some(ctx) if !ctx.context.is(context::SSL_CERT) => {
                return fail(err, c"API disabled in the current context");
            }
            Some(_) => {}
        }
        let ssl = match ssl_of(r) {
            Ok(s) => s,
            Err(m) => return fail(err, m),
        };
        SSL_set_verify(ssl, SSL_VERIFY_PEER, Some(accept_any));
        let depth = if depth < 0 {
            let sscf = *(*r).srv_conf.add(ngx_http_ssl_module.ctx_index) as *const ngx_http_ssl_srv_conf_t;
            sscf.as_ref().map_or(1, |s| s.verify_depth as c_int)
        } else {
            depth
        };
        SSL_set_verify_depth(ssl, depth);
        let client = client_certs as *mut OPENSSL_STACK;
        let trusted = trusted_certs as *mut OPENSSL_STACK;
        if client.is_null() && trusted.is_null() {
            return OK;
        }
        let store = X509_STORE_new();
        if store.is_null() {
            return fail(err, c"X509_STORE_new() failed");
        }
        let names = if client.is_null() {
            ptr::null_mut()
        } else {
            let n = OPENSSL_sk_new_null();
            if n.is_null() {
                X509_STORE_free(store);
                return fail(err, c"sk_X509_NAME_new_null() failed");
            }
            n
        };
        let failed = |msg| {
            if !names.is_null() {
                OPENSSL_sk_pop_free(names, Some(free_name));
            }
            X509_STORE_free(store);
            fail(err, msg)
        };
        for (chain, named) in [(client, true), (trusted, false)] {
            if chain.is_null() {
                continue;
            }
            for i in 0..OPENSSL_sk_num(chain) {
                let x = OPENSSL_sk_value(chain, i) as *mut X509;
                if x.is_null() {
                    return failed(c"sk_X509_value() failed");
                }
                if named {
                    let subject = X509_NAME_dup(X509_get_subject_name(x));
                    if subject.is_null() {
                        return failed(c"X509_get_subject_name() failed");
                    }
                    if OPENSSL_sk_push(names, subject.cast()) == 0 {
                        X509_NAME_free(subject);
                        return failed(c"sk_X509_NAME_push() failed");
                    }
                }
                if X509_STORE_add_cert(store, x) == 0 {
                    return failed(c"X509_STORE_add_cert() failed");
                }
            }
        }
        // set0: the SSL object takes the store.
        if SSL_ctrl(ssl, SSL_CTRL_SET_VERIFY_CERT_STORE, 0, store.cast()) == 0 {
            return failed(c"SSL_set0_verify_cert_store() failed");
        }
        if !names.is_null() {
            SSL_set_client_CA_list(ssl, names.cast());
        }
        OK
    }
}
