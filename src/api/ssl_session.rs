//! `ngx.ssl.session`'s C side (lua-nginx-module's names and signatures):
//! the session id and the serialized session in
//! ssl_session_store_by_lua*, and the session handed back to OpenSSL in
//! ssl_session_fetch_by_lua*.

use std::ffi::{c_char, c_int};
use std::ptr;

use nginx_sys::{ERR_clear_error, SSL_SESSION_free, d2i_SSL_SESSION, i2d_SSL_SESSION, ngx_http_request_t};

use super::ssl::{ERROR, OK, fail, ssl_of};
use crate::runtime::ssl_hs::{self, HsCtx};

type Err = *mut *const c_char;

/// The handshake state of `r`'s connection.
unsafe fn hs_of(r: *mut ngx_http_request_t, err: Err) -> Result<&'static mut HsCtx, c_int> {
    // SAFETY: r comes from get_request.
    unsafe {
        let ssl = ssl_of(r).map_err(|m| fail(err, m))?;
        ssl_hs::get(ssl).ok_or_else(|| fail(err, c"bad ssl conn"))
    }
}

/// The session being stored (store phase) or the one fetched so far.
fn session(hs: &HsCtx) -> *mut nginx_sys::SSL_SESSION {
    if hs.new_session.is_null() {
        hs.session
    } else {
        hs.new_session
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_serialized_session_size(
    r: *mut ngx_http_request_t,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe {
            let hs = match hs_of(r, err) {
                Ok(h) => h,
                Err(rc) => return rc,
            };
            let s = session(hs);
            if s.is_null() {
                return fail(err, c"no session");
            }
            let len = i2d_SSL_SESSION(s, ptr::null_mut());
            if len <= 0 {
                return fail(err, c"i2d_SSL_SESSION() failed");
            }
            len
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_serialized_session(
    r: *mut ngx_http_request_t,
    buf: *mut u8,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; buf has the size the size
        // function returned.
        unsafe {
            let hs = match hs_of(r, err) {
                Ok(h) => h,
                Err(rc) => return rc,
            };
            let s = session(hs);
            if s.is_null() {
                return fail(err, c"no session");
            }
            let mut p = buf;
            if i2d_SSL_SESSION(s, &mut p) == 0 {
                return fail(err, c"i2d_SSL_SESSION() failed");
            }
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_session_id_size(
    r: *mut ngx_http_request_t,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe {
            match hs_of(r, err) {
                Ok(hs) if !hs.session_id.is_empty() => 2 * hs.session_id.len() as c_int,
                Ok(_) => fail(err, c"no session id"),
                Err(rc) => rc,
            }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_session_id(
    r: *mut ngx_http_request_t,
    buf: *mut u8,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; buf has twice the id's length.
        unsafe {
            let hs = match hs_of(r, err) {
                Ok(h) => h,
                Err(rc) => return rc,
            };
            if hs.session_id.is_empty() {
                return fail(err, c"no session id");
            }
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, b) in hs.session_id.iter().enumerate() {
                *buf.add(2 * i) = HEX[(b >> 4) as usize];
                *buf.add(2 * i + 1) = HEX[(b & 15) as usize];
            }
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_set_serialized_session(
    r: *mut ngx_http_request_t,
    data: *const u8,
    len: c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; data has len bytes; the new
        // session's reference is ours until OpenSSL takes it.
        unsafe {
            let hs = match hs_of(r, err) {
                Ok(h) => h,
                Err(rc) => return rc,
            };
            let mut p = data;
            let s = d2i_SSL_SESSION(ptr::null_mut(), &mut p, len as _);
            if s.is_null() {
                ERR_clear_error();
                return fail(err, c"d2i_SSL_SESSION() failed");
            }
            let old = std::mem::replace(&mut hs.session, s);
            if !old.is_null() {
                SSL_SESSION_free(old);
            }
            OK
        }
    })
}
