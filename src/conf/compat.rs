//! Directives of lua-nginx-module that tune its machinery: the coroutine
//! cache, SA_RESTART on the workers' signals, and the deprecated
//! lua_load_resty_core (our API is built in).

use std::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t, NGX_CONF_FLAG, NGX_HTTP_MAIN_CONF};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::directives::{cmd, T1};
use super::{args, MainConf};

const M: usize = nginx_sys::NGX_HTTP_MAIN_CONF_OFFSET;

pub const COMMANDS: [ngx_command_t; 3] = [
    cmd(
        c"lua_load_resty_core",
        NGX_HTTP_MAIN_CONF | NGX_CONF_FLAG,
        load_resty_core,
        M,
        0,
    ),
    cmd(
        c"lua_thread_cache_max_entries",
        NGX_HTTP_MAIN_CONF | T1,
        thread_cache,
        M,
        0,
    ),
    cmd(
        c"lua_sa_restart",
        NGX_HTTP_MAIN_CONF | NGX_CONF_FLAG,
        sa_restart,
        M,
        0,
    ),
];

unsafe extern "C" fn load_resty_core(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        ngx::ngx_conf_log_error!(
            nginx_sys::NGX_LOG_WARN,
            cf,
            "lua_load_resty_core is deprecated (the lua-resty-core library is required since ngx_lua v0.10.16)"
        );
        NGX_CONF_OK
    })
}

unsafe extern "C" fn thread_cache(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing the http block with our MainConf.
        unsafe {
            let m = &mut *(conf as *mut MainConf);
            let n = match args::count(cf) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if let Some(vm) = m.vm.as_ref() {
                vm.set_idle_threads_max(n);
            }
            args::set_once(&mut m.thread_cache_max, n)
        }
    })
}

unsafe extern "C" fn sa_restart(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing the http block with our MainConf.
        unsafe {
            match args::flag(cf, cmd) {
                Ok(on) => args::set_once(&mut (*(conf as *mut MainConf)).sa_restart, on),
                Err(e) => e,
            }
        }
    })
}

/// nginx's signal table (os/unix/ngx_process.c), terminated by signo 0.
#[repr(C)]
struct NgxSignal {
    signo: i32,
    signame: *const c_char,
    name: *const c_char,
    handler: *const c_void,
}

extern "C" {
    static signals: [NgxSignal; 0];
}

/// lua_sa_restart (default on): nginx's signal handlers get SA_RESTART in
/// the workers, so blocking Lua I/O (io.*, os.execute) is not cut short by
/// a signal.
pub fn apply_sa_restart(lmcf: &MainConf) {
    if !lmcf.sa_restart.unwrap_or(true) {
        return;
    }
    // SAFETY: nginx's signal table is static and ends with signo 0; we only
    // add a flag to the dispositions nginx installed.
    unsafe {
        let mut sig = signals.as_ptr();
        while (*sig).signo != 0 {
            let mut act: libc::sigaction = std::mem::zeroed();
            if libc::sigaction((*sig).signo, std::ptr::null(), &mut act) == 0
                && act.sa_sigaction != libc::SIG_DFL
                && act.sa_sigaction != libc::SIG_IGN
            {
                act.sa_flags |= libc::SA_RESTART;
                libc::sigaction((*sig).signo, &act, std::ptr::null_mut());
            }
            sig = sig.add(1);
        }
    }
}
