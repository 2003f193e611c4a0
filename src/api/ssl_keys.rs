//! The newer `ngx.ssl` functions of lua-nginx-module's master branch
//! (lua-resty-core after 0.1.25), with its names and C signatures: the
//! handshake randoms, the session master key, RFC 5705 keying material,
//! and DER parsing into the cdata `set_cert` / `set_priv_key` take.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use nginx_sys::{
    BIO_ctrl, BIO_free, ERR_clear_error, OPENSSL_STACK, OPENSSL_sk_free, OPENSSL_sk_new_null, OPENSSL_sk_num,
    OPENSSL_sk_pop_free, OPENSSL_sk_push, OPENSSL_sk_value, SSL, SSL_CIPHER_get_protocol_id,
    SSL_SESSION_get_master_key, SSL_export_keying_material, SSL_export_keying_material_early,
    SSL_get_client_ciphers, SSL_get_client_random, SSL_get_server_random, SSL_get_session,
    SSL_get1_supported_ciphers, X509_free, d2i_PrivateKey_bio, d2i_X509_bio, ngx_http_request_t,
};

use super::ssl::{ERROR, OK, fail, mem_bio_or_fail, ssl_of};

type Err = *mut *const c_char;

const BIO_CTRL_EOF: c_int = 2;

/// Copies up to `*outlen` bytes with `get` (0 asks only for the size).
unsafe fn copy_out(
    r: *mut ngx_http_request_t,
    out: *mut u8,
    outlen: *mut usize,
    err: Err,
    get: unsafe fn(*mut SSL, *mut u8, usize) -> usize,
) -> c_int {
    // SAFETY: r comes from get_request; out has *outlen bytes.
    unsafe {
        let ssl = match ssl_of(r) {
            Ok(s) => s,
            Err(m) => return fail(err, m),
        };
        *outlen = get(ssl, out, *outlen);
        OK
    }
}

unsafe fn client_random(ssl: *mut SSL, out: *mut u8, n: usize) -> usize {
    // SAFETY: a live SSL; out has n bytes.
    unsafe { SSL_get_client_random(ssl, out, n) }
}

unsafe fn server_random(ssl: *mut SSL, out: *mut u8, n: usize) -> usize {
    // SAFETY: as in client_random.
    unsafe { SSL_get_server_random(ssl, out, n) }
}

