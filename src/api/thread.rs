//! ngx.thread.spawn, ngx.thread.wait, ngx.thread.kill ("light threads").

use crate::lua::lua_fns;
use crate::lua::{LuaRet, bad_arg, ffi, lua_State, push_bytes, set_fn, type_name};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::{self, JoinWait, yield_wait};

lua_fns! {
    on_abort => on_abort_impl,
    spawn => spawn_impl,
    wait => wait_impl,
    kill => kill_impl,
    status => status_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: the `ngx` table is on top of `l` (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 3);
        set_fn(l, -1, c"spawn", spawn);
        set_fn(l, -1, c"wait", wait);
        set_fn(l, -1, c"kill", kill);
        crate::lua::set_raw(l, -2, c"thread");
        set_fn(l, -1, c"on_abort", on_abort);
    }
}

/// Pushes the function coroutine.status asks first (api/coroutine.rs): the
/// status of a light thread that is dead but not waited for, else nil.
///
/// # Safety
/// `l` must have room for one value.
pub(super) unsafe fn push_status_fn(l: *mut lua_State) {
    // SAFETY: `l` has room for one value (caller's contract)
    unsafe { ffi::lua_pushcfunction(l, status) };
}

unsafe fn on_abort_impl(l: *mut lua_State) -> LuaRet {
    context::check(crate::runtime::context::REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TFUNCTION {
        return Err(bad_arg(
            1,
            "on_abort",
            // SAFETY: `l` is the running state Lua called this API function with
            &format!("function expected, got {}", unsafe { type_name(l, 1) }),
        ));
    }
    let ctx = ctx::request()?;
    let fail = |msg: &[u8]| {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe {
            ffi::lua_pushnil(l);
            push_bytes(l, msg);
        }
        Ok(2)
    };
    // SAFETY: `ctx.r` is the live request of the running context
    if !unsafe { crate::conf::loc_conf(ctx.r) }.check_client_abort() {
        return fail(b"lua_check_client_abort is off");
    }
    if ctx.on_abort.is_some() {
        return fail(b"duplicate call");
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_settop(l, 1) };
    // SAFETY: `l` is the running state Lua called this API function with
    ctx.on_abort = Some(unsafe { scheduler::dormant(l) }?);
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, 1) };
    Ok(1)
}

/// The end of a phase (ngx.exit, ngx.exec, an error) reached while the
/// caller was running a nested thread: it must stop too.
fn phase_ended(ctx: &RequestCtx) -> bool {
    ctx.exit_code.is_some() || ctx.exec.is_some() || ctx.failed
}

unsafe fn spawn_impl(l: *mut lua_State) -> LuaRet {
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TFUNCTION {
        let got = if n == 0 {
            "no value".to_string()
        } else {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { type_name(l, 1) }
        };
        return Err(bad_arg(1, "spawn", &format!("function expected, got {got}")));
    }
    let ctx = ctx::request()?;
    // As in lua-nginx-module, the spawner resumes after the threads already
    // waiting for a turn (and after the new one runs), unless it cannot
    // yield here: then it just goes on.
    // SAFETY: `l` is the running state Lua called this API function with
    let post = unsafe { crate::lua::can_yield(l) };
    // SAFETY: `l` is the running state of `ctx`'s request; its function and arguments are on top
    let co = unsafe { scheduler::spawn(ctx, l, n - 1, post) }?;
    if phase_ended(ctx) {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { yield_wait(l) };
    }
    if post {
        let t = scheduler::wait_posted(ctx);
        // SAFETY: `l` is the running state Lua called this API function with; `t` the running thread
        return unsafe { scheduler::yield_thread(t, l) };
    }
    // SAFETY: `co` is the live thread `spawn` just made (the context holds
    // a reference to it); `l` is the running state
    unsafe {
        ffi::lua_pushthread(co);
        ffi::lua_xmove(co, l, 1);
    }
    Ok(1)
}

const NOT_A_THREAD: &str = "attempt to wait on a coroutine that is not a user thread";

