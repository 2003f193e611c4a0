//! access_by_lua*: runs at the end of the access phase (unless
//! access_by_lua_no_postpone is on).

use nginx_sys::{NGX_DECLINED, NGX_ERROR, ngx_http_request_t, ngx_int_t};

use super::before_content;
use crate::conf::{loc_conf, main_conf};
use crate::runtime::context;
use crate::runtime::ctx::{Outcome, PhaseRun, RequestCtx};

fn state(ctx: &mut RequestCtx) -> &mut PhaseRun {
    &mut ctx.access
}

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls phase handlers with a live request.
        unsafe {
            super::debug_entry(r, "access");
            let lmcf = main_conf(r);
            if !lmcf.access_no_postpone && before_content::postpone(r, &lmcf.access_postponed, 2) {
                return NGX_DECLINED as ngx_int_t;
            }
            let Some(code) = loc_conf(r).access.clone() else {
                return NGX_DECLINED as ngx_int_t;
            };
            before_content::handle(r, &code, context::ACCESS, state, finish_async)
        }
    })
}

fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    before_content::finish_async(ctx, outcome, state)
}
