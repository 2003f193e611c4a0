//! log_by_lua*: runs in the log phase; its code may not wait.

use nginx_sys::{ngx_http_request_t, ngx_int_t, NGX_ERROR, NGX_LOG_ERR, NGX_OK};

use super::{request_log, resolve};
use crate::glue::log as nlog;
use crate::module::loc_conf;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::phase::Phase;
use crate::runtime::{run_sync, vm};

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls log handlers with a live request.
        unsafe { handle(r) }
    })
}

unsafe fn handle(r: *mut ngx_http_request_t) -> ngx_int_t {
    let Some(code) = loc_conf(r).log.clone() else {
        return NGX_OK as ngx_int_t;
    };
    let Some(ctx) = RequestCtx::get_or_create(r) else {
        return NGX_ERROR as ngx_int_t;
    };
    ctx.phase = Phase::Log;
    let result = resolve(r, &code).and_then(|(func, owned)| {
        let res = run_sync::in_request(ctx, Phase::Log, func, 0, 0).map(|_| ());
        if owned {
            if let Some(vm) = vm::current() {
                vm.unref(func);
            }
        }
        res
    });
    if let Err(e) = result {
        nlog::error(
            request_log(r),
            NGX_LOG_ERR,
            format!("failed to run log_by_lua*: {e}").as_bytes(),
        );
    }
    NGX_OK as ngx_int_t
}
