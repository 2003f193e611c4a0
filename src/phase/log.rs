//! log_by_lua*: runs in the log phase; its code may not wait.

use nginx_sys::{NGX_LOG_ERR, ngx_http_request_t, ngx_int_t};
use ngx::core::Status;
use ngx::http::Request;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::resolve;
use crate::conf::{req_loc_conf, req_main_conf};
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::runtime::context;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::run_sync;

pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls log handlers with a live request.
    let req = unsafe { Request::from_ngx_http_request(r) };
    crate::glue::catch(Status::NGX_ERROR, || handle(req)).into()
}

/// Requests since the last malloc_trim: a count about this process's heap,
/// which outlives any cycle. Only the event loop's thread runs log phases;
/// a static, not a thread-local (whose every access is a call in a shared
/// library), and a plain load and store, not a read-modify-write.
static SINCE_TRIM: AtomicUsize = AtomicUsize::new(0);

/// lua_malloc_trim: give freed heap memory back to the system every N
/// requests (Lua's garbage collector frees much, glibc keeps it otherwise).
fn count_for_trim(every: usize) {
    if every == 0 {
        return;
    }
    let n = SINCE_TRIM.load(Relaxed) + 1;
    SINCE_TRIM.store(if n >= every { 0 } else { n }, Relaxed);
    if n >= every {
        // SAFETY: malloc_trim only releases free heap pages.
        let rc = unsafe { libc::malloc_trim(1) };
        nlog::log_error!(
            nlog::cycle_log(),
            nginx_sys::NGX_LOG_DEBUG,
            "malloc_trim(1) returned {rc}"
        );
    }
}

fn handle(req: &mut Request) -> Status {
    let lmcf = req_main_conf(req);
    count_for_trim(lmcf.malloc_trim());
    // lua-nginx-module has a log handler only for log_by_lua* or an explicit
    // lua_malloc_trim; we also have one for the default trim, silently.
    if lmcf.uses_log || lmcf.malloc_trim.is_some_and(|n| n > 0) {
        super::debug_entry(req, "log");
        if lmcf.malloc_trim() == 0 {
            nlog::log_debug_http!(req.log(), "malloc_trim() disabled");
        }
    }
    let Some(code) = req_loc_conf(req).log.clone() else {
        return Status::NGX_OK;
    };
    let Some(ctx) = RequestCtx::get_or_create(req) else {
        return Status::NGX_ERROR;
    };
    let _vm = ctx.enter_vm();
    ctx.context = context::LOG;
    ctx.on_finish = None;
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    let result = unsafe { resolve(ctx.r, &code) }
        .map_err(String::from)
        .and_then(|(func, owned)| {
            // SAFETY: the request's VM is current; `func` is the resolved log code
            let res = unsafe { run_sync::in_request(ctx, context::LOG, func, 0, 0) }.map(|_| ());
            if owned && let Some(vm) = vm::current() {
                vm.unref(func);
            }
            res
        });
    if let Err(e) = result {
        nlog::log_error!(ctx.log(), NGX_LOG_ERR, "failed to run log_by_lua*: {e}");
    }
    Status::NGX_OK
}
