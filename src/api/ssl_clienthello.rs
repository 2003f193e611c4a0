//! `ngx.ssl.clienthello`'s C side (lua-nginx-module's names and
//! signatures): the ClientHello's server name and raw extensions, and the
//! protocols the handshake may pick, in ssl_client_hello_by_lua*.

use std::ffi::{c_char, c_int, c_uint};

use nginx_sys::{
    NGX_DECLINED, NGX_SSL_SSLv3, NGX_SSL_TLSv1, NGX_SSL_TLSv1_1, NGX_SSL_TLSv1_2, NGX_SSL_TLSv1_3,
    SSL_clear_options, SSL_client_hello_get0_ext, SSL_set_options, ngx_http_request_t,
};

use super::ssl::{ERROR, OK, fail, ssl_of};

type Err = *mut *const c_char;

// OpenSSL's SSL_OP_NO_* bits (macros, so not in the bindings).
const SSL_OP_NO_SSLV3: u64 = 1 << 25;
const SSL_OP_NO_TLSV1: u64 = 1 << 26;
const SSL_OP_NO_TLSV1_2: u64 = 1 << 27;
const SSL_OP_NO_TLSV1_1: u64 = 1 << 28;
const SSL_OP_NO_TLSV1_3: u64 = 1 << 29;

const EXT_SERVER_NAME: c_uint = 0;
const DECLINED: c_int = NGX_DECLINED as c_int;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_client_hello_server_name(
    r: *mut ngx_http_request_t,
    name: *mut *const c_char,
    namelen: *mut usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; the extension's bytes live as
        // long as the ClientHello (the callback's run).
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            let mut p: *const u8 = std::ptr::null();
            let mut n: usize = 0;
            if SSL_client_hello_get0_ext(ssl, EXT_SERVER_NAME, &mut p, &mut n) == 0 {
                return DECLINED;
            }
            match host_name(std::slice::from_raw_parts(p, n)) {
                Some((off, len)) => {
                    *name = p.add(off).cast();
                    *namelen = len;
                    OK
                }
                None => fail(err, c"Bad SSL Client Hello Extension"),
            }
        }
    })
}

/// Offset and length of the host name in a server_name extension body
/// (RFC 6066: list length, then type 0, name length, name).
fn host_name(ext: &[u8]) -> Option<(usize, usize)> {
    if ext.len() <= 2 {
        return None;
    }
    let list = u16::from_be_bytes([ext[0], ext[1]]) as usize;
    if list + 2 != ext.len() || list == 0 || ext[2] != 0 {
        return None;
    }
    let rest = list - 1;
    if rest <= 2 {
        return None;
    }
    let len = u16::from_be_bytes([ext[3], ext[4]]) as usize;
    if len + 2 > rest {
        return None;
    }
    Some((5, len))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_client_hello_ext(
    r: *mut ngx_http_request_t,
    ty: c_uint,
    out: *mut *const u8,
    outlen: *mut usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; out pointers are the caller's.
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            if SSL_client_hello_get0_ext(ssl, ty, out, outlen) == 0 {
                return DECLINED;
            }
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_set_protocols(
    r: *mut ngx_http_request_t,
    protocols: c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            let p = protocols as u32;
            for (bit, op) in [
                (NGX_SSL_SSLv3, SSL_OP_NO_SSLV3),
                (NGX_SSL_TLSv1, SSL_OP_NO_TLSV1),
                (NGX_SSL_TLSv1_1, SSL_OP_NO_TLSV1_1),
                (NGX_SSL_TLSv1_2, SSL_OP_NO_TLSV1_2),
                (NGX_SSL_TLSv1_3, SSL_OP_NO_TLSV1_3),
            ] {
                SSL_clear_options(ssl, op as _);
                if p & bit == 0 {
                    SSL_set_options(ssl, op as _);
                }
            }
            OK
        }
    })
}
