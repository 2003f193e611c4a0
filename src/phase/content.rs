//! content_by_lua*: the location's content handler.

use nginx_sys::{NGX_DONE, NGX_ERROR, NGX_OK, ngx_http_finalize_request, ngx_http_request_t, ngx_int_t};

use super::{error_rc, exec, exit_rc};
use crate::conf::loc_conf;
use crate::runtime::context;
use crate::runtime::ctx::{Outcome, RequestCtx};
use crate::runtime::output;

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls the content handler with a live request.
        unsafe { handle(r) }
    })
}

unsafe fn handle(r: *mut ngx_http_request_t) -> ngx_int_t {
    super::debug_entry(r, "content");
    // SAFETY: `r` is a live request (callers' duty)
    // (borrowed: the location's configuration outlives its requests)
    let Some(code) = &unsafe { loc_conf(r) }.content else {
        return nginx_sys::NGX_DECLINED as ngx_int_t;
    };
    // SAFETY: `r` is a live request (callers' duty)
    let Some(ctx) = (unsafe { RequestCtx::get_or_create(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    let _vm = ctx.enter_vm();
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { crate::runtime::client_abort::watch(r) };
    match super::run(ctx, code, context::CONTENT, finish_async) {
        Outcome::Wait => {
            // Held until the code ends; finish_async finalizes it then.
            // (nginx set the empty write handler before calling us; a wait
            // such as ngx.flush(true) may have installed its own.)
            // SAFETY: `r` is a live request (callers' duty)
            unsafe { (*(*r).main).set_count((*(*r).main).count() + 1) };
            NGX_DONE as ngx_int_t
        }
        o => finish(ctx, o),
    }
}

/// The code ended after waiting: finalize the request with the rc.
fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    let r = ctx.r;
    let rc = finish(ctx, outcome);
    // SAFETY: r is live: our count++ at the yield holds it.
    unsafe { ngx_http_finalize_request(r, rc) };
}

/// The content handler's rc once the code ended.
fn finish(ctx: &mut RequestCtx, outcome: Outcome) -> ngx_int_t {
    match outcome {
        Outcome::Done => {
            let rc = output::send_eof(ctx);
            if rc == NGX_ERROR as ngx_int_t {
                rc
            } else {
                NGX_OK as ngx_int_t
            }
        }
        Outcome::Exit(code) => exit_rc(ctx, code, true),
        Outcome::Exec => exec(ctx),
        Outcome::Error | Outcome::Wait => error_rc(ctx.r),
    }
}
