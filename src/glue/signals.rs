//! nginx's signal dispositions in a worker, and the flags its signal
//! handling sets.

use std::ffi::{c_char, c_void};

/// nginx's signal table (os/unix/ngx_process.c), terminated by signo 0.
#[repr(C)]
struct NgxSignal {
    signo: i32,
    signame: *const c_char,
    name: *const c_char,
    handler: *const c_void,
}

unsafe extern "C" {
    static signals: [NgxSignal; 0];
}

/// lua_sa_restart: nginx's signal handlers get SA_RESTART, so blocking Lua
/// I/O (io.*, os.execute) is not cut short by a signal.
pub fn set_sa_restart() {
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

/// True once the worker is shutting down (reload, quit, stop): the flags
/// nginx's signal handling sets.
pub fn worker_exiting() -> bool {
    // SAFETY: plain process-wide flags, written by nginx on the worker's one
    // thread (signal handlers only set ngx_quit/ngx_terminate).
    unsafe { nginx_sys::ngx_exiting != 0 || nginx_sys::ngx_quit != 0 || nginx_sys::ngx_terminate != 0 }
}
