//! `ngx.req.get_method`, `set_method`, `http_version`, `is_internal`,
//! `start_time`, `set_header`, `clear_header`, `get_headers` and
//! `get_uri_args` for LuaJIT's FFI: our Lua face (`lua/req.lua`) calls these on the
//! running request (see `ffi_scratch.rs` for why our faces take this
//! narrower ABI). A negative result sends the face to the classic
//! function, which raises lua-nginx-module's text. lua-nginx-module's
//! `ngx_http_lua_ffi_req_get_method`, `_get_method_name`, `_set_method`,
//! `_start_time` and `_is_internal` are exported with its signatures for
//! code written against that ABI.

use std::ffi::c_int;

use nginx_sys::ngx_http_request_t;

use super::ffi_scratch::{self, FALLBACK, FFI_BAD_CONTEXT as BAD_CONTEXT, FFI_DECLINED};
use super::req_headers;
use crate::glue::escape;
use crate::glue::{catch, headers};
use crate::runtime::context;
use crate::runtime::ctx;

/// The running request, when its code may read its data.
fn running() -> Option<*mut ngx_http_request_t> {
    ctx::running_request(context::ANY_REQUEST)
}

/// What `ngx_http_lua_rs_req_get_method` adds to a method's `ngx.HTTP_*`
/// number when the request's method name is that method's own: the face
/// answers with its constant string instead of making one from a copy.
pub const KNOWN_METHOD: c_int = 0x10000;

/// KNOWN_METHOD plus the method's number, else the method name's length
/// (its bytes in the scratch buffer), or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_get_method() -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        let (method, name) = unsafe { ((*r).method, (*r).method_name.as_bytes()) };
        match super::req::method_number(method, name) {
            Some(n) => KNOWN_METHOD | n as c_int,
            None => ffi_scratch::answer(Some(name)),
        }
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
        // SAFETY: `value` is null or has `value_len` bytes (caller's contract)
        let values = unsafe { req_headers::ffi_values(value, value_len) };
        // SAFETY: `r` is the running request, in a phase that may set headers
        match unsafe { req_headers::set_in(r, key, &values) } {
            Ok(()) => 0,
            Err(_) => FALLBACK,
        }
    })
}

/// The key a header table is read with for `key`: lower-cased, '_' as '-',
/// in the scratch buffer; its length, or FALLBACK when it does not fit.
///
/// # Safety
/// `key` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_header_key(key: *const u8, len: usize) -> c_int {
    // SAFETY: `key` has `len` bytes (caller's contract)
    let key = unsafe { std::slice::from_raw_parts(key, len) };
    let lookup = |c: u8| match c.to_ascii_lowercase() {
        b'_' => b'-',
        c => c,
    };
    ffi_scratch::put_mapped(key, lookup).map_or(FALLBACK, |n| n as c_int)
}

/// Returned with the number of pairs when `max` cut them short.
const TRUNCATED: c_int = 0x10000;

/// `ngx.req.get_headers(max, raw)`: the request's headers as pairs in the
/// scratch buffer (names lower-cased unless `raw`; `max` 0: all), their
/// number (plus TRUNCATED when `max` cut them short), or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_get_headers(max: c_int, raw: c_int) -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        let max = max.max(0) as usize;
        let mut out = ffi_scratch::PairWriter::new();
        let mut total = 0;
        // SAFETY: `r` is the running request; its header list is nginx's
        for h in unsafe { headers::elts(&mut (*r).headers_in.headers) } {
            total += 1;
            if max > 0 && total > max {
                continue;
            }
            // SAFETY: elts yields live elements of the request's header list
            let (k, v) = unsafe { req_headers::pair(h) };
            // The lower-cased name nginx keeps beside the name, as
            // lua-nginx-module hands it out; a copy lower-cased here only
            // where a module left it unset.
            // SAFETY: as above
            let fits = match (raw, unsafe { headers::lowcase_key(h) }) {
                (0, Some(low)) => out.push(low, Some(v)),
                (0, None) => out.push_lowered(k, Some(v)),
                _ => out.push(k, Some(v)),
            };
            if !fits {
                return FALLBACK;
            }
        }
        if max > 0 && total > max {
            // SAFETY: `r` is the running request
            let log = unsafe { (*(*r).connection).log };
            crate::glue::log::log_debug_http!(log, "lua exceeding request header limit {total} > {max}");
            return out.count() as c_int | TRUNCATED;
        }
        out.count() as c_int
    })
}

