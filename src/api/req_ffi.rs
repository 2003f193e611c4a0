//! `ngx.req.get_method`, `set_method`, `http_version`, `is_internal`,
//! `start_time`, `set_header` and `clear_header`
//! for LuaJIT's FFI: our Lua face (`lua/req.lua`) calls these on the
//! running request (see `ffi_scratch.rs` for why our faces take this
//! narrower ABI). A negative result sends the face to the classic
//! function, which raises lua-nginx-module's text.

use std::ffi::c_int;

use nginx_sys::ngx_http_request_t;

use std::borrow::Cow;

use super::{ffi_scratch, req_headers};
use crate::glue::catch;
use crate::glue::escape::escape_header_value;
use crate::runtime::context;
use crate::runtime::ctx;

const FALLBACK: c_int = -1;

/// The running request, when its code may read its data.
fn running() -> Option<*mut ngx_http_request_t> {
    context::check_request_data(context::ANY_REQUEST).ok()?;
    ctx::current().map(|c| c.r).filter(|r| !r.is_null())
}

/// The method name's length (its bytes in the scratch buffer), or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_get_method() -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        let name = unsafe { (*r).method_name.as_bytes() };
        ffi_scratch::put(name).map_or(FALLBACK, |n| n as c_int)
    })
}

/// `ngx.req.set_method(m)`: 0, or FALLBACK (an unknown method, no request).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_set_method(m: c_int) -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        match unsafe { super::req::set_method(r, m as i64) } {
            Ok(()) => 0,
            Err(_) => FALLBACK,
        }
    })
}

/// `ngx.req.set_header(key, value)` (`value` null: clear it): 0, or
/// FALLBACK.
///
/// # Safety
/// `key` points to `key_len` bytes; `value` is null or has `value_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_req_set_header(
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> c_int {
    catch(FALLBACK, || {
        if context::check_request_data(req_headers::SET_PHASES).is_err() {
            return FALLBACK;
        }
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `key` has `key_len` bytes (caller's contract)
        let key = unsafe { std::slice::from_raw_parts(key, key_len) };
        let one: [Cow<[u8]>; 1];
        let values: &[Cow<[u8]>] = if value.is_null() {
            &[]
        } else {
            // SAFETY: `value` has `value_len` bytes (caller's contract)
            one = [escape_header_value(unsafe {
                std::slice::from_raw_parts(value, value_len)
            })];
            &one
        };
        // SAFETY: `r` is the running request, in a phase that may set headers
        match unsafe { req_headers::set_in(r, key, values) } {
            Ok(()) => 0,
            Err(_) => FALLBACK,
        }
    })
}

/// nginx's HTTP version number (1001 for 1.1...), or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_http_version() -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        unsafe { (*r).http_version as c_int }
    })
}

/// 1 for an internal request, 0 if not, or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_is_internal() -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        unsafe { (*r).internal() as c_int }
    })
}

/// The request's start in seconds, or -1 (FALLBACK).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_start_time() -> f64 {
    catch(-1.0, || {
        let Some(r) = running() else {
            return -1.0;
        };
        // SAFETY: `r` is the running request
        unsafe { (*r).start_sec as f64 + (*r).start_msec as f64 / 1000.0 }
    })
}
