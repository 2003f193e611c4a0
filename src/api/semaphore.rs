//! `require "ngx.semaphore"`: lua-resty-core's semaphore API over
//! `runtime::semaphore`. A semaphore is a userdata holding an
//! `Rc<Semaphore>`; waiting threads hold their own reference, so a collected
//! userdata never pulls the semaphore from under them.

use std::ffi::{CStr, c_int, c_void};
use std::mem::MaybeUninit;
use std::rc::Rc;

use crate::glue::cconv;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, bad_arg, ffi, lua_State, push_bytes, push_cstr, set_fn, type_name};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx;
use crate::runtime::scheduler::yield_wait;
use crate::runtime::semaphore::Semaphore;

lua_fns! {
    open => open_impl,
    new => new_impl,
    post => post_impl,
    wait => wait_impl,
    count => count_impl,
    gc => gc_impl,
    tostring => tostring_impl,
}

/// Registry key of the semaphores' metatable.
static METATABLE: u8 = 0;

type Slot = Option<Rc<Semaphore>>;

/// Registers the module in `package.preload`.
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install(l: *mut lua_State) {
    // The module table doubles as the methods table, as in lua-resty-core.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_createtable(l, 0, 5) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"new", new) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"post", post) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"wait", wait) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"count", count) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { push_cstr(l, c"0.1.28") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"version") };

    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushlightuserdata(l, metatable_key()) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_createtable(l, 0, 3) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushvalue(l, -3) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"__index") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"__gc", gc) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"__tostring", tostring) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX) };

    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, -1, c"preload") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushvalue(l, -3) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushcclosure(l, open, 1) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"ngx.semaphore") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pop(l, 3) };
}

fn metatable_key() -> *mut c_void {
    &METATABLE as *const u8 as *mut c_void
}

unsafe fn open_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1)) };
    Ok(1)
}

/// `semaphore.new(n?)`
unsafe fn new_impl(l: *mut lua_State) -> LuaRet {
    // lua-resty-core's `tonumber(n) or 0`: anything but a number (or a
    // numeric string) is 0, so that `semaphore:new(n)` (the module as
    // first argument) makes an empty semaphore as it does there.
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_tonumber(l, 1) };
    if n < 0.0 {
        return Err("no negative number".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let ud = unsafe { ffi::lua_newuserdata(l, std::mem::size_of::<Slot>()) } as *mut Slot;
    // SAFETY: fresh userdata memory of the right size, suitably aligned
    // (Lua aligns userdata for any pointer-sized value).
    unsafe { ud.write(Some(Semaphore::new(n as i64))) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushlightuserdata(l, metatable_key()) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_setmetatable(l, -2) };
    Ok(1)
}

/// `sema:post(n?)`: allowed in every context.
unsafe fn post_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let sema = unsafe { check_sema(l) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { opt_number(l, 2, "post") }?.unwrap_or(1.0);
    if n < 1.0 {
        return Err("no negative number".into());
    }
    sema.post(n as i64);
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

/// `sema:count()`
unsafe fn count_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let sema = unsafe { check_sema(l) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, sema.count() as ffi::lua_Integer) };
    Ok(1)
}

/// `sema:wait(timeout)`: `true` at once or after waiting, `nil, "timeout"`
/// when it may not wait, `false, "timeout"` when the wait ran out.
unsafe fn wait_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let sema = unsafe { check_sema(l) }?;
    if !context::current().is(context::ANY_REQUEST | context::ON_FAKE_REQUEST) {
        return Err("no request found".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(secs) = unsafe { opt_number(l, 2, "wait") }? else {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(unsafe { arg_error(l, 2, "wait", "number expected, got nil") });
    };
    if secs * 1000.0 < 0.0 {
        return Err("no negative number".into());
    }
    // lua-resty-core passes the milliseconds as a C `int`: NaN, infinity
    // and 2^31 ms or more become INT_MIN, whose timer is due at once, so
    // such a wait times out instead of hanging.
    let ms = cconv::int32(secs * 1000.0);
    if let Err(e) = context::check(YIELDABLE) {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { push_bytes(l, e.as_bytes()) };
        return Ok(2);
    }
    if sema.try_take() {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushboolean(l, 1) };
        return Ok(1);
    }
    if ms == 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { push_cstr(l, c"timeout") };
        return Ok(2);
    }
    let ctx = ctx::request()?;
    let ctx_ptr: *mut ctx::RequestCtx = ctx;
    let Some(t) = ctx.running_thread() else {
        return Err("no request thread to suspend".into());
    };
    let co = t.co;
    // `(ngx_msec_t) wait_ms`: a negative int sign-extends into the past,
    // a timer due at once.
    t.wait = Some(
        sema.enqueue(
            ctx_ptr,
            co,
            cconv::timer_delay(ms as i64) as nginx_sys::ngx_msec_t,
        )
        .into(),
    );
    drop(sema);
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

