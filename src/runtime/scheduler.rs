//! The coroutine scheduler of DESIGN.md.
//!
//! Every piece of request Lua code runs in a coroutine ("thread") owned by the
//! request's ctx. A waiting API call arms its nginx event, records it as the
//! thread's `wait`, and yields the `YIELD_MARK` sentinel; the scheduler then
//! returns control to nginx. When the event fires, its handler calls `wake`,
//! which resumes exactly that thread with the results. User coroutines pass
//! the sentinel up and the results down (see `coroutine.lua`), so a wait deep
//! inside `coroutine.wrap` suspends the whole request, not just the wrapper.

use std::ffi::{c_int, c_void};

use nginx_sys::{ngx_http_run_posted_requests, NGX_LOG_ERR};

use super::ctx::{CurrentGuard, Outcome, RequestCtx};
use super::lua::{ffi, lua_State, to_bytes};
use super::phase::PhaseGuard;
use super::{timer_wait, vm};
use crate::glue::log;

/// Something a thread waits on. Dropping it cancels the wait (deletes the
/// timer, closes the socket...), which is how a finished request cancels
/// everything it still had pending.
pub trait Wait {}

pub struct LuaThread {
    pub co: *mut lua_State,
    co_ref: c_int,
    pub wait: Option<Box<dyn Wait>>,
    pub is_entry: bool,
    pub done: bool,
}

impl Drop for LuaThread {
    fn drop(&mut self) {
        self.wait = None;
        if let Some(vm) = vm::current() {
            vm.unref(self.co_ref);
        }
    }
}

/// The value a waiting API function yields, telling it apart from a user
/// `coroutine.yield`.
pub static YIELD_MARK: u8 = 0;

/// Ends a waiting API function: `return yield_wait(l)` after arming the event.
///
/// # Safety
/// `l` must be the running coroutine that called the C function.
pub unsafe fn yield_wait(l: *mut lua_State) -> c_int {
    ffi::lua_pushlightuserdata(l, &YIELD_MARK as *const u8 as *mut c_void);
    ffi::lua_yield(l, 1)
}

/// Is the value at `idx` the wait sentinel?
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn is_yield_mark(l: *mut lua_State, idx: c_int) -> bool {
    std::ptr::eq(ffi::lua_touserdata(l, idx) as *const u8, &YIELD_MARK)
}

/// Creates a coroutine running the function of registry reference `func`.
///
/// # Safety
/// Must run with the worker's VM set.
pub unsafe fn new_thread(func: c_int, is_entry: bool) -> Result<LuaThread, String> {
    let vm = vm::current().ok_or("no Lua VM")?;
    let main = vm.main();
    let co = ffi::lua_newthread(main);
    let co_ref = ffi::luaL_ref(main, ffi::LUA_REGISTRYINDEX);
    ffi::lua_rawgeti(co, ffi::LUA_REGISTRYINDEX, func as _);
    Ok(LuaThread {
        co,
        co_ref,
        wait: None,
        is_entry,
        done: false,
    })
}

/// Starts the entry thread of the current phase with function `func`.
pub fn start(ctx: &mut RequestCtx, func: c_int) -> Outcome {
    ctx.clear_threads();
    ctx.exit_code = None;
    // SAFETY: handlers run with the worker's VM set.
    match unsafe { new_thread(func, true) } {
        Ok(t) => {
            let co = t.co;
            ctx.threads.push(t);
            resume(ctx, co, 0)
        }
        Err(e) => {
            log::error(
                request_log(ctx),
                NGX_LOG_ERR,
                format!("failed to run Lua code: {e}").as_bytes(),
            );
            Outcome::Error
        }
    }
}

fn request_log(ctx: &RequestCtx) -> *mut nginx_sys::ngx_log_t {
    // SAFETY: ctx.r is the live request owning ctx.
    unsafe { (*(*ctx.r).connection).log }
}

/// How one resume of a thread ended.
enum Resumed {
    /// Yielded: true when it yielded the wait sentinel.
    Yielded(bool),
    Finished,
    /// Died with the error message (its stack is kept for the traceback).
    Failed(String),
}

/// Resumes `co` with the `nargs` values on top of its stack.
///
/// # Safety
/// `co` must be a suspended (or new) coroutine of the worker's VM.
unsafe fn resume_raw(co: *mut lua_State, nargs: c_int) -> Resumed {
    let mut nres = 0;
    match ffi::lua_resume(co, std::ptr::null_mut(), nargs, &mut nres) {
        ffi::LUA_YIELD => {
            let waiting = nres == 1 && is_yield_mark(co, -1);
            ffi::lua_settop(co, 0);
            Resumed::Yielded(waiting)
        }
        ffi::LUA_OK => {
            ffi::lua_settop(co, 0);
            Resumed::Finished
        }
        _ => {
            let msg = match to_bytes(co, -1) {
                Some(b) => String::from_utf8_lossy(b).into_owned(),
                None if ffi::lua_isnil(co, -1) != 0 => "unknown reason".to_string(),
                None => format!(
                    "{}: {:p}",
                    super::lua::type_name(co, -1),
                    ffi::lua_topointer(co, -1)
                ),
            };
            Resumed::Failed(msg)
        }
    }
}

