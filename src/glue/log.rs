//! Writing to nginx's error log from Rust.

pub use nginx_sys::NGX_LOG_ALERT;
use nginx_sys::{ngx_cycle, ngx_log_t, ngx_uint_t};

/// The cycle's log, for code that runs outside any request.
pub fn cycle_log() -> *mut ngx_log_t {
    // SAFETY: ngx_cycle is set before any module code runs and stays valid
    // for the life of the process (it is replaced, never freed, on reload).
    unsafe { (*ngx_cycle).log }
}

/// Logs `msg` at `level` if the log accepts that level.
pub fn error(log: *mut ngx_log_t, level: u32, msg: &[u8]) {
    let log = if log.is_null() { cycle_log() } else { log };
    // SAFETY: `log` is a live nginx log; ngx_log_error_core copies the text.
    unsafe {
        if (*log).log_level < level as ngx_uint_t {
            return;
        }
        ngx::log::log_error(level as ngx_uint_t, log, 0, msg);
    }
}

/// Whether `level` would be written by `log`; lets callers skip formatting.
pub fn enabled(log: *mut ngx_log_t, level: u32) -> bool {
    let log = if log.is_null() { cycle_log() } else { log };
    // SAFETY: `log` is a live nginx log.
    unsafe { (*log).log_level >= level as ngx_uint_t }
}