unsafe fn master_key(ssl: *mut SSL, out: *mut u8, n: usize) -> usize {
    // SAFETY: as in client_random; no session yet gives 0 bytes.
    unsafe {
        let sess = SSL_get_session(ssl);
        if sess.is_null() {
            return 0;
        }
        SSL_SESSION_get_master_key(sess, out, n)
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_client_random(
    r: *mut ngx_http_request_t,
    out: *mut u8,
    outlen: *mut usize,
    err: Err,
) -> c_int {
    // SAFETY: per copy_out.
    crate::glue::catch(ERROR, || unsafe { copy_out(r, out, outlen, err, client_random) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_server_random(
    r: *mut ngx_http_request_t,
    out: *mut u8,
    outlen: *mut usize,
    err: Err,
) -> c_int {
    // SAFETY: per copy_out.
    crate::glue::catch(ERROR, || unsafe { copy_out(r, out, outlen, err, server_random) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_session_master_key(
    r: *mut ngx_http_request_t,
    out: *mut u8,
    outlen: *mut usize,
    err: Err,
) -> c_int {
    // SAFETY: per copy_out.
    crate::glue::catch(ERROR, || unsafe { copy_out(r, out, outlen, err, master_key) })
}

#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_export_keying_material(
    r: *mut ngx_http_request_t,
    out: *mut u8,
    out_size: usize,
    label: *const c_char,
    llen: usize,
    ctx: *const u8,
    ctxlen: usize,
    use_ctx: c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; the buffers have their sizes.
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            if SSL_export_keying_material(ssl, out, out_size, label, llen, ctx, ctxlen, use_ctx) == 1 {
                return OK;
            }
            ERR_clear_error();
            fail(err, c"SSL_export_keying_material() failed")
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_export_keying_material_early(
    r: *mut ngx_http_request_t,
    out: *mut u8,
    out_size: usize,
    label: *const c_char,
    llen: usize,
    ctx: *const u8,
    ctxlen: usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: as in export_keying_material.
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            if SSL_export_keying_material_early(ssl, out, out_size, label, llen, ctx, ctxlen) == 1 {
                return OK;
            }
            ERR_clear_error();
            fail(err, c"SSL_export_keying_material_early() failed")
        }
    })
}

unsafe extern "C" fn free_x509(p: *mut c_void) {
    // SAFETY: an X509 of a chain being freed.
    unsafe { X509_free(p.cast()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_parse_der_cert(
    data: *const c_char,
    len: usize,
    err: Err,
) -> *mut c_void {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: data has len bytes; the chain is freed here on failure,
        // else by ngx_http_lua_ffi_free_cert.
        unsafe {
            if data.is_null() || len == 0 {
                fail(err, c"invalid argument");
                return ptr::null_mut();
            }
            let Some(bio) = mem_bio_or_fail(data.cast(), len, err) else {
                return ptr::null_mut();
            };
            let chain = OPENSSL_sk_new_null();
            if chain.is_null() {
                BIO_free(bio);
                ERR_clear_error();
                fail(err, c"sk_X509_new_null() failed");
                return ptr::null_mut();
            }
            let mut first = true;
            while first || BIO_ctrl(bio, BIO_CTRL_EOF, 0, ptr::null_mut()) == 0 {
                first = false;
                let x = d2i_X509_bio(bio, ptr::null_mut());
                let msg = if x.is_null() {
                    Some(c"d2i_X509_bio() failed")
                } else if OPENSSL_sk_push(chain, x.cast()) == 0 {
                    X509_free(x);
                    Some(c"sk_X509_push() failed")
                } else {
                    None
                };
                if let Some(m) = msg {
                    OPENSSL_sk_pop_free(chain, Some(free_x509));
                    BIO_free(bio);
                    ERR_clear_error();
                    fail(err, m);
                    return ptr::null_mut();
                }
            }
            BIO_free(bio);
            chain.cast()
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_parse_der_priv_key(
    data: *const c_char,
    len: usize,
    err: Err,
) -> *mut c_void {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: data has len bytes; the key is freed by free_priv_key.
        unsafe {
            if data.is_null() || len == 0 {
                fail(err, c"invalid argument");
                return ptr::null_mut();
            }
            let Some(bio) = mem_bio_or_fail(data.cast(), len, err) else {
                return ptr::null_mut();
            };
            let pkey = d2i_PrivateKey_bio(bio, ptr::null_mut());
            BIO_free(bio);
            if pkey.is_null() {
                ERR_clear_error();
                fail(err, c"d2i_PrivateKey_bio() failed");
                return ptr::null_mut();
            }
            pkey.cast()
        }
    })
}

/// RFC 8701's GREASE values (0x?A?A), as lua-nginx-module tells them.
fn is_grease(cipher: u16) -> bool {
    cipher & 0x0f0f == 0x0a0a
}

/// The ciphers both ends support, in the server's order: `*nciphers` is
/// the room in `ciphers` on entry, the count on return.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_req_shared_ssl_ciphers(
    r: *mut ngx_http_request_t,
    ciphers: *mut u16,
    nciphers: *mut u16,
    filter_grease: c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; ciphers has *nciphers slots;
        // the supported list is ours to free, the client's is the SSL's.
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            let sk = SSL_get1_supported_ciphers(ssl) as *mut OPENSSL_STACK;
            let ck = SSL_get_client_ciphers(ssl) as *const OPENSSL_STACK;
            let sn = if sk.is_null() { 0 } else { OPENSSL_sk_num(sk) };
            let cn = if ck.is_null() { 0 } else { OPENSSL_sk_num(ck) };
            if sn > *nciphers as c_int {
                *nciphers = 0;
                if !sk.is_null() {
                    OPENSSL_sk_free(sk);
                }
                return fail(err, c"buffer too small");
            }
            let id = |st: *const OPENSSL_STACK, i| SSL_CIPHER_get_protocol_id(OPENSSL_sk_value(st, i).cast());
            let mut n = 0u16;
            for i in 0..sn {
                let cipher = id(sk, i);
                if filter_grease != 0 && is_grease(cipher) {
                    continue;
                }
                if (0..cn).any(|j| id(ck, j) == cipher) {
                    *ciphers.add(n as usize) = cipher;
                    n += 1;
                }
            }
            *nciphers = n;
            if !sk.is_null() {
                OPENSSL_sk_free(sk);
            }
            OK
        }
    })
}
