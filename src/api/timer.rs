//! ngx.timer.at, ngx.timer.every, ngx.timer.running_count,
//! ngx.timer.pending_count.

use crate::conf::MainConf;
use crate::conf::{main_conf, main_conf_cycle};
use crate::glue::cconv;
use crate::glue::fake_request::ConfRef;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, bad_arg, check_number, ffi, lua_State, push_bytes, set_fn, type_name};
use crate::runtime::context;
use crate::runtime::ctx;
use crate::runtime::timer;

lua_fns! {
    at => at_impl,
    every => every_impl,
    running_count => running_count_impl,
    pending_count => pending_count_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 4);
        set_fn(l, -1, c"at", at);
        set_fn(l, -1, c"every", every);
        set_fn(l, -1, c"running_count", running_count);
        set_fn(l, -1, c"pending_count", pending_count);
        crate::lua::set_raw(l, -2, c"timer");
    }
}

unsafe fn at_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { create(l, "at", false) }
}

unsafe fn every_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { create(l, "every", true) }
}

unsafe fn create(l: *mut lua_State, fname: &str, repeat: bool) -> LuaRet {
    let now = context::current();
    if now == context::INIT || now == context::EXIT_WORKER {
        return Err(format!("API disabled in the context of {}", now.context_name()));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    // lua-nginx-module's `(ngx_msec_t) (secs * 1000)`: a negative, NaN or
    // infinite delay wraps to a timer that is due, so the callback runs at
    // once (an infinite one becomes 0, refused by `every`).
    // SAFETY: `l` is the running state Lua called this API function with
    let ms = cconv::msec(unsafe { check_number(l, 1, fname) }? * 1000.0);
    if repeat && ms == 0 {
        return Err("delay cannot be zero".into());
    }
    let ms = cconv::timer_delay(ms as i64) as nginx_sys::ngx_msec_t;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 2) } != ffi::LUA_TFUNCTION {
        let got = if n < 2 {
            "no value".to_string()
        } else {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { type_name(l, 2) }
        };
        return Err(bad_arg(2, fname, &format!("function expected, got {got}")));
    }
    let fail = |msg: &[u8]| {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe {
            ffi::lua_pushnil(l);
            push_bytes(l, msg);
        }
        Ok(2)
    };
    // A worker that is exiting still runs timers due at once (their
    // callbacks may finish the exit work), not later ones.
    // SAFETY: ngx_exiting is only written by nginx's own thread, this one
    if unsafe { nginx_sys::ngx_exiting } != 0 && ms > 0 {
        return fail(b"process exiting");
    }
    let (conf, lmcf) = match ctx::current() {
        // SAFETY: `c.r` is the live request of the current context
        Some(c) => (unsafe { ConfRef::of(c.r) }, unsafe { main_conf(c.r) }),
        // SAFETY: ngx_cycle is the live current cycle
        None => match (ConfRef::http_block(), unsafe {
            main_conf_cycle(nginx_sys::ngx_cycle)
        }) {
            (Some(c), Some(m)) => (c, &*m as &MainConf),
            _ => return fail(b"no http configuration"),
        },
    };
    if timer::pending_count() >= lmcf.max_pending_timers() {
        return fail(b"too many pending timers");
    }
    // The callback lives in the VM of the code running now: a request's own
    // VM (lua_code_cache off) is kept alive for the timer.
    let own_vm = ctx::current().and_then(|c| c.vm.clone());
    let in_cycle_vm = crate::lua::vm::current().is_some_and(crate::lua::vm::is_cycle);
    if own_vm.is_none() && !in_cycle_vm {
        return fail(b"no request VM");
    }
    // {fn, arg1, ...} keeps the callback and its arguments alive.
    let nargs = n - 2;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_createtable(l, nargs + 1, 0) };
    for i in 2..=n {
        // SAFETY: `l` is the running state Lua called this API function with; the table is on top
        unsafe {
            ffi::lua_pushvalue(l, i);
            ffi::lua_rawseti(l, -2, (i - 1) as _);
        }
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let call = unsafe { ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX) };
    // SAFETY: the current context's request, if any, is live while its code runs
    let origin = unsafe { timer::Origin::of(ctx::current().map_or(std::ptr::null_mut(), |c| c.r)) };
    let cb = timer::Callback {
        call,
        nargs,
        conf,
        max_running: lmcf.max_running_timers(),
        vm: own_vm,
        origin,
    };
    timer::arm(ms, repeat, cb);
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, 1) };
    Ok(1)
}

unsafe fn running_count_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, timer::running_count() as _) };
    Ok(1)
}

unsafe fn pending_count_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, timer::pending_count() as _) };
    Ok(1)
}
