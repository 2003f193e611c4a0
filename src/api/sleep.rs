//! ngx.sleep(seconds).

use crate::lua_fns;
use crate::runtime::ctx;
use crate::runtime::lua::{check_number, ffi, lua_State, set_fn, LuaRet};
use crate::runtime::phase::{self, YIELDABLE};
use crate::runtime::scheduler::yield_wait;
use crate::runtime::timer_wait;

lua_fns! { sleep => sleep_impl }

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    set_fn(l, -1, c"sleep", sleep);
}

unsafe fn sleep_impl(l: *mut lua_State) -> LuaRet {
    phase::check(YIELDABLE)?;
    if ffi::lua_gettop(l) != 1 {
        return Err("attempt to pass 0 or more than 1 arguments".into());
    }
    let secs = check_number(l, 1, "sleep")?;
    if secs < 0.0 {
        return Err("invalid sleep duration \"".to_string() + &secs.to_string() + "\"");
    }
    let ctx = ctx::request()?;
    let ms = (secs * 1000.0 + 0.5) as nginx_sys::ngx_msec_t;
    let ctx_ptr: *mut ctx::RequestCtx = ctx;
    let Some(t) = ctx.running_thread() else {
        return Err("no request thread to suspend".into());
    };
    let co = t.co;
    t.wait = Some(timer_wait::arm(ctx_ptr, co, ms));
    yield_wait(l)
}