unsafe fn gc_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { ffi::lua_topointer(l, 1) } as usize;
    crate::glue::log::log_debug_http!(crate::glue::log::cycle_log(), "in lua gc, semaphore {p:016X}");
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(slot) = unsafe { slot_at(l, 1) } {
        // SAFETY: the slot was written by new(); taking leaves None, so a
        // resurrected userdata is merely an invalid instance.
        drop(unsafe { (*slot).take() });
    }
    Ok(0)
}

unsafe fn tostring_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = format!("semaphore: {:p}", unsafe { ffi::lua_topointer(l, 1) });
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, s.as_bytes()) };
    Ok(1)
}

/// The userdata slot at `idx` if it is one of our semaphores.
unsafe fn slot_at(l: *mut lua_State, idx: c_int) -> Option<*mut Slot> {
    // SAFETY: `l` is the running state (callers' duty)
    let p = unsafe { ffi::lua_touserdata(l, idx) };
    // SAFETY: `l` is the running state (callers' duty)
    if p.is_null() || unsafe { ffi::lua_getmetatable(l, idx) } == 0 {
        return None;
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushlightuserdata(l, metatable_key()) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX) };
    // SAFETY: `l` is the running state (callers' duty)
    let ours = unsafe { ffi::lua_rawequal(l, -1, -2) } != 0;
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pop(l, 2) };
    ours.then_some(p as *mut Slot)
}

/// The semaphore `self` (argument 1), with lua-resty-core's error.
unsafe fn check_sema(l: *mut lua_State) -> Result<Rc<Semaphore>, String> {
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { slot_at(l, 1) })
        // SAFETY: slot_at gives a live Slot userdata of ours
        .and_then(|s| unsafe { (*s).clone() })
        .ok_or_else(|| "not a semaphore instance".to_string())
}

/// An optional number argument (numeric strings convert, as tonumber does).
unsafe fn opt_number(l: *mut lua_State, idx: c_int, fname: &str) -> Result<Option<f64>, String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => Ok(None),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TNUMBER => Ok(Some(unsafe { ffi::lua_tonumber(l, idx) })),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING if unsafe { ffi::lua_isnumber(l, idx) } != 0 => {
            // SAFETY: `l` is the running state (callers' duty)
            Ok(Some(unsafe { ffi::lua_tonumber(l, idx) }))
        }
        _ => {
            // SAFETY: `l` is the running state (callers' duty)
            let got = unsafe { type_name(l, idx) };
            // SAFETY: `l` is the running state (callers' duty)
            Err(unsafe { arg_error(l, idx, fname, &format!("number expected, got {got}")) })
        }
    }
}

/// luaL_argerror's text: in a method call (`sema:wait(x)`) `self` is not
/// counted.
unsafe fn arg_error(l: *mut lua_State, idx: c_int, fname: &str, extra: &str) -> String {
    // SAFETY: lua_Debug is plain C data, all-zero is a valid value
    let mut ar = unsafe { MaybeUninit::<ffi::lua_Debug>::zeroed().assume_init() };
    let mut n = idx;
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_getstack(l, 0, &mut ar) } != 0
        // SAFETY: `l` is the running state (callers' duty)
        && unsafe { ffi::lua_getinfo(l, c"n".as_ptr(), &mut ar) } != 0
    {
        // SAFETY: lua_getinfo set a non-null `namewhat` to a NUL-terminated string
        let method = !ar.namewhat.is_null() && unsafe { CStr::from_ptr(ar.namewhat) }.to_bytes() == b"method";
        if method {
            n -= 1;
        }
    }
    bad_arg(n, fname, extra)
}
