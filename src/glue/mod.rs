//! Small safe wrappers over nginx structures that the `ngx` crate does not
//! cover yet.

pub mod buf;
pub mod cconv;
pub mod complex;
pub mod digest;
pub mod escape;
pub mod fake_request;
pub mod headers;
pub mod headers_in;
pub mod headers_out;
pub mod list;
pub mod log;
pub mod log_hook;
pub mod log_ring;
pub mod loop_local;
pub mod ngx_version;
pub mod pcre2;
pub mod peer;
pub mod scratch_vec;
pub mod shdict_codec;
pub mod shdict_key;
pub mod shdict_store;
pub mod shmtx;
pub mod signals;
pub mod subrequest;
pub mod uri;

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs an nginx callback body; a panic is logged and turned into
/// `on_panic` instead of unwinding into nginx. Inlined into each callback
/// (every request enters several): the happy path is then just the body.
#[inline(always)]
pub fn catch<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            log_panic(e);
            on_panic
        }
    }
}

#[cold]
#[inline(never)]
fn log_panic(e: Box<dyn std::any::Any + Send>) {
    let what = e
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    log::log_error!(
        std::ptr::null_mut(),
        log::NGX_LOG_ALERT,
        "ngx_http_lua_module: internal error: {what}"
    );
}
