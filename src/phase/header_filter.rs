//! header_filter_by_lua*: our header filter, which also stops the headers
//! of captured subrequests (ngx.location.capture) from going further.

use nginx_sys::{
    NGX_LOG_ERR, ngx_http_filter_finalize_request, ngx_http_output_header_filter_pt, ngx_http_request_t,
    ngx_int_t,
};

use ngx::core::Status;
use ngx::http::Request;

use super::resolve;
use crate::conf::LuaCode;
use crate::conf::{module, req_loc_conf, req_main_conf};
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::runtime::context;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::{capture, run_sync};

static mut NEXT: ngx_http_output_header_filter_pt = None;

/// Puts our filter on top of the header filter chain.
///
/// # Safety
/// Only from postconfiguration.
pub unsafe fn install() {
    // SAFETY: runs once from postconfiguration, on nginx's one thread, before any request
    unsafe { NEXT = nginx_sys::ngx_http_top_header_filter };
    // SAFETY: runs once from postconfiguration, on nginx's one thread, before any request
    unsafe { nginx_sys::ngx_http_top_header_filter = Some(filter) };
}

unsafe extern "C" fn filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls header filters with a live request.
    if unsafe { super::filters_idle(r) } {
        // SAFETY: as above
        return unsafe { next(r) };
    }
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: nginx calls header filters with a live request.
        unsafe { run(r) }
    })
}

/// # Safety
/// `r` must be a live request.
unsafe fn run(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: `r` is a live request (callers' duty)
    let req: &Request = unsafe { Request::from_ngx_http_request(r) };
    let lmcf = req_main_conf(req);
    if lmcf.uses_header_filter {
        super::debug_filter(req, "header filter for user lua code");
    }
    let lcf = req_loc_conf(req);
    if lcf.body_filter.is_some() {
        // The body filter reads data as strings: let the copy filter read
        // files into memory.
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { (*r).set_filter_need_in_memory(1) };
    }
    if let Some(code) = lcf.header_filter.clone() {
        // SAFETY: `r` is a live request (callers' duty)
        match unsafe { run_code(r, &code) } {
            Err(e) => {
                nlog::log_error!(req.log(), NGX_LOG_ERR, "failed to run header_filter_by_lua*: {e}");
                return Status::NGX_ERROR.into();
            }
            // SAFETY: `r` is a live request (callers' duty)
            Ok(Some(code)) => return unsafe { exit(r, code) },
            Ok(None) => {}
        }
    }
    if lmcf.uses_capture {
        super::debug_filter(req, "capture header filter");
    }
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { capture::is_captured(r) } {
        // SAFETY: `r` is a live request (callers' duty)
        return unsafe { capture::header(r) };
    }
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { next(r) }
}

/// # Safety
/// `r` must be a live request.
unsafe fn next(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: NEXT is written only at postconfiguration, before any request
    match unsafe { NEXT } {
        // SAFETY: `r` is a live request (callers' duty)
        Some(next) => unsafe { next(r) },
        None => Status::NGX_ERROR.into(),
    }
}

/// Runs the code; returns the status it passed to `ngx.exit`, if any.
unsafe fn run_code(r: *mut ngx_http_request_t, code: &LuaCode) -> Result<Option<ngx_int_t>, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let ctx = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }).ok_or("no memory")?;
    let _vm = ctx.enter_vm();
    // SAFETY: `r` is a live request (callers' duty)
    let (func, owned) = unsafe { resolve(r, code) }?;
    // The filter may run inside other code's ngx.exit (content's eof):
    // keep that code's exit status apart from the filter's.
    let outer = ctx.exit_code.take();
    // SAFETY: the request's VM is current; `func` is the resolved filter code
    let res = unsafe { run_sync::in_request(ctx, context::HEADER_FILTER, func, 0, 0) }.map(|_| ());
    let exited = std::mem::replace(&mut ctx.exit_code, outer);
    if owned && let Some(vm) = vm::current() {
        vm.unref(func);
    }
    res?;
    // The filter runs again for the response its ngx.exit asked for, as in
    // lua-nginx-module: then it goes on (a second, different exit too,
    // which would otherwise replace responses without end).
    Ok(match exited.filter(|&c| c != Status::NGX_OK.0) {
        Some(_) if ctx.header_filter_exit.is_some() => None,
        Some(c) => {
            ctx.header_filter_exit = Some(c);
            Some(c)
        }
        None => None,
    })
}

/// `ngx.exit(code)` in the header filter: an error status replaces the
/// response with nginx's error page; closing codes abort it; others go on.
unsafe fn exit(r: *mut ngx_http_request_t, code: ngx_int_t) -> ngx_int_t {
    if code == Status::NGX_ERROR.0 {
        return Status::NGX_ERROR.into();
    }
    // Any other status replaces the response, as lua-nginx-module does: an
    // error page for errors, an empty body with that status line for the
    // rest (201, 444...); the response being sent stops here.
    if code != Status::NGX_OK.0 {
        // SAFETY: `r` is a live request (callers' duty)
        let rc = unsafe { ngx_http_filter_finalize_request(r, module() as *const _ as *mut _, code) };
        if rc == Status::NGX_ERROR.0 || rc == Status::NGX_AGAIN.0 {
            return rc;
        }
        return Status::NGX_DECLINED.into();
    }
    // SAFETY: NEXT is written only at postconfiguration, before any request
    match unsafe { NEXT } {
        // SAFETY: `r` is a live request (callers' duty)
        Some(next) if !unsafe { capture::is_captured(r) } => unsafe { next(r) },
        // SAFETY: `r` is a live request (callers' duty)
        Some(_) => unsafe { capture::header(r) },
        None => Status::NGX_ERROR.into(),
    }
}
