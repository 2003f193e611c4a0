//! `ngx.header.NAME` reads and writes of one string value for LuaJIT's
//! FFI: our Lua face (`lua/resp_headers.lua`) calls these on the running
//! request (see `ffi_scratch.rs` for why our faces take this narrower ABI
//! than lua-nginx-module's `ngx_http_lua_ffi_set_resp_header`). Tables of
//! values, several values read back, and every error go to the classic
//! functions (a negative code), which raise lua-nginx-module's texts.

use std::ffi::c_int;

use super::ffi_scratch::{FALLBACK, FFI_OK as OK, NOT_FOUND, answer};
use super::resp_headers::{SET_PHASES, apply, header_name};
use crate::glue::catch;
use crate::glue::headers_out;
use crate::runtime::context;
use crate::runtime::ctx;

/// `ngx.header[key]`: the length of its one value (copied into the scratch
/// buffer), NOT_FOUND, or FALLBACK (several values, or an error).
///
/// # Safety
/// `key` points to `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_get_resp_header(key: *const u8, key_len: usize) -> c_int {
    catch(FALLBACK, || {
        let Some(r) = ctx::running_request(context::ANY_REQUEST) else {
            return FALLBACK;
        };
        // SAFETY: `key` has `key_len` bytes (caller's contract)
        let key = unsafe { std::slice::from_raw_parts(key, key_len) };
        // SAFETY: `r` is the running request
        let name = unsafe { header_name(r, key) };
        let (mut n, mut first) = (0, NOT_FOUND);
        // SAFETY: `r` is the running request
        unsafe {
            headers_out::for_each_value(r, &name, |v| {
                n += 1;
                if n == 1 {
                    first = answer(Some(v));
                }
            })
        };
        if n > 1 { FALLBACK } else { first }
    })
}

/// `ngx.header[key] = value` (`value` null: nil, which removes it): OK or
/// FALLBACK.
///
/// # Safety
/// `key` points to `key_len` bytes; `value` is null or has `value_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_set_resp_header(
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) -> c_int {
    catch(FALLBACK, || {
        let Some(r) = ctx::running_request(SET_PHASES) else {
            return FALLBACK;
        };
        // SAFETY: `key` has `key_len` bytes (caller's contract)
        let key = unsafe { std::slice::from_raw_parts(key, key_len) };
        // SAFETY: `value` is null or has `value_len` bytes (caller's contract)
        let values = unsafe { super::req_headers::ffi_values(value, value_len) };
        // SAFETY: `r` is the running request, in a phase that may set headers
        match unsafe { apply(r, key, &values, true) } {
            Ok(()) => OK,
            Err(_) => FALLBACK,
        }
    })
}
