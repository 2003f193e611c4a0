//! Reaping `ngx.pipe` children on a stock nginx.
//!
//! nginx's signal handler, inherited by every worker, answers SIGCHLD with
//! `waitpid(-1, ...)`: it would take our children's exit statuses. A
//! worker has no children of nginx's own (only the master spawns and reaps
//! processes), so on the first spawn a worker installs its own SIGCHLD
//! handler: it only writes a byte to a non-blocking self-pipe, whose read
//! end is an nginx connection; its read event reaps each child of ours with
//! `waitpid(pid, WNOHANG)` and hands the status to the process object. The
//! master's handling is untouched. Like lua-nginx-module, each reaped
//! child is logged as nginx's handler would ("signal 17 (SIGCHLD) received
//! from <pid>").

use std::cell::RefCell;
use std::ffi::c_int;
use std::ptr;

use nginx_sys::{NGX_LOG_NOTICE, ngx_connection_t, ngx_event_t, ngx_get_connection, ngx_handle_read_event};

use crate::glue::log as nlog;

/// How a child ended: (reason code, status): 1 exit (code), 2 signal
/// (number), 3 unknown (raw status).
pub type Ended = (u8, c_int);

/// Called with the child's end; the pointer was given with [`watch`].
pub type OnEnd = unsafe fn(*mut std::ffi::c_void, Ended);

thread_local! {
    // Per process by nature: the children of this worker and the signal
    // pipe exist once per process, not per cycle or VM (a child outlives a
    // reload's VM until it is reaped).
    static CHILDREN: RefCell<Vec<(libc::pid_t, *mut std::ffi::c_void, Option<OnEnd>)>> = const { RefCell::new(Vec::new()) };
    static SIGNAL_PIPE: RefCell<Option<c_int>> = const { RefCell::new(None) };
}

/// The write end of the self-pipe, for the signal handler (an atomic: a
/// signal handler may read nothing else).
static WRITE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_sigchld(_sig: c_int) {
    let fd = WRITE_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; errno is saved around it.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, b"x".as_ptr().cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Installs the handler and the self-pipe once per process.
pub fn ensure_handler() -> Result<(), String> {
    if SIGNAL_PIPE.with(|p| p.borrow().is_some()) {
        return Ok(());
    }
    let mut fds = [0 as c_int; 2];
    // SAFETY: plain system calls on fds we own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) == -1 {
            return Err(format!("pipe failed: {}", std::io::Error::last_os_error()));
        }
        let c: *mut ngx_connection_t = ngx_get_connection(fds[0], nlog::cycle_log());
        if c.is_null() {
            libc::close(fds[0]);
            libc::close(fds[1]);
            return Err("no connection".into());
        }
        (*(*c).read).handler = Some(on_readable);
        (*(*c).read).log = nlog::cycle_log();
        ngx_handle_read_event((*c).read, 0);
        WRITE_FD.store(fds[1], std::sync::atomic::Ordering::Relaxed);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as *const () as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGCHLD, &sa, ptr::null_mut()) == -1 {
            return Err(format!(
                "sigaction(SIGCHLD) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    SIGNAL_PIPE.with(|p| *p.borrow_mut() = Some(fds[0]));
    Ok(())
}

/// Follows `pid`: `on_end(data, how)` runs in the event loop once it ended.
pub fn watch(pid: libc::pid_t, data: *mut std::ffi::c_void, on_end: OnEnd) {
    CHILDREN.with(|c| c.borrow_mut().push((pid, data, Some(on_end))));
    // A child that ended before it was registered: its signal came first.
    reap();
}

/// Stops telling anyone about `pid`; it is still reaped when it ends.
pub fn forget(pid: libc::pid_t) {
    CHILDREN.with(|c| {
        for e in c.borrow_mut().iter_mut().filter(|e| e.0 == pid) {
            e.2 = None;
        }
    });
}

unsafe extern "C" fn on_readable(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: the self-pipe's connection; drain it (edge-triggered).
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let mut buf = [0u8; 64];
            for _ in 0..10_000 {
                if libc::read((*c).fd, buf.as_mut_ptr().cast(), buf.len()) <= 0 {
                    break;
                }
            }
            ngx_handle_read_event(ev, 0);
        }
        reap();
    })
}

/// Collects every ended child of ours and tells its owner.
fn reap() {
    let ended: Vec<_> = CHILDREN.with(|c| {
        let mut out = Vec::new();
        c.borrow_mut().retain(|&(pid, data, on_end)| {
            let mut status: c_int = 0;
            // SAFETY: our own child's pid.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == 0 {
                return true;
            }
            if r == pid {
                out.push((pid, data, on_end, status));
            }
            // r == -1 (ECHILD): someone else reaped it; nothing to wait for.
            false
        });
        out
    });
    for (pid, data, on_end, status) in ended {
        nlog::log_error!(
            nlog::cycle_log(),
            NGX_LOG_NOTICE,
            "signal {} (SIGCHLD) received from {pid}",
            libc::SIGCHLD
        );
        let how = if libc::WIFSIGNALED(status) {
            (2, libc::WTERMSIG(status))
        } else if libc::WIFEXITED(status) {
            (1, libc::WEXITSTATUS(status))
        } else {
            (3, status)
        };
        if let Some(f) = on_end {
            // SAFETY: the owner registered `data` with `f` and calls
            // `forget` before `data` goes away.
            unsafe { f(data, how) };
        }
    }
}
