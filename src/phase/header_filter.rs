//! header_filter_by_lua*: our header filter, which also stops the headers
//! of captured subrequests (ngx.location.capture) from going further.

use nginx_sys::{ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_int_t, NGX_ERROR, NGX_LOG_ERR};

use super::{request_log, resolve};
use crate::conf::LuaCode;
use crate::glue::log as nlog;
use crate::module::loc_conf;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::phase::Phase;
use crate::runtime::{capture, run_sync, vm};

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
    if let Some(code) = lcf.header_filter.clone() {
        if let Err(e) = run_code(r, &code) {
            let msg = format!("failed to run header_filter_by_lua*: {e}");
            nlog::error(request_log(r), NGX_LOG_ERR, msg.as_bytes());
            return NGX_ERROR as ngx_int_t;
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

unsafe fn run_code(r: *mut ngx_http_request_t, code: &LuaCode) -> Result<(), String> {
    let ctx = RequestCtx::get_or_create(r).ok_or("no memory")?;
    let (func, owned) = resolve(r, code)?;
    let res = run_sync::in_request(ctx, Phase::HeaderFilter, func, 0, 0).map(|_| ());
    if owned {
        if let Some(vm) = vm::current() {
            vm.unref(func);
        }
    }
    res
}