/// Resumes thread `co` of `ctx` with `nargs` values already pushed on it and
/// reports where the phase's code now stands.
pub fn resume(ctx: &mut RequestCtx, co: *mut lua_State, nargs: c_int) -> Outcome {
    let ctx_ptr: *mut RequestCtx = ctx;
    let status = {
        let _c = CurrentGuard::enter(ctx_ptr);
        let _p = PhaseGuard::enter(ctx.phase);
        let prev = std::mem::replace(&mut ctx.running, co);
        // SAFETY: `co` is a suspended (or new) coroutine of the worker's VM.
        let st = unsafe { resume_raw(co, nargs) };
        // SAFETY: ctx is still alive: nothing frees a request while its Lua
        // code runs (finalization happens after resume returns).
        unsafe { (*ctx_ptr).running = prev };
        st
    };
    let Some(idx) = ctx.threads.iter().position(|t| t.co == co) else {
        return Outcome::Error;
    };
    match status {
        Resumed::Yielded(waiting) => {
            if let Some(o) = control_outcome(ctx) {
                return o;
            }
            if !waiting {
                // A bare coroutine.yield() in a request thread gives other
                // requests a turn: resume it on the next event loop cycle.
                ctx.threads[idx].wait = Some(timer_wait::arm(ctx_ptr, co, 0));
            }
        }
        Resumed::Finished => {
            ctx.threads[idx].done = true;
            if let Some(o) = control_outcome(ctx) {
                return o;
            }
        }
        Resumed::Failed(msg) => {
            let entry = ctx.threads[idx].is_entry;
            log_thread_error(ctx, co, &msg, entry);
            ctx.threads[idx].done = true;
            if entry {
                ctx.clear_threads();
                return Outcome::Error;
            }
        }
    }
    if ctx.threads.iter().all(|t| t.done) {
        Outcome::Done
    } else {
        Outcome::Wait
    }
}

/// ngx.exit / ngx.exec end the phase for every thread.
fn control_outcome(ctx: &mut RequestCtx) -> Option<Outcome> {
    let o = if ctx.exec.is_some() {
        Outcome::Exec
    } else {
        Outcome::Exit(ctx.exit_code?)
    };
    ctx.clear_threads();
    Some(o)
}

fn log_thread_error(ctx: &RequestCtx, co: *mut lua_State, msg: &str, entry: bool) {
    let Some(vm) = vm::current() else { return };
    let main = vm.main();
    // SAFETY: `co` is dead with its frames kept; `main` is idle, and its
    // stack is balanced below.
    let tb = unsafe {
        ffi::luaL_traceback(main, co, std::ptr::null(), 0);
        let tb = to_bytes(main, -1)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        ffi::lua_pop(main, 1);
        tb
    };
    let kind = if entry { "entry" } else { "user" };
    let text = format!("lua {kind} thread aborted: runtime error: {msg}\n{tb}");
    log::error(request_log(ctx), NGX_LOG_ERR, text.as_bytes());
}

/// Resumes a waiting thread from an nginx event handler and lets the phase
/// finish if its code is done. `ctx` may be freed when this returns.
///
/// # Safety
/// `ctx` must be live and `co` one of its threads with `nargs` values pushed.
pub unsafe fn wake(ctx: *mut RequestCtx, co: *mut lua_State, nargs: c_int) {
    let c = (*(*ctx).r).connection;
    let outcome = resume(&mut *ctx, co, nargs);
    if outcome != Outcome::Wait {
        crate::phase::finish_async(&mut *ctx, outcome);
    }
    ngx_http_run_posted_requests(c);
}

/// Runs `func` to completion on the main thread, for code that may not
/// wait (set, log, filters, init): returns `nresults` values on `main`.
///
/// # Safety
/// Must run with the worker's VM set; the caller pops the results.
pub unsafe fn call_sync(func: c_int, nargs_pushed: c_int, nresults: c_int) -> Result<*mut lua_State, String> {
    let vm = vm::current().ok_or("no Lua VM")?;
    let l = vm.main();
    let base = ffi::lua_gettop(l) - nargs_pushed;
    ffi::lua_pushcfunction(l, traceback);
    ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, func as _);
    // Move handler and function below the already pushed arguments.
    ffi::lua_insert(l, base + 1);
    ffi::lua_insert(l, base + 1);
    let rc = ffi::lua_pcall(l, nargs_pushed, nresults, base + 1);
    ffi::lua_remove(l, base + 1);
    if rc != 0 {
        return Err(vm::pop_message(l));
    }
    Ok(l)
}

crate::lua_fns! { traceback => traceback_impl }

/// pcall message handler: appends the traceback, as lua-nginx-module logs.
unsafe fn traceback_impl(l: *mut lua_State) -> super::lua::LuaRet {
    // SAFETY: called by lua_pcall with the error value at index 1.
    unsafe {
        if ffi::lua_isstring(l, 1) == 0 {
            ffi::lua_getglobal(l, c"tostring".as_ptr());
            ffi::lua_pushvalue(l, 1);
            ffi::lua_call(l, 1, 1);
            ffi::lua_replace(l, 1);
        }
        let msg = ffi::lua_tostring(l, 1);
        ffi::luaL_traceback(l, l, msg, 1);
    }
    Ok(1)
}
