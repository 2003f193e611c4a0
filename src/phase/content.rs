//! content_by_lua*: the location's content handler.

use nginx_sys::{ngx_http_finalize_request, ngx_http_request_t, ngx_int_t};
use ngx::core::Status;
use ngx::http::Request;

use super::{error_rc, exec, exit_rc};
use crate::conf::req_loc_conf;
use crate::runtime::context;
use crate::runtime::ctx::{Outcome, RequestCtx};
use crate::runtime::output;

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls the content handler with a live request.
    let req = unsafe { Request::from_ngx_http_request(r) };
    crate::glue::catch(Status::NGX_ERROR, || handle(req)).into()
}

fn handle(req: &mut Request) -> Status {
    super::debug_entry(req, "content");
    let Some(code) = req_loc_conf(req).content.clone() else {
        return Status::NGX_DECLINED;
    };
    let Some(ctx) = RequestCtx::get_or_create(req) else {
        return Status::NGX_ERROR;
    };
    let r = ctx.r;
    let _vm = ctx.enter_vm();
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    unsafe { crate::runtime::client_abort::watch(r) };
    match super::run(ctx, &code, context::CONTENT, finish_async) {
        Outcome::Wait => {
            // Held until the code ends; finish_async finalizes it then.
            // (nginx set the empty write handler before calling us; a wait
            // such as ngx.flush(true) may have installed its own.)
            // SAFETY: r is live (the ctx's invariant); its main request outlives it.
            unsafe { (*(*r).main).set_count((*(*r).main).count() + 1) };
            Status::NGX_DONE
        }
        o => direct_rc(finish(ctx, o)),
    }
}

/// The code ended after waiting: finalize the request with the rc (an
/// `ngx.exit(ngx.DECLINED)` included: nginx then goes on to the location's
/// next content handler, as with lua-nginx-module).
fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    let r = ctx.r;
    let rc = finish(ctx, outcome);
    // SAFETY: r is live: our count++ at the yield holds it.
    unsafe { ngx_http_finalize_request(r, rc.into()) };
}

/// The content handler's rc once the code ended.
fn finish(ctx: &mut RequestCtx, outcome: Outcome) -> Status {
    match outcome {
        Outcome::Done => {
            let rc = Status(output::send_eof(ctx));
            if rc == Status::NGX_ERROR {
                rc
            } else {
                Status::NGX_OK
            }
        }
        Outcome::Exit(code) => Status(exit_rc(ctx, code, true)),
        Outcome::Exec => Status(exec(ctx)),
        Outcome::Error | Outcome::Wait => Status(error_rc(ctx)),
    }
}

/// The rc the content handler returns to nginx when the code ended without
/// waiting: lua-nginx-module's content handler turns the negative codes
/// nginx has no use for here (`ngx.exit(ngx.DECLINED)`, NGX_BUSY,
/// NGX_ABORT) into NGX_OK, so the request ends with whatever was sent.
fn direct_rc(rc: Status) -> Status {
    let passes = [Status::NGX_ERROR, Status::NGX_AGAIN, Status::NGX_DONE];
    if rc.0 < 0 && !passes.contains(&rc) {
        Status::NGX_OK
    } else {
        rc
    }
}
