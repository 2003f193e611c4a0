//! init_worker_by_lua* at each worker start and exit_worker_by_lua* at its
//! exit.

use nginx_sys::{NGX_LOG_ERR, NGX_PROCESS_HELPER, ngx_cycle_t, ngx_int_t, ngx_process};
use ngx::core::Status;

use crate::conf::code::{FilePath, Source};
use crate::conf::{LuaCode, MainConf};
use crate::glue::fake_request;
use crate::glue::log as nlog;
use crate::runtime::context::{self, Context};
use crate::runtime::run_sync;

fn run_code(lmcf: &MainConf, code: &LuaCode, phase: Context, what: &str) {
    let Some(vm) = lmcf.vm.as_ref() else { return };
    // lua-nginx-module reports "init_worker_by_lua error: <message>" (or
    // "..._file error: "), with the compiler's or the error's own text.
    let (func, label) = match &code.0.source {
        Source::Inline { .. } => (super::compiled_inline(vm, code), what.to_string()),
        Source::File(FilePath::Fixed(p)) => (
            vm.load_file(p, true).map_err(String::from),
            format!("{what}_file"),
        ),
        Source::File(FilePath::Complex(_)) => (
            Err(format!("variables are not allowed in {what}_file")),
            format!("{what}_file"),
        ),
    };
    // SAFETY: the worker's VM is set by init_process before this runs.
    if let Err(e) = func.and_then(|f| unsafe { run_sync::outside_request(phase, f) }) {
        nlog::log_error!(nlog::outside_request_log(), NGX_LOG_ERR, "{label} error: {e}");
    }
}

/// # Safety
/// Called from init_process with the live cycle.
pub unsafe fn run(_cycle: *mut ngx_cycle_t, lmcf: &mut MainConf) -> ngx_int_t {
    // Cache manager and loader processes run no Lua: their copy of the VM
    // goes, as lua-nginx-module closes it there.
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    if unsafe { ngx_process } == NGX_PROCESS_HELPER as nginx_sys::ngx_uint_t {
        if let Some(vm) = lmcf.vm.take() {
            crate::lua::vm::set_current(None);
            // SAFETY: set once at process start, read on nginx's one thread
            let (main, pid) = (vm.main() as usize, unsafe { nginx_sys::ngx_pid });
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua close the global Lua VM {main:016X} in the cache helper process {pid}"
            );
            drop(vm);
        }
        return Status::NGX_OK.into();
    }
    crate::runtime::timer::install_shutdown_watcher();
    if lmcf.sa_restart() {
        crate::glue::signals::set_sa_restart();
    }
    if let Some(code) = &lmcf.init_worker {
        // Its log lines carry a connection number and ", context:
        // init_worker_by_lua*", as lua-nginx-module's fake connection's do.
        // SAFETY: ngx_cycle is the live current cycle
        let log = unsafe {
            fake_request::context_log((*nginx_sys::ngx_cycle).pool, &fake_request::INIT_WORKER_CONTEXT)
        };
        let log = if log.is_null() { nlog::cycle_log() } else { log };
        nlog::with_outside_log(log, || {
            run_code(lmcf, code, context::INIT_WORKER, "init_worker_by_lua")
        });
        crate::runtime::pipe::end_init_worker();
    }
    Status::NGX_OK.into()
}

/// # Safety
/// Called from exit_process.
pub unsafe fn run_exit(lmcf: &MainConf) {
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    if unsafe { ngx_process } == NGX_PROCESS_HELPER as nginx_sys::ngx_uint_t {
        return;
    }
    if let Some(code) = &lmcf.exit_worker {
        run_code(lmcf, code, context::EXIT_WORKER, "exit_worker_by_lua");
    }
}
