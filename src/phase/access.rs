//! access_by_lua*: runs at the end of the access phase (unless
//! access_by_lua_no_postpone is on).

use nginx_sys::{ngx_http_request_t, ngx_int_t};
use ngx::core::Status;
use ngx::http::Request;

use super::before_content;
use crate::conf::{req_loc_conf, req_main_conf};
use crate::runtime::context;
use crate::runtime::ctx::{Outcome, PhaseRun, RequestCtx};

fn state(ctx: &mut RequestCtx) -> &mut PhaseRun {
    &mut ctx.access
}

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let req = unsafe { Request::from_ngx_http_request(r) };
    crate::glue::catch(Status::NGX_ERROR, || handle(req)).into()
}

fn handle(req: &mut Request) -> Status {
    super::debug_entry(req, "access");
    let r: *mut ngx_http_request_t = req.as_mut();
    let lmcf = req_main_conf(req);
    // SAFETY: `r` is `req`'s request, inside the phase engine.
    if !lmcf.access_no_postpone && unsafe { before_content::postpone(r, &lmcf.access_postponed, 2) } {
        return Status::NGX_DECLINED;
    }
    let Some(code) = req_loc_conf(req).access.clone() else {
        return Status::NGX_DECLINED;
    };
    before_content::handle(req, &code, context::ACCESS, state, finish_async)
}

fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    before_content::finish_async(ctx, outcome, state)
}
