//! access_by_lua*: runs at the end of the access phase (unless
//! access_by_lua_no_postpone is on).

use std::cell::Cell;

use nginx_sys::{ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_ERROR};

use super::early;
use crate::module::{loc_conf, main_conf};
use crate::runtime::ctx::{Outcome, PhaseRun, RequestCtx};
use crate::runtime::phase::Phase;

thread_local! {
    static POSTPONED: Cell<bool> = const { Cell::new(false) };
}

fn state(ctx: &mut RequestCtx) -> &mut PhaseRun {
    &mut ctx.access
}

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls phase handlers with a live request.
        unsafe {
            if !main_conf(r).access_no_postpone && early::postpone(r, &POSTPONED, 2) {
                return NGX_DECLINED as ngx_int_t;
            }
            let Some(code) = loc_conf(r).access.clone() else {
                return NGX_DECLINED as ngx_int_t;
            };
            early::handle(r, &code, Phase::Access, state)
        }
    })
}

pub fn finish_async(ctx: &mut RequestCtx, outcome: Outcome) {
    early::finish_async(ctx, outcome, state)
}
