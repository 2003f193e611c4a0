//! Writing to nginx's error log from Rust.

pub use nginx_sys::NGX_LOG_ALERT;
use nginx_sys::{ngx_cycle, ngx_log_t, ngx_uint_t};

/// The cycle's log, for code that runs outside any request.
pub fn cycle_log() -> *mut ngx_log_t {
    // SAFETY: ngx_cycle is set before any module code runs and stays valid
    // for the life of the process (it is replaced, never freed, on reload).
    unsafe { (*ngx_cycle).log }
}

thread_local! {
    // The log of Lua code that runs outside requests now, when it has one
    // of its own (init_worker_by_lua's): a per-process "now" by nature.
    static OUTSIDE_LOG: std::cell::Cell<*mut ngx_log_t> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// The log for Lua code running outside any request: the one set by
/// [`with_outside_log`], or the cycle's.
pub fn outside_request_log() -> *mut ngx_log_t {
    let log = OUTSIDE_LOG.with(|l| l.get());
    if log.is_null() { cycle_log() } else { log }
}

/// Runs `f` with `log` as [`outside_request_log`].
pub fn with_outside_log<R>(log: *mut ngx_log_t, f: impl FnOnce() -> R) -> R {
    let prev = OUTSIDE_LOG.with(|l| l.replace(log));
    let r = f();
    OUTSIDE_LOG.with(|l| l.set(prev));
    r
}

/// Logs `msg` at `level` if the log accepts that level.
pub fn error(log: *mut ngx_log_t, level: u32, msg: &[u8]) {
    error_errno(log, level, 0, msg)
}

/// Logs `msg` at `level` with the system error `err` appended as nginx
/// does (` (104: Connection reset by peer)`); 0 for none.
pub fn error_errno(log: *mut ngx_log_t, level: u32, err: i32, msg: &[u8]) {
    let log = if log.is_null() { cycle_log() } else { log };
    // SAFETY: `log` is a live nginx log; ngx_log_error_core copies the text.
    unsafe {
        if (*log).log_level < level as ngx_uint_t {
            return;
        }
        ngx::log::log_error(level as ngx_uint_t, log, err as _, msg);
    }
}

/// Whether `level` would be written by `log`; lets callers skip formatting.
pub fn enabled(log: *mut ngx_log_t, level: u32) -> bool {
    let log = if log.is_null() { cycle_log() } else { log };
    // SAFETY: `log` is a live nginx log.
    unsafe { (*log).log_level >= level as ngx_uint_t }
}

/// Whether `log` writes http debug lines (`error_log ... debug` in an
/// nginx built with --with-debug, as Debian's is).
#[inline]
pub fn debug_http_enabled(log: *mut ngx_log_t) -> bool {
    let log = if log.is_null() { cycle_log() } else { log };
    // SAFETY: `log` is a live nginx log.
    unsafe { (*log).log_level & nginx_sys::NGX_LOG_DEBUG_HTTP as ngx_uint_t != 0 }
}

/// Logs an http debug line, as ngx_log_debug does; `msg` is only built
/// when the line will be written. The level check is inlined where this is
/// called (the request path makes several), the writing is not.
#[inline]
pub fn debug_http(log: *mut ngx_log_t, msg: impl FnOnce() -> String) {
    if debug_http_enabled(log) {
        write_debug_http(log, msg);
    }
}

#[cold]
#[inline(never)]
fn write_debug_http(log: *mut ngx_log_t, msg: impl FnOnce() -> String) {
    let log = if log.is_null() { cycle_log() } else { log };
    // SAFETY: `log` is a live nginx log; ngx_log_error_core copies the text.
    unsafe { ngx::log::log_error(nginx_sys::NGX_LOG_DEBUG as ngx_uint_t, log, 0, msg().as_bytes()) };
}