unsafe fn wait_impl(l: *mut lua_State) -> LuaRet {
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n == 0 {
        return Err("at least one coroutine should be specified".into());
    }
    let ctx = ctx::request()?;
    // The threads this wait names are marked `awaited` (the scheduler
    // resumes `l` when one of them ends); the marks of an earlier wait go
    // first, and all go if this one returns at once.
    let unmark = |ctx: &mut RequestCtx| {
        for t in ctx.threads.iter_mut().filter(|t| t.parent == l) {
            t.awaited = false;
        }
    };
    unmark(ctx);
    for i in 1..=n {
        // SAFETY: `l` is the running state Lua called this API function with
        let co = unsafe { ffi::lua_tothread(l, i) };
        if co.is_null() {
            unmark(ctx);
            return Err(bad_arg(i, "wait", "lua thread expected"));
        }
        let Some(t) = ctx.threads.iter_mut().find(|t| t.co == co) else {
            unmark(ctx);
            if !ctx.ended_threads.contains(&co) {
                return Err(NOT_A_THREAD.into());
            }
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe {
                ffi::lua_pushnil(l);
                push_bytes(l, b"already waited or killed");
            }
            return Ok(2);
        };
        if t.is_entry {
            unmark(ctx);
            return Err(NOT_A_THREAD.into());
        }
        if t.parent != l {
            unmark(ctx);
            return Err("only the parent coroutine can wait on the thread".into());
        }
        if t.done {
            unmark(ctx);
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_settop(l, 0) };
            // SAFETY: `co` is a thread of `ctx` that ended; `l` is its parent, the running state
            return Ok(unsafe { scheduler::collect(ctx, co, l) });
        }
        t.awaited = true;
    }
    let Some(me) = ctx.running_thread() else {
        unmark(ctx);
        return Err("no request thread to suspend".into());
    };
    me.wait = Some(scheduler::Pending::of(JoinWait));
    // SAFETY: `l` is the running state Lua called this API function with; `me` the running thread
    unsafe { scheduler::yield_thread(Some(me), l) }
}

unsafe fn kill_impl(l: *mut lua_State) -> LuaRet {
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let co = unsafe { ffi::lua_tothread(l, 1) };
    if co.is_null() {
        return Err(bad_arg(1, "kill", "lua thread expected"));
    }
    let ctx = ctx::request()?;
    let fail = |l: *mut lua_State, msg: &[u8]| {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe {
            ffi::lua_pushnil(l);
            push_bytes(l, msg);
        }
        Ok(2)
    };
    let Some(i) = ctx.threads.iter().position(|t| t.co == co) else {
        if !ctx.ended_threads.contains(&co) {
            return fail(l, b"not user thread");
        }
        return fail(l, b"already waited or killed");
    };
    let t = &ctx.threads[i];
    if t.is_entry {
        return fail(l, b"not user thread");
    }
    if t.parent != l {
        return fail(l, b"killer not parent");
    }
    // nginx has no way to cancel a subrequest in flight.
    if t.wait.as_ref().is_some_and(|w| w.is_subrequest()) {
        return fail(l, b"pending subrequests");
    }
    let was_done = t.done;
    // Dropping the thread cancels whatever it waits on.
    drop(ctx.threads.remove(i));
    ctx.ended_threads.push(co);
    if was_done {
        return fail(l, b"already terminated");
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, 1) };
    Ok(1)
}

/// `coroutine.status` of a request thread as lua-nginx-module tracks it:
/// "zombie" for a dead light thread not yet waited for, "running" for a
/// live one that waits (on I/O, a timer, a thread, or after a bare
/// `coroutine.yield`: lua-nginx-module does not count these as
/// suspensions), "dead" for one killed or waited for; nil for any other
/// coroutine (Lua's own status applies).
///
/// A coroutine of another request or timer (its `thread.exdata` says
/// which) that is suspended is "running" too: it may be waiting there, as
/// lua-nginx-module, which finds such a thread's own state, reports it.
/// Resumed here, it would run in the wrong request, and when its own wait
/// ended the event would resume a coroutine no longer where it waited.
unsafe fn status_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let co = unsafe { ffi::lua_tothread(l, 1) };
    let Some(ctx) = (!co.is_null()).then(ctx::current).flatten() else {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    };
    let waiting = |t: &&scheduler::LuaThread| !t.done && t.wait.is_some();
    let answer: Option<&[u8]> = match ctx.threads.iter().find(|t| t.co == co) {
        Some(t) if t.done && !t.is_entry => Some(b"zombie"),
        // Waiting inside a user coroutine it resumed: lua-nginx-module
        // calls the thread "normal" and that coroutine "running".
        Some(t) if waiting(&t) && !t.wait_co.is_null() && t.wait_co != co => Some(b"normal"),
        Some(t) if waiting(&t) => Some(b"running"),
        Some(_) => None,
        None if ctx.threads.iter().any(|t| waiting(&t) && t.wait_co == co) => Some(b"running"),
        // Killed (still suspended where it waited) or waited for.
        None if ctx.ended_threads.contains(&co) => Some(b"dead"),
        None => {
            // SAFETY: `co` is a live coroutine (its value is at index 1)
            let (owner, st) = unsafe { (crate::lua::exdata(co), ffi::lua_status(co)) };
            let foreign = !owner.is_null() && owner != ctx.r.cast();
            (foreign && st == ffi::LUA_YIELD).then_some(b"running")
        }
    };
    match answer {
        // SAFETY: `l` is the running state Lua called this API function with
        Some(s) => unsafe { push_bytes(l, s) },
        // SAFETY: `l` is the running state Lua called this API function with
        None => unsafe { ffi::lua_pushnil(l) },
    }
    Ok(1)
}
