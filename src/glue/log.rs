//! Writing to nginx's error log from Rust.

pub use nginx_sys::NGX_LOG_ALERT;
use nginx_sys::{ngx_cycle, ngx_log_t, ngx_uint_t};

/// The cycle's log, for code that runs outside any request.
pub fn cycle_log() -> *mut ngx_log_t {
    // SAFETY: ngx_cycle is set before any module code runs and stays valid
    // for the life of the process (it is replaced, never freed, on reload).
    unsafe { (*ngx_cycle).log }
}

// Per thread, without a thread-local access on the event loop's.
super::loop_local::loop_local! {
    // The log of Lua code that runs outside requests now, when it has one
    // of its own (init_worker_by_lua's): a per-process "now" by nature.
    static OUTSIDE_LOG: std::cell::Cell<*mut ngx_log_t> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// The log for Lua code running outside any request: the one set by
/// [`with_outside_log`], or the cycle's.
pub fn outside_request_log() -> *mut ngx_log_t {
    let log = OUTSIDE_LOG.get();
    if log.is_null() { cycle_log() } else { log }
}

/// Runs `f` with `log` as [`outside_request_log`].
pub fn with_outside_log<R>(log: *mut ngx_log_t, f: impl FnOnce() -> R) -> R {
    let prev = OUTSIDE_LOG.replace(log);
    let r = f();
    OUTSIDE_LOG.set(prev);
    r
}

/// `log`, or the cycle's log for a null one.
#[inline]
pub fn or_cycle(log: *mut ngx_log_t) -> *mut ngx_log_t {
    if log.is_null() { cycle_log() } else { log }
}

/// Logs `msg` at `level` if the log accepts that level: for text that
/// exists as bytes already (Lua strings, which need not be UTF-8).
pub fn error(log: *mut ngx_log_t, level: u32, msg: &[u8]) {
    let log = or_cycle(log);
    if enabled(log, level) {
        // SAFETY: `log` is a live nginx log; ngx_log_error_core copies the text.
        unsafe { ngx::log::log_error(level as ngx_uint_t, log, 0, msg) };
    }
}

/// Whether `level` would be written by `log`; lets callers skip formatting.
/// Inlined: the request path checks levels several times per request.
#[inline]
pub fn enabled(log: *mut ngx_log_t, level: u32) -> bool {
    let log = or_cycle(log);
    // SAFETY: `log` is a live nginx log.
    unsafe { (*log).log_level >= level as ngx_uint_t }
}

/// Whether `log` writes http debug lines (`error_log ... debug` in an
/// nginx built with --with-debug, as Debian's is).
#[inline]
pub fn debug_http_enabled(log: *mut ngx_log_t) -> bool {
    let log = or_cycle(log);
    // SAFETY: `log` is a live nginx log.
    unsafe { (*log).log_level & nginx_sys::NGX_LOG_DEBUG_HTTP as ngx_uint_t != 0 }
}

/// Formats `args` into a stack buffer and writes it to `log` at `level`,
/// with the system error `err` appended as nginx does
/// (` (104: Connection reset by peer)`; 0 for none). No level check: the
/// macros below check first, so nothing is formatted for a line that is
/// not written. Out of line so that the buffer and the formatting code are
/// not copied into every call site.
///
/// The buffer is ngx's `LOG_BUFFER_SIZE`: NGX_MAX_ERROR_STR less the
/// shortest line prefix, so it never cuts text nginx would have kept
/// (nginx truncates the whole line at NGX_MAX_ERROR_STR).
#[doc(hidden)]
#[cold]
#[inline(never)]
pub fn write_args(log: *mut ngx_log_t, level: u32, err: i32, args: std::fmt::Arguments<'_>) {
    let mut buf = [const { std::mem::MaybeUninit::<u8>::uninit() }; ngx::log::LOG_BUFFER_SIZE];
    let text = ngx::log::write_fmt(&mut buf, args);
    // SAFETY: `log` is a live nginx log (callers resolve null to the
    // cycle's); ngx_log_error_core copies the text.
    unsafe { ngx::log::log_error(level as ngx_uint_t, log, err as _, text) };
}

/// `log_error!(log, LEVEL, "fmt", args...)`: writes a formatted line if
/// `log` (the cycle's for a null one) accepts LEVEL; the arguments are
/// neither evaluated nor formatted otherwise. Our own macro rather than
/// ngx's `ngx_log_error!`, which takes no null log, no errno, and inlines
/// its 2 KB buffer and formatting at every call site.
macro_rules! log_error {
    ($log:expr, $level:expr, $($arg:tt)+) => {
        $crate::glue::log::log_error_errno!($log, $level, 0, $($arg)+)
    };
}

/// `log_error_errno!(log, LEVEL, err, "fmt", args...)`: as `log_error!`,
/// with the system error `err` appended as nginx does (0 for none).
macro_rules! log_error_errno {
    ($log:expr, $level:expr, $err:expr, $($arg:tt)+) => {{
        let log = $crate::glue::log::or_cycle($log);
        let level: u32 = $level;
        if $crate::glue::log::enabled(log, level) {
            $crate::glue::log::write_args(log, level, $err, ::std::format_args!($($arg)+));
        }
    }};
}

/// `log_debug_http!(log, "fmt", args...)`: an http debug line, as
/// ngx_log_debug writes them, only formatted when `log` (the cycle's for a
/// null one) has the NGX_LOG_DEBUG_HTTP bit.
macro_rules! log_debug_http {
    ($log:expr, $($arg:tt)+) => {{
        let log = $crate::glue::log::or_cycle($log);
        if $crate::glue::log::debug_http_enabled(log) {
            $crate::glue::log::write_args(log, ::nginx_sys::NGX_LOG_DEBUG, 0, ::std::format_args!($($arg)+));
        }
    }};
}

pub(crate) use {log_debug_http, log_error, log_error_errno};

/// Bytes shown as `String::from_utf8_lossy` shows them (invalid sequences
/// as U+FFFD), without building the String.
pub struct Lossy<'a>(pub &'a [u8]);

impl std::fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}
