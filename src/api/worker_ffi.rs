//! `ngx.worker.pid`, `id`, `count` and `exiting` as C functions for
//! LuaJIT's FFI, with lua-nginx-module's names and signatures: our Lua
//! wrappers (`lua/worker.lua`) call them from compiled traces, and Lua code
//! written against lua-nginx-module's ABI (lua-resty-core's
//! `resty.core.worker`) runs on them unchanged. They read nginx's process
//! globals; none raises.

use std::ffi::c_int;

use nginx_sys::{NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER, ngx_cycle, ngx_pid, ngx_process, ngx_worker};

#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_worker_pid() -> c_int {
    // SAFETY: nginx's process globals are only touched by the event loop's
    // thread, the one Lua code runs on
    unsafe { ngx_pid as c_int }
}

/// This worker's number, or -1 outside a worker (the master, a helper).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_worker_id() -> c_int {
    // SAFETY: as in ngx_http_lua_ffi_worker_pid
    unsafe {
        if ngx_process != NGX_PROCESS_WORKER as nginx_sys::ngx_uint_t
            && ngx_process != NGX_PROCESS_SINGLE as nginx_sys::ngx_uint_t
        {
            return -1;
        }
        ngx_worker as c_int
    }
}

/// `worker_processes`, at least 1.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_worker_count() -> c_int {
    // SAFETY: ngx_cycle is the live current cycle; a core module's slot
    // holds its conf itself (ngx_get_conf), null before it is made
    unsafe {
        let conf = (*ngx_cycle).conf_ctx;
        if conf.is_null() {
            return 1;
        }
        let ccf = *conf.add(nginx_sys::ngx_core_module.index) as *const nginx_sys::ngx_core_conf_t;
        if ccf.is_null() {
            return 1;
        }
        (*ccf).worker_processes.max(1) as c_int
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_worker_exiting() -> c_int {
    crate::glue::signals::worker_exiting() as c_int
}
