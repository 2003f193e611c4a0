//! ngx.sleep(seconds).

use crate::glue::cconv;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_number, ffi, lua_State, set_fn};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::yield_thread;
use crate::runtime::timer_wait;

lua_fns! { sleep => sleep_impl }

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"sleep", sleep) };
}

unsafe fn sleep_impl(l: *mut lua_State) -> LuaRet {
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 1 {
        return Err(format!("attempt to pass {n} arguments, but accepted 1"));
    }
    // lua-nginx-module's `(ngx_int_t) (secs * 1000)`: NaN and infinities
    // become the most negative integer and are refused like -1; the
    // message shows the low 32 bits, as its "%d" does.
    // SAFETY: `l` is the running state Lua called this API function with
    let delay = cconv::int64(unsafe { check_number(l, 1, "sleep") }? * 1000.0);
    if delay < 0 {
        return Err(format!("invalid sleep duration \"{}\"", delay as i32));
    }
    let ctx = ctx::request()?;
    let ms = cconv::timer_delay(delay) as nginx_sys::ngx_msec_t;
    let log = ctx.log();
    let ctx_ptr: *mut RequestCtx = ctx;
    let Some(t) = ctx.running_thread() else {
        return Err("no request thread to suspend".into());
    };
    crate::glue::log::log_debug_http!(log, "lua ready to sleep for {ms} ms");
    timer_wait::arm(t, ctx_ptr, log, ms);
    // SAFETY: `l` is the running state Lua called this API function with; the wait was stored on `t`, the running thread
    unsafe { yield_thread(Some(t), l) }
}
