//! server_rewrite_by_lua*: runs in the server rewrite phase, with the
//! server block's configuration, before a location is chosen.

use nginx_sys::{ngx_http_request_t, ngx_int_t};
use ngx::core::Status;
use ngx::http::Request;

use super::before_content;
use crate::conf::req_loc_conf;
use crate::runtime::context;
use crate::runtime::ctx::{Outcome, PhaseRun, RequestCtx};

fn state(ctx: &mut RequestCtx) -> &mut PhaseRun {
    &mut ctx.server_rewrite
}

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let req = unsafe { Request::from_ngx_http_request(r) };
    crate::glue::catch(Status::NGX_ERROR, || handle(req)).into()
}

fn handle(req: &mut Request) -> Status {
    // The rewrite module changed the URI ("rewrite ... last"): nginx will
    // look the location up again; the code runs there.
    if req.as_ref().uri_changed() != 0 {
        return Status::NGX_DECLINED;
    }
    let Some(code) = req_loc_conf(req).server_rewrite.clone() else {
        return Status::NGX_DECLINED;
    };
    before_content::handle(req, &code, context::SERVER_REWRITE, state, finish_async)
}

fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    before_content::finish_async(ctx, outcome, state)
}