/// `ngx.req.get_uri_args(max)`: the query's arguments as pairs in the
/// scratch buffer (unescaped in a copy in the request's pool; a null value
/// for an argument without '='), their number (plus TRUNCATED), or
/// FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_req_get_uri_args(max: c_int) -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running() else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        let Some(copy) = (unsafe { headers::pool_str((*r).pool, (*r).args.as_bytes()) }) else {
            return FALLBACK;
        };
        if copy.len == 0 {
            return 0;
        }
        // SAFETY: pool_str gave `copy.len` bytes of our own at `copy.data`,
        // which live as long as the request
        let buf = unsafe { std::slice::from_raw_parts_mut(copy.data, copy.len) };
        let mut out = ffi_scratch::PairWriter::new();
        let mut fits = true;
        let truncated = escape::for_each_arg(buf, max.max(0) as usize, |k, v| fits &= out.push(k, v));
        if !fits {
            return FALLBACK;
        }
        if truncated {
            crate::glue::log::log_debug_http!(std::ptr::null_mut(), "lua hit query args limit {max}");
            return out.count() as c_int | TRUNCATED;
        }
        out.count() as c_int
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

/// lua-nginx-module's ABI: the method's NGX_HTTP_* bit, or BAD_CONTEXT.
///
/// # Safety
/// `r` is null or a request pointer lua-resty-core's get_request gave.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_req_get_method(r: *mut ngx_http_request_t) -> c_int {
    catch(BAD_CONTEXT, || {
        if !ctx::is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request
        unsafe { (*r).method as c_int }
    })
}

/// lua-nginx-module's ABI: the method's name (pointing into the request),
/// 0, or BAD_CONTEXT.
///
/// # Safety
/// As `ngx_http_lua_ffi_req_get_method`; `name` and `len` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_req_get_method_name(
    r: *mut ngx_http_request_t,
    name: *mut *const u8,
    len: *mut usize,
) -> c_int {
    catch(BAD_CONTEXT, || {
        if !ctx::is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request; the out-pointers are the caller's
        unsafe {
            *name = (*r).method_name.data;
            *len = (*r).method_name.len;
        }
        0
    })
}

/// lua-nginx-module's ABI: 0, DECLINED (-5) for a method it does not know,
/// or BAD_CONTEXT.
///
/// # Safety
/// As `ngx_http_lua_ffi_req_get_method`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_req_set_method(r: *mut ngx_http_request_t, method: c_int) -> c_int {
    catch(BAD_CONTEXT, || {
        if !ctx::is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request
        match unsafe { super::req::set_method(r, method as i64) } {
            Ok(()) => 0,
            Err(_) => FFI_DECLINED,
        }
    })
}

/// lua-nginx-module's ABI: the request's start in seconds (-1 for a
/// pointer that is not the running request's).
///
/// # Safety
/// As `ngx_http_lua_ffi_req_get_method`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_req_start_time(r: *mut ngx_http_request_t) -> f64 {
    catch(-1.0, || {
        if !ctx::is_running(r, context::ANY_REQUEST) {
            return -1.0;
        }
        // SAFETY: `r` is the running request
        unsafe { (*r).start_sec as f64 + (*r).start_msec as f64 / 1000.0 }
    })
}

/// lua-nginx-module's ABI: 1 for an internal request, 0 if not, or
/// BAD_CONTEXT.
///
/// # Safety
/// As `ngx_http_lua_ffi_req_get_method`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_req_is_internal(r: *mut ngx_http_request_t) -> c_int {
    catch(BAD_CONTEXT, || {
        if !ctx::is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request
        unsafe { (*r).internal() as c_int }
    })
}
