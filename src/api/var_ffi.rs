//! `ngx.var` reads and writes as C functions for LuaJIT's FFI: the
//! `ngx_http_lua_rs_var_*` functions our Lua face (`lua/var.lua`) calls
//! (see `ffi_scratch.rs` for their narrower ABI), and lua-nginx-module's
//! `ngx_http_lua_ffi_var_get` and `_var_set` with its signatures, for Lua
//! code written against that ABI. None raises nor allocates on success: a
//! name is lower-cased on the stack or into the caller's buffer, a value
//! read is copied into the scratch buffer or pointed to in the request's
//! pool.

use std::ffi::{CStr, c_char, c_int};

use nginx_sys::ngx_http_request_t;

use super::ffi_scratch::{FALLBACK, FFI_DECLINED as DECLINED, FFI_ERROR as ERROR, FFI_OK as OK, answer};
use super::var;
use crate::glue::catch;
use crate::runtime::context;
use crate::runtime::ctx::{self, RequestCtx};

/// The running request's context when `r` is that request and the running
/// code may read its data; otherwise lua-nginx-module's text for why not.
/// A pointer that is not the running request (a coroutine carried over
/// from another request) is refused, never followed.
fn running<'a>(r: *mut ngx_http_request_t) -> Result<&'a mut RequestCtx, &'static CStr> {
    if r.is_null() {
        return Err(c"no request object found");
    }
    let ctx = ctx::current().filter(|c| c.r == r).ok_or(c"no request found")?;
    match context::check_request_data(context::ANY_REQUEST) {
        Ok(_) => Ok(ctx),
        Err(_) => Err(c"API disabled in the current context"),
    }
}

/// # Safety
/// `name_data` is null (then `capture_id` names a regex capture) or points
/// to `name_len` bytes, with `lowcase_buf` null or as long; the out-pointers
/// are valid for writes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_http_lua_ffi_var_get(
    r: *mut ngx_http_request_t,
    name_data: *const u8,
    name_len: usize,
    lowcase_buf: *mut u8,
    capture_id: c_int,
    value: *mut *const u8,
    value_len: *mut usize,
    err: *mut *const c_char,
) -> c_int {
    catch(ERROR, || {
        let ctx = match running(r) {
            Ok(ctx) => ctx,
            Err(e) => {
                // SAFETY: the caller's out-pointer
                unsafe { *err = e.as_ptr() };
                return ERROR;
            }
        };
        var::send_held(ctx);
        let found = if name_data.is_null() {
            // SAFETY: `r` is the running request
            unsafe { var::capture(r, capture_id as i64) }
        } else {
            // SAFETY: `name_data` has `name_len` bytes (caller's contract)
            let name = unsafe { std::slice::from_raw_parts(name_data, name_len) };
            if lowcase_buf.is_null() {
                // SAFETY: `r` is the running request; the buffer has name_len bytes
                var::with_low_buf(name_len, |low| unsafe { var::lookup(r, name, low) })
            } else {
                // SAFETY: as above, with the caller's buffer (its contract)
                unsafe { var::lookup(r, name, lowcase_buf) }
            }
        };
        let Some(v) = found else {
            return DECLINED;
        };
        // SAFETY: the caller's out-pointers
        unsafe {
            *value = v.as_ptr();
            *value_len = v.len();
        }
        OK
    })
}

/// `value` null sets the variable to "not found" (Lua's nil).
///
/// # Safety
/// `name_data` points to `name_len` bytes, `lowcase_buf` is null or as
/// long; `value` is null or has `value_len` bytes; `errbuf` has `*errlen`
/// bytes, and `*errlen` becomes the length of the message written there.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_http_lua_ffi_var_set(
    r: *mut ngx_http_request_t,
    name_data: *const u8,
    name_len: usize,
    lowcase_buf: *mut u8,
    value: *const u8,
    value_len: usize,
    errbuf: *mut u8,
    errlen: *mut usize,
) -> c_int {
    catch(ERROR, || {
        let done = running(r)
            .map_err(|e| e.to_string_lossy().into_owned())
            .and_then(|_| {
                // SAFETY: `name_data` has `name_len` bytes (caller's contract)
                let name = unsafe { std::slice::from_raw_parts(name_data, name_len) };
                // SAFETY: `value` has `value_len` bytes when not null (caller's contract)
                let value =
                    (!value.is_null()).then(|| unsafe { std::slice::from_raw_parts(value, value_len) });
                if lowcase_buf.is_null() {
                    // SAFETY: `r` is the running request; the buffer has name_len bytes
                    var::with_low_buf(name_len, |low| unsafe { var::assign(r, name, low, value) })
                } else {
                    // SAFETY: as above, with the caller's buffer (its contract)
                    unsafe { var::assign(r, name, lowcase_buf, value) }
                }
            });
        let Err(msg) = done else {
            return OK;
        };
        // SAFETY: `errbuf` has `*errlen` bytes (caller's contract)
        unsafe {
            let n = msg.len().min(*errlen);
            std::ptr::copy_nonoverlapping(msg.as_ptr(), errbuf, n);
            *errlen = n;
        }
        ERROR
    })
}

/// `ngx.var[name]` for our face: the value's length (its bytes in the
/// scratch buffer), NOT_FOUND or FALLBACK.
///
/// # Safety
/// `name` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_var_get(name: *const u8, len: usize) -> c_int {
    catch(FALLBACK, || {
        let Some(ctx) = ctx::running(context::ANY_REQUEST) else {
            return FALLBACK;
        };
        var::send_held(ctx);
        let r = ctx.r;
        // SAFETY: `name` has `len` bytes (caller's contract)
        let name = unsafe { std::slice::from_raw_parts(name, len) };
        // SAFETY: `r` is the running request; the buffer has `len` bytes
        answer(var::with_low_buf(len, |low| unsafe { var::lookup(r, name, low) }))
    })
}

/// `ngx.var[n]` (a regex capture) for our face, as `ngx_http_lua_rs_var_get`.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_var_capture(n: c_int) -> c_int {
    catch(FALLBACK, || {
        let Some(ctx) = ctx::running(context::ANY_REQUEST) else {
            return FALLBACK;
        };
        var::send_held(ctx);
        // SAFETY: `ctx.r` is the running request
        answer(unsafe { var::capture(ctx.r, n as i64) })
    })
}

/// `ngx.var[name] = value` for our face (`value` null: nil): 0, or
/// FALLBACK for the classic function to raise the error.
///
/// # Safety
/// `name` points to `name_len` bytes; `value` is null or has `value_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_var_set(
    name: *const u8,
    name_len: usize,
    value: *const u8,
    value_len: usize,
) -> c_int {
    catch(FALLBACK, || {
        let Some(ctx) = ctx::running(context::ANY_REQUEST) else {
            return FALLBACK;
        };
        let r = ctx.r;
        // SAFETY: `name` has `name_len` bytes (caller's contract)
        let name = unsafe { std::slice::from_raw_parts(name, name_len) };
        // SAFETY: `value` has `value_len` bytes when not null (caller's contract)
        let value = (!value.is_null()).then(|| unsafe { std::slice::from_raw_parts(value, value_len) });
        // SAFETY: `r` is the running request; the buffer has name_len bytes
        match var::with_low_buf(name_len, |low| unsafe { var::assign(r, name, low, value) }) {
            Ok(()) => OK,
            Err(_) => FALLBACK,
        }
    })
}
