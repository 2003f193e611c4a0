//! `ngx.status`, `ngx.ctx`, `ngx.headers_sent` and `ngx.is_subrequest` for
//! LuaJIT's FFI. Our Lua face (`lua/ngx_fields.lua`) calls the
//! `ngx_http_lua_rs_*` functions (no request pointer: they act on the
//! running request, see `ffi_scratch.rs` for why our faces take this
//! narrower ABI); lua-nginx-module's `ngx_http_lua_ffi_get_resp_status`,
//! `_set_resp_status`, `_is_subrequest` and `_headers_sent` are exported
//! with its signatures for code written against that ABI. None raises: a
//! negative code sends the face to the classic function, which raises
//! lua-nginx-module's text.

use std::ffi::c_int;

use nginx_sys::ngx_http_request_t;

use super::ffi_scratch::{
    FALLBACK, FFI_BAD_CONTEXT as BAD_CONTEXT, FFI_DECLINED as DECLINED, FFI_ERROR as ERROR, FFI_OK as OK,
};
use super::ngx_fields::{CtxSlot, adopt_ctx, ctx_slot, set_status, status_of};
use crate::glue::catch;
use crate::runtime::context;
use crate::runtime::ctx::{self, is_running, running_request};

/// `ngx.status`, or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_get_status() -> c_int {
    catch(FALLBACK, || match running_request(context::ANY_REQUEST) {
        // SAFETY: `r` is the running request
        Some(r) => unsafe { status_of(r) },
        None => FALLBACK,
    })
}

/// `ngx.status = status`: OK, or FALLBACK (the classic function raises).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_set_status(status: c_int) -> c_int {
    catch(FALLBACK, || {
        let Some(r) = running_request(context::REQUEST_ALL) else {
            return FALLBACK;
        };
        // SAFETY: `r` is the running request
        match unsafe { set_status(r, status as i64) } {
            Ok(()) => OK,
            Err(_) => FALLBACK,
        }
    })
}

/// The registry reference of the running request's `ngx.ctx` table; 0
/// when it has none yet and the face may make it (a plain empty table,
/// whose reference goes to `ngx_http_lua_rs_ctx_adopt`); FALLBACK when the
/// classic function must answer. With `for_set`, the face replaces the
/// table in that slot (`ngx.ctx = t`), which is refused in handshake code.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_ctx_ref(for_set: c_int) -> c_int {
    catch(FALLBACK, || match ctx_slot(for_set != 0) {
        Some(CtxSlot::Table(r)) => r,
        Some(CtxSlot::Make) => 0,
        None => FALLBACK,
    })
}

/// `r`, the registry reference of the table the face made after
/// `ngx_http_lua_rs_ctx_ref` answered 0, becomes the request's `ngx.ctx`:
/// OK, or FALLBACK (the face releases `r` and asks the classic function).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_ctx_adopt(r: c_int) -> c_int {
    catch(FALLBACK, || if adopt_ctx(r) { OK } else { FALLBACK })
}

/// `ngx.headers_sent`: 0 or 1, or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_headers_sent() -> c_int {
    catch(FALLBACK, || {
        ctx::running(context::ANY_REQUEST).map_or(FALLBACK, |c| c.header_sent() as c_int)
    })
}

/// `ngx.is_subrequest`: 0 or 1, or FALLBACK.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_is_subrequest() -> c_int {
    catch(FALLBACK, || match running_request(context::ANY_REQUEST) {
        // SAFETY: `r` is the running request
        Some(r) => (unsafe { (*r).main } != r) as c_int,
        None => FALLBACK,
    })
}

/// lua-nginx-module's ABI: the status, or BAD_CONTEXT.
///
/// # Safety
/// `r` is null or a request pointer lua-resty-core's get_request gave.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_get_resp_status(r: *mut ngx_http_request_t) -> c_int {
    catch(BAD_CONTEXT, || {
        if !is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request
        unsafe { status_of(r) }
    })
}

/// lua-nginx-module's ABI: OK, DECLINED after the header was sent (logged),
/// BAD_CONTEXT, or ERROR for a status outside 100-999,
/// which is left as it was.
///
/// # Safety
/// As `ngx_http_lua_ffi_get_resp_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_set_resp_status(
    r: *mut ngx_http_request_t,
    status: c_int,
) -> c_int {
    catch(BAD_CONTEXT, || {
        if !is_running(r, context::REQUEST_ALL) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request
        let sent = unsafe { (*r).header_sent() } != 0;
        // SAFETY: as above (once the header went out it only logs)
        match unsafe { set_status(r, status as i64) } {
            Ok(()) if sent => DECLINED,
            Ok(()) => OK,
            Err(_) => ERROR,
        }
    })
}

/// lua-nginx-module's ABI: 1 for a subrequest, 0 if not, or BAD_CONTEXT.
///
/// # Safety
/// As `ngx_http_lua_ffi_get_resp_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_is_subrequest(r: *mut ngx_http_request_t) -> c_int {
    catch(BAD_CONTEXT, || {
        if !is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        // SAFETY: `r` is the running request
        (unsafe { (*r).main } != r) as c_int
    })
}

/// lua-nginx-module's ABI: 1 once the response header is sent, 0 before,
/// or BAD_CONTEXT.
///
/// # Safety
/// As `ngx_http_lua_ffi_get_resp_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_headers_sent(r: *mut ngx_http_request_t) -> c_int {
    catch(BAD_CONTEXT, || {
        if !is_running(r, context::ANY_REQUEST) {
            return BAD_CONTEXT;
        }
        ctx::current().map_or(BAD_CONTEXT, |c| c.header_sent() as c_int)
    })
}
