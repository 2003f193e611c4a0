//! header_filter_by_lua*: our header filter, which also stops the headers
//! of captured subrequests (ngx.location.capture) from going further.

use std::cell::Cell;

use nginx_sys::{
    ngx_http_filter_finalize_request, ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_int_t,
    NGX_ERROR, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR, NGX_OK,
};

use super::{request_log, resolve};
use crate::conf::LuaCode;
use crate::conf::{loc_conf, module};
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
    NEXT = nginx_sys::ngx_http_top_header_filter;
    nginx_sys::ngx_http_top_header_filter = Some(filter);
}

unsafe extern "C" fn filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls header filters with a live request.
        unsafe { run(r) }
    })
}

unsafe fn run(r: *mut ngx_http_request_t) -> ngx_int_t {
    let lcf = loc_conf(r);
    if lcf.body_filter.is_some() {
        // The body filter reads data as strings: let the copy filter read
        // files into memory.
        (*r).set_filter_need_in_memory(1);
    }
    if let Some(code) = lcf.header_filter.clone().filter(|_| !IN_EXIT.with(|e| e.get())) {
        match run_code(r, &code) {
            Err(e) => {
                let msg = format!("failed to run header_filter_by_lua*: {e}");
                nlog::error(request_log(r), NGX_LOG_ERR, msg.as_bytes());
                return NGX_ERROR as ngx_int_t;
            }
            Ok(Some(code)) => return exit(r, code),
            Ok(None) => {}
        }
    }
    if capture::is_captured(r) {
        return capture::header(r);
    }
    match NEXT {
        Some(next) => next(r),
        None => NGX_ERROR as ngx_int_t,
    }
}

/// Runs the code; returns the status it passed to `ngx.exit`, if any.
unsafe fn run_code(r: *mut ngx_http_request_t, code: &LuaCode) -> Result<Option<ngx_int_t>, String> {
    let ctx = RequestCtx::get_or_create(r).ok_or("no memory")?;
    let (func, owned) = resolve(r, code)?;
    // The filter may run inside other code's ngx.exit (content's eof):
    // keep that code's exit status apart from the filter's.
    let outer = ctx.exit_code.take();
    let res = run_sync::in_request(ctx, context::HEADER_FILTER, func, 0, 0).map(|_| ());
    let exited = std::mem::replace(&mut ctx.exit_code, outer);
    if owned {
        if let Some(vm) = vm::current() {
            vm.unref(func);
        }
    }
    res.map(|_| exited.filter(|&c| c != NGX_OK as ngx_int_t))
}

thread_local! {
    /// Set while nginx sends the error page of a filter's ngx.exit: the
    /// filter code does not run again for it. A flag of the call in
    /// progress (the error page may run in a redirected location, whose
    /// request ctx is another), not state of the VM or the cycle.
    static IN_EXIT: Cell<bool> = const { Cell::new(false) };
}

/// `ngx.exit(code)` in the header filter: an error status replaces the
/// response with nginx's error page; closing codes abort it; others go on.
unsafe fn exit(r: *mut ngx_http_request_t, code: ngx_int_t) -> ngx_int_t {
    if code == NGX_ERROR as ngx_int_t || [408, 444, 499].contains(&code) {
        return NGX_ERROR as ngx_int_t;
    }
    if code >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
        IN_EXIT.with(|e| e.set(true));
        let rc = ngx_http_filter_finalize_request(r, module() as *const _ as *mut _, code);
        IN_EXIT.with(|e| e.set(false));
        return rc;
    }
    match NEXT {
        Some(next) if !capture::is_captured(r) => next(r),
        Some(_) => capture::header(r),
        None => NGX_ERROR as ngx_int_t,
    }
}
