//! rewrite_by_lua*: runs at the end of the rewrite phase (unless
//! rewrite_by_lua_no_postpone is on).

use nginx_sys::{NGX_DECLINED, NGX_ERROR, ngx_http_request_t, ngx_int_t};

use super::before_content;
use crate::conf::{loc_conf, main_conf};
use crate::runtime::context;
use crate::runtime::ctx::{Outcome, PhaseRun, RequestCtx};

fn state(ctx: &mut RequestCtx) -> &mut PhaseRun {
    &mut ctx.rewrite
}

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls phase handlers with a live request.
        unsafe {
            // The rewrite module changed the URI ("rewrite ... last"): nginx
            // will look the location up again; the code runs there.
            if (*r).uri_changed() != 0 {
                return NGX_DECLINED as ngx_int_t;
            }
            super::debug_entry(r, "rewrite");
            let lmcf = main_conf(r);
            if !lmcf.rewrite_no_postpone && before_content::postpone(r, &lmcf.rewrite_postponed, 1) {
                return NGX_DECLINED as ngx_int_t;
            }
            let Some(code) = loc_conf(r).rewrite.clone() else {
                return NGX_DECLINED as ngx_int_t;
            };
            before_content::handle(r, &code, context::REWRITE, state, finish_async)
        }
    })
}

fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    before_content::finish_async(ctx, outcome, state)
}
