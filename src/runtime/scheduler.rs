//! The coroutine scheduler of DESIGN.md.
//!
//! Every piece of request Lua code runs in a coroutine ("thread") owned by the
//! request's ctx: the entry thread of the phase and the light threads of
//! `ngx.thread.spawn`. A waiting API call arms its nginx event, records it as
//! the thread's `wait`, and yields the `YIELD_MARK` sentinel; the scheduler
//! then returns control to nginx. When the event fires, its handler calls
//! `wake`, which resumes exactly that thread with the results. User
//! coroutines pass the sentinel up and the results down (api/coroutine.rs),
//! so a wait deep inside `coroutine.wrap` suspends the whole request.
//!
//! Resumes nest: spawning runs the new thread at once, and a thread that
//! ends resumes the thread waiting on it. The spawner itself, and a thread
//! doing a bare `coroutine.yield` while others wait for a turn, goes into
//! the request's posted queue, which the outermost resume runs in order
//! (lua-nginx-module's posted threads). Only the outermost resume (depth 0)
//! drops the threads when ngx.exit/ngx.exec or an entry-thread error ends the
//! phase, so no running coroutine loses its anchor.

use std::ffi::{c_int, c_void};

use nginx_sys::{NGX_LOG_ERR, ngx_http_run_posted_requests};

use super::context::ContextGuard;
use super::ctx::{CurrentGuard, Outcome, RequestCtx};
use super::tcp_sock::SockWait;
use super::timer_wait;
use crate::glue::log;
use crate::lua::vm;
use crate::lua::{self, LuaRet, ffi, lua_State, push_bytes, to_bytes};

/// Something a thread waits on. Dropping it cancels the wait (deletes the
/// timer, closes the socket...), which is how a finished request cancels
/// everything it still had pending.
pub trait Wait {
    /// The wait is for subrequests, which cannot be cancelled: a thread
    /// in it may not be killed.
    fn is_subrequest(&self) -> bool {
        false
    }

    /// The wait is `ngx.thread.wait` (see [`JoinWait`]).
    fn is_join(&self) -> bool {
        false
    }

    /// The wait is a timer's (runtime/timer_wait.rs).
    fn is_timer(&self) -> bool {
        false
    }
}

/// A thread's wait. A cosocket operation, the wait of every client loop,
/// and a capture are kept inline: a socket call that blocks and a
/// subrequest allocate nothing for it.
pub enum Pending {
    Sock(SockWait),
    Capture(super::capture::CaptureWait),
    Boxed(Box<dyn Wait>),
}

impl Pending {
    pub fn of(w: impl Wait + 'static) -> Pending {
        Pending::Boxed(Box::new(w))
    }
}

impl From<Box<dyn Wait>> for Pending {
    fn from(w: Box<dyn Wait>) -> Pending {
        Pending::Boxed(w)
    }
}

impl<T: Wait + 'static> From<Box<T>> for Pending {
    fn from(w: Box<T>) -> Pending {
        Pending::Boxed(w)
    }
}

impl std::ops::Deref for Pending {
    type Target = dyn Wait;

    fn deref(&self) -> &(dyn Wait + 'static) {
        match self {
            Pending::Sock(w) => w,
            Pending::Capture(w) => w,
            Pending::Boxed(w) => &**w,
        }
    }
}

pub struct LuaThread {
    pub co: *mut lua_State,
    co_ref: c_int,
    pub wait: Option<Pending>,
    pub is_entry: bool,
    /// Returned, failed or killed. A dead light thread keeps its results on
    /// its stack until `ngx.thread.wait` collects them (a "zombie").
    pub done: bool,
    /// The coroutine that spawned this light thread (null for the entry).
    pub parent: *mut lua_State,
    /// Died of an error: its stack holds what `collect` hands the waiter.
    pub failed: bool,
    /// Its parent waits on it in `ngx.thread.wait` (only the parent may);
    /// set for each thread a wait names, cleared for all of the parent's
    /// threads when it starts another wait.
    pub awaited: bool,
    /// Returned normally: the coroutine can serve again.
    returned: bool,
    /// Waiting for its turn in `RequestCtx::posted`.
    posted: bool,
    /// The coroutine whose API call made the current wait: this thread, or
    /// a user coroutine it resumed (the thread is then "normal").
    pub wait_co: *mut lua_State,
    /// Resumed at least once: from then on only a suspended coroutine may
    /// be resumed (a fresh one has status 0 too).
    started: bool,
    /// The event of its timer waits (runtime/timer_wait.rs).
    pub timer: timer_wait::Slot,
}

impl LuaThread {
    /// Drops the thread's wait and deletes its timer if one is pending.
    pub fn drop_wait(&mut self) {
        self.wait = None;
        self.timer.disarm();
    }
}

impl Drop for LuaThread {
    fn drop(&mut self) {
        self.wait = None;
        if let Some(vm) = vm::current() {
            // Only entry threads are reused, as lua-nginx-module does: the
            // handle ngx.thread.spawn returned may outlive its light thread,
            // and must not come to name another request's thread.
            // SAFETY: `co` came from this VM's take_thread, anchored by
            // `co_ref`; a dropped thread record's coroutine is not running.
            unsafe { vm.give_thread(self.co, self.co_ref, self.returned && self.is_entry) };
        }
    }
}

/// Waiting in `ngx.thread.wait`: nothing to cancel, the scheduler resumes
/// the waiter when one of its threads (marked `awaited`) ends.
pub struct JoinWait;

impl Wait for JoinWait {
    fn is_join(&self) -> bool {
        true
    }
}

/// The value a waiting API function yields, telling it apart from a user
/// `coroutine.yield`.
pub static YIELD_MARK: u8 = 0;

/// Registry key of the coroutine.wrap failures table (api/coroutine.rs):
/// raising thread -> { msg = error, chain = { failed coroutines } }.
pub static WRAP_FAILURES: u8 = 0;

/// Ends a waiting API function: `return yield_wait(l)` after arming the
/// event. Where the coroutine cannot yield (C code such as `table.sort`
/// called the Lua function that called us), the wait just armed is
/// cancelled and the call fails with LuaJIT's own error text.
///
/// # Safety
/// `l` must be the running coroutine that called the C function.
pub unsafe fn yield_wait(l: *mut lua_State) -> LuaRet {
    let t = super::ctx::current().and_then(|c| c.running_thread());
    // SAFETY: callers' contract
    unsafe { yield_thread(t, l) }
}

/// `yield_wait` for an API function that holds the running thread `t`
/// (where the wait is stored) already.
///
/// # Safety
/// As `yield_wait`; `t` is the running request thread.
pub unsafe fn yield_thread(t: Option<&mut LuaThread>, l: *mut lua_State) -> LuaRet {
    if crate::lua::alloc::pending() {
        // The guard raises a finalizer's error instead of yielding.
        if let Some(t) = t {
            t.drop_wait();
            t.posted = false;
        }
        return Ok(0);
    }
    // SAFETY: `l` is the running state (callers' duty)
    if !unsafe { lua::can_yield(l) } {
        if let Some(t) = t {
            t.drop_wait();
            t.posted = false;
        }
        // SAFETY: `l` is the running state (callers' duty)
        return Err(unsafe { lua::raw_error(l, "attempt to yield across C-call boundary") });
    }
    if let Some(t) = t {
        t.wait_co = l;
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushlightuserdata(l, &YIELD_MARK as *const u8 as *mut c_void) };
    Ok(lua::YIELD)
}

/// Is the value at `idx` the wait sentinel?
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn is_yield_mark(l: *mut lua_State, idx: c_int) -> bool {
    // SAFETY: `l` is the running state (callers' duty)
    std::ptr::eq(unsafe { ffi::lua_touserdata(l, idx) } as *const u8, &YIELD_MARK)
}

/// A new coroutine, anchored in the registry, with nothing on its stack.
///
/// # Safety
/// Must run with the worker's VM set.
unsafe fn anchored_thread() -> Result<(*mut lua_State, c_int), String> {
    let vm = vm::current().ok_or("no Lua VM")?;
    Ok(vm.take_thread())
}

fn thread(co: *mut lua_State, co_ref: c_int, parent: *mut lua_State, started: bool) -> LuaThread {
    LuaThread {
        co,
        co_ref,
        wait: None,
        is_entry: parent.is_null(),
        done: false,
        parent,
        failed: false,
        awaited: false,
        returned: false,
        posted: false,
        wait_co: std::ptr::null_mut(),
        started,
        timer: timer_wait::Slot::new(),
    }
}

/// Waiting for a turn among the request's threads: nothing to cancel.
struct Posted;

impl Wait for Posted {}

/// Queues request thread `co` to be resumed after the threads queued
/// before it, with `result` (a light thread, or null for nothing).
pub fn post(ctx: &mut RequestCtx, co: *mut lua_State, result: *mut lua_State) {
    ctx.posted.push((co, result));
}

/// Marks the running thread as waiting for its turn: it was posted (see
/// [`post`]) and now yields.
pub fn wait_posted(ctx: &mut RequestCtx) -> Option<&mut LuaThread> {
    let t = ctx.running_thread()?;
    t.posted = true;
    t.wait = Some(Pending::of(Posted));
    Some(t)
}

/// Resumes the posted threads in order, each until it waits or ends; the
/// ones they post in turn join the queue.
fn drain_posted(ctx: &mut RequestCtx) {
    ctx.draining = true;
    while !ctx.posted.is_empty() {
        if ctx.exit_code.is_some() || ctx.exec.is_some() || ctx.failed {
            ctx.posted.clear();
            break;
        }
        let (co, result) = ctx.posted.remove(0);
        let Some(t) = ctx.threads.iter_mut().find(|t| t.co == co && t.posted && !t.done) else {
            continue;
        };
        t.posted = false;
        t.wait = None;
        let mut nargs = 0;
        if !result.is_null() {
            // SAFETY: `result` is a light thread of ctx, anchored by its
            // entry in ctx.threads; `co` is suspended with room checked.
            unsafe {
                if ffi::lua_checkstack(result, 1) != 0 && ffi::lua_checkstack(co, 1) != 0 {
                    ffi::lua_pushthread(result);
                    ffi::lua_xmove(result, co, 1);
                    nargs = 1;
                }
            }
        }
        // SAFETY: `co` is a posted thread of ctx, `nargs` values pushed;
        // drain_posted runs inside a resume of ctx. A posted thread is
        // suspended: it yields after it is marked posted, or is unmarked.
        unsafe { run(ctx, co, nargs, true) };
    }
    ctx.draining = false;
}

/// Starts the entry thread of the current phase with function `func`.
pub fn start(ctx: &mut RequestCtx, func: c_int) -> Outcome {
    start_with(ctx, |co| {
        // SAFETY: `co` is the fresh entry thread.
        unsafe { ffi::lua_rawgeti(co, ffi::LUA_REGISTRYINDEX, func as _) };
        0
    })
}

/// Starts an entry thread whose function and arguments `push` puts on the
/// new coroutine; `push` returns the number of arguments.
pub fn start_with(ctx: &mut RequestCtx, push: impl FnOnce(*mut lua_State) -> c_int) -> Outcome {
    ctx.clear_threads();
    ctx.exit_code = None;
    ctx.failed = false;
    // SAFETY: handlers run with the worker's VM set.
    match unsafe { anchored_thread() } {
        Ok((co, co_ref)) => {
            // SAFETY: co is the fresh entry thread.
            unsafe { lua::set_exdata(co, ctx.r.cast()) };
            let nargs = push(co);
            ctx.threads.push(thread(co, co_ref, std::ptr::null_mut(), true));
            // SAFETY: `co` is the new entry thread, with what `push` pushed
            unsafe { resume_checked(ctx, co, nargs, true) }
        }
        Err(e) => {
            log::log_error!(ctx.log(), NGX_LOG_ERR, "failed to run Lua code: {e}");
            Outcome::Error
        }
    }
}

/// `ngx.on_abort`: a light thread for the function on top of `parent`'s
/// stack, not started.
///
/// # Safety
/// `parent` is the running coroutine with the function on top.
pub unsafe fn dormant(parent: *mut lua_State) -> Result<LuaThread, String> {
    // SAFETY: a request's VM is current while its coroutine runs
    let (co, co_ref) = unsafe { anchored_thread() }?;
    // SAFETY: `co` is the new thread of `parent`'s VM; `parent` is running with the function on top (caller's contract)
    unsafe {
        lua::set_exdata(co, lua::exdata(parent));
        ffi::lua_xmove(parent, co, 1);
    }
    Ok(thread(co, co_ref, parent, false))
}

/// `ngx.thread.spawn`: moves the function and its `nargs` arguments from the
/// top of `parent`'s stack into a new light thread and runs it until it
/// first waits or ends. With `post_spawner`, the running request thread is
/// queued first, to resume (with the new thread) after it.
///
/// # Safety
/// `parent` is the running coroutine of `ctx` (so inside a resume of ctx)
/// with `nargs + 1` values on top.
pub unsafe fn spawn(
    ctx: &mut RequestCtx,
    parent: *mut lua_State,
    nargs: c_int,
    post_spawner: bool,
) -> Result<*mut lua_State, String> {
    // SAFETY: a request's VM is current while its coroutine runs
    let (co, co_ref) = unsafe { anchored_thread() }?;
    // SAFETY: `co` is the new thread of `parent`'s VM; `parent` holds the function and `nargs` arguments (caller's contract)
    unsafe {
        lua::set_exdata(co, ctx.r.cast());
        ffi::lua_xmove(parent, co, nargs + 1);
    }
    super::thread_buf::push(ctx, thread(co, co_ref, parent, true));
    if post_spawner {
        post(ctx, ctx.running, co);
    }
    // SAFETY: `co` is the new light thread, with its `nargs` arguments;
    // the spawner's Lua code runs inside a resume of ctx.
    unsafe { run(ctx, co, nargs, true) };
    Ok(co)
}

/// How one resume of a thread ended.
enum Resumed {
    /// Yielded: true when it yielded the wait sentinel.
    Yielded(bool),
    /// Returned; its results are on its stack.
    Finished,
    /// Died of the error on top of its stack (kept for the traceback).
    Failed,
    /// Not resumed: it was not suspended.
    Refused,
}

/// Resumes `co` with the `nargs` values on top of its stack.
///
/// # Safety
/// `co` must be a suspended (or new) coroutine of the worker's VM.
unsafe fn resume_raw(co: *mut lua_State, nargs: c_int) -> Resumed {
    let mut nres = 0;
    // SAFETY: `co` is a live Lua thread of ours (callers' duty)
    match unsafe { ffi::lua_resume(co, std::ptr::null_mut(), nargs, &mut nres) } {
        ffi::LUA_YIELD => {
            // SAFETY: `co` is the live coroutine just resumed, with its one result on top
            let waiting = nres == 1 && unsafe { is_yield_mark(co, -1) };
            // What it yielded may stay: LuaJIT resumes a yielded coroutine
            // like a return from the function that yielded, with the top
            // `nargs` values as its results, and drops that function's
            // slots (the yielded values among them).
            Resumed::Yielded(waiting)
        }
        ffi::LUA_OK => Resumed::Finished,
        _ => Resumed::Failed,
    }
}

/// Resumes thread `co` of `ctx` with `nargs` values already pushed on it and
/// reports where the phase's code now stands.
///
/// # Safety
/// `co` must be a new or suspended coroutine of `ctx` (in its VM) with
/// `nargs` values pushed on it.
pub unsafe fn resume(ctx: &mut RequestCtx, co: *mut lua_State, nargs: c_int) -> Outcome {
    let resumable = may_resume(ctx, co);
    // SAFETY: callers' contract
    unsafe { resume_checked(ctx, co, nargs, resumable) }
}

/// Only a new or suspended coroutine can be resumed: one that returned
/// keeps its results on its stack, and lua_resume would call them. No
/// event may wake such a thread, but should one try, the thread fails
/// instead of running whatever its stack holds.
fn may_resume(ctx: &mut RequestCtx, co: *mut lua_State) -> bool {
    match ctx.threads.iter_mut().find(|t| t.co == co) {
        // SAFETY: `co` is a thread of ctx, a coroutine of the worker's VM
        Some(t) if t.started => (unsafe { ffi::lua_status(co) }) == ffi::LUA_YIELD,
        Some(t) => {
            t.started = true;
            true
        }
        None => true,
    }
}

/// `resume` once it is known whether `co` may run: a thread created
/// started (the entry thread, a light thread) skips the search. Makes the
/// request, its context and its VM current for the whole run, including
/// the threads the scheduler resumes in turn (posted ones, waiters,
/// spawned ones), which then need not set them again.
///
/// # Safety
/// As `resume`; with `resumable`, `co` is new or suspended.
#[inline(always)]
unsafe fn resume_checked(ctx: &mut RequestCtx, co: *mut lua_State, nargs: c_int, resumable: bool) -> Outcome {
    // Threads that end here go back to the VM they run in.
    let _vm = ctx.enter_vm();
    let _p = ContextGuard::enter(ctx.context);
    let ctx_ptr: *mut RequestCtx = ctx;
    // SAFETY: `ctx_ptr` is derived from `ctx`, which is not used again
    // here: `run` gets it back through `ctx_ptr` and leaves it alone while
    // Lua code runs.
    let _c = unsafe { CurrentGuard::enter(ctx_ptr) };
    // SAFETY: callers' contract; `ctx_ptr` is the live ctx
    unsafe { run(&mut *ctx_ptr, co, nargs, resumable) }
}

/// Runs `co` until it waits or ends, then settles what that means for the
/// other threads and the phase.
///
/// # Safety
/// As `resume_checked`, inside its scope for `ctx`.
unsafe fn run(ctx: &mut RequestCtx, co: *mut lua_State, nargs: c_int, resumable: bool) -> Outcome {
    let ctx_ptr: *mut RequestCtx = ctx;
    let status = {
        let prev = std::mem::replace(&mut ctx.running, co);
        ctx.depth += 1;
        let st = if resumable {
            // SAFETY: `co` is a suspended (or new) coroutine of the worker's VM.
            unsafe { resume_raw(co, nargs) }
        } else {
            Resumed::Refused
        };
        // SAFETY: ctx is still alive: nothing frees a request while its Lua
        // code runs (finalization happens after the outermost resume).
        unsafe {
            (*ctx_ptr).depth -= 1;
            (*ctx_ptr).running = prev;
        }
        st
    };
    if let Some(idx) = ctx.threads.iter().position(|t| t.co == co) {
        settle(ctx, idx, status);
    }
    if ctx.depth == 0 && !ctx.draining && !ctx.posted.is_empty() {
        drain_posted(ctx);
    }
    let outcome = match control_outcome(ctx) {
        Some(o) => o,
        None if ctx.threads.iter().all(|t| t.done) => Outcome::Done,
        None => Outcome::Wait,
    };
    if ctx.depth == 0 && outcome != Outcome::Wait {
        super::thread_buf::reclaim(ctx);
    }
    // The code stops running: a write it made goes now, unless the content
    // phase ends here (returned or ngx.exit), whose eof takes it along
    // (runtime/output.rs; phase::exit_rc passes it on when no eof follows).
    let content_ends =
        matches!(outcome, Outcome::Done | Outcome::Exit(_)) && ctx.context == super::context::CONTENT;
    if ctx.depth == 0 && !ctx.draining && !ctx.held_out.is_null() && !content_ends {
        // (a failure shows again at the next output of the request)
        let _ = super::output::send_held(ctx);
    }
    outcome
}

/// Records how a resume of thread `idx` ended, and hands a dead light
/// thread's results to a thread waiting on it.
fn settle(ctx: &mut RequestCtx, idx: usize, status: Resumed) {
    let t = &mut ctx.threads[idx];
    let co = t.co;
    match status {
        Resumed::Yielded(true) => {}
        Resumed::Yielded(false) => {
            // A bare coroutine.yield() in a request thread: after the
            // request's other posted threads, as lua-nginx-module does; with
            // none, other requests get a turn (the next event loop cycle).
            if ctx.exit_code.is_none() && ctx.exec.is_none() {
                if ctx.posted.is_empty() {
                    let ctx_ptr: *mut RequestCtx = ctx;
                    let log = ctx.log();
                    timer_wait::arm(&mut ctx.threads[idx], ctx_ptr, log, 0);
                } else {
                    t.posted = true;
                    t.wait = Some(Pending::of(Posted));
                    post(ctx, co, std::ptr::null_mut());
                }
            }
        }
        Resumed::Finished => {
            t.done = true;
            t.returned = true;
            if t.is_entry {
                // SAFETY: the entry thread's results are not used.
                unsafe {
                    if ffi::lua_gettop(co) != 0 {
                        ffi::lua_settop(co, 0);
                    }
                }
            } else {
                // SAFETY: thread `idx` is the light thread that just returned
                unsafe { notify_waiter(ctx, idx) };
            }
        }
        Resumed::Failed => settle_failure(ctx, idx, false),
        Resumed::Refused => settle_failure(ctx, idx, true),
    }
}

/// `settle` of a thread that died (or was `refused` a resume): kept out
/// of the resume path, which it would only slow down.
#[cold]
#[inline(never)]
fn settle_failure(ctx: &mut RequestCtx, idx: usize, refused: bool) {
    let t = &mut ctx.threads[idx];
    let co = t.co;
    // A dead thread waits on nothing.
    t.drop_wait();
    let entry = t.is_entry;
    let msg = if refused {
        "cannot resume non-suspended coroutine".to_string()
    } else {
        // Only a string (or number) says what happened, as in
        // lua-nginx-module's log line.
        // SAFETY: `co` just died of the error on top of its stack
        match unsafe { to_bytes(co, -1) } {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => "unknown reason".to_string(),
        }
    };
    // SAFETY: `co` is the thread that just died, its frames kept
    unsafe { log_thread_error(ctx, co, &msg, entry) };
    let t = &mut ctx.threads[idx];
    t.done = true;
    if entry {
        ctx.failed = true;
    } else {
        t.failed = true;
        // SAFETY: thread `idx` is the light thread that just died
        unsafe { notify_waiter(ctx, idx) };
    }
}

/// Resumes the thread whose `ngx.thread.wait` waits on dead light thread
/// `idx`, if any.
///
/// # Safety
/// Thread `idx` of `ctx` must be a light thread that has just ended.
unsafe fn notify_waiter(ctx: &mut RequestCtx, idx: usize) {
    let t = &ctx.threads[idx];
    if !t.awaited {
        return;
    }
    let (dead, parent) = (t.co, t.parent);
    // The parent may be a user coroutine inside a request thread: the
    // thread holds the wait, made by the parent (`wait_co`).
    let Some(waiter) = ctx
        .threads
        .iter_mut()
        .find(|t| t.wait_co == parent && !t.done && t.wait.as_ref().is_some_and(|w| w.is_join()))
    else {
        return;
    };
    waiter.wait = None;
    let waiter = waiter.co;
    // SAFETY: thread `idx` is a dead light thread of ctx (caller's
    // contract); `waiter` is suspended in ngx.thread.wait; results go on it.
    let n = unsafe { collect_at(ctx, idx, dead, waiter) };
    // SAFETY: `waiter` is suspended in ngx.thread.wait (it holds the
    // JoinWait only once it yielded there), its `n` results pushed;
    // settling runs inside a resume of ctx.
    unsafe { run(ctx, waiter, n, true) };
}

/// Moves the outcome of dead light thread `dead` onto `to` (`true, ...` or
/// `false, err`), forgets the thread, and returns the number of values.
///
/// # Safety
/// `dead` must be a dead light thread of ctx and `to` a coroutine with room.
pub unsafe fn collect(ctx: &mut RequestCtx, dead: *mut lua_State, to: *mut lua_State) -> c_int {
    let Some(i) = ctx.threads.iter().position(|t| t.co == dead) else {
        return 0;
    };
    // SAFETY: callers' contract, `i` being `dead`'s index
    unsafe { collect_at(ctx, i, dead, to) }
}

/// `collect` of thread `i`, `dead`.
///
/// # Safety
/// As `collect`; thread `i` of ctx is `dead`.
unsafe fn collect_at(ctx: &mut RequestCtx, i: usize, dead: *mut lua_State, to: *mut lua_State) -> c_int {
    let t = ctx.threads.remove(i);
    ctx.ended_threads.push(dead);
    // What is left on the dead thread's stack goes to the waiter, as in
    // lua-nginx-module: its results, or after an error the values of the
    // frame that raised it (error()'s own arguments first: the message as
    // given, without a position) and the error itself.
    // SAFETY: `dead` is a live Lua state (callers' duty)
    let nres = unsafe { ffi::lua_gettop(dead) };
    // SAFETY: `to` is a live Lua state (callers' duty)
    if unsafe { ffi::lua_checkstack(to, nres + 1) } == 0 {
        // SAFETY: `to` is a live Lua state (callers' duty)
        unsafe {
            ffi::lua_pushboolean(to, 0);
            push_bytes(to, b"stack overflow");
        }
        return 2;
    }
    // SAFETY: `to` is a live Lua state (callers' duty)
    unsafe { ffi::lua_pushboolean(to, !t.failed as c_int) };
    if t.failed && nres == 0 {
        // SAFETY: `to` is a live Lua state (callers' duty)
        unsafe { push_bytes(to, b"unknown reason") };
        return 2;
    }
    // SAFETY: `dead` is a live Lua state (callers' duty)
    unsafe { ffi::lua_xmove(dead, to, nres) };
    let n = nres + 1;
    drop(t);
    n
}

/// ngx.exit / ngx.exec / an entry-thread error end the phase for every
/// thread; the outermost resume drops them.
fn control_outcome(ctx: &mut RequestCtx) -> Option<Outcome> {
    let o = if ctx.failed {
        Outcome::Error
    } else if ctx.exec.is_some() {
        Outcome::Exec
    } else {
        Outcome::Exit(ctx.exit_code?)
    };
    if ctx.depth == 0 {
        ctx.clear_threads();
    }
    Some(o)
}

/// Logs the runtime error of thread `co` with its traceback.
///
/// # Safety
/// `co` must be a thread of `ctx` that died of that error, its frames kept.
unsafe fn log_thread_error(ctx: &RequestCtx, co: *mut lua_State, msg: &str, entry: bool) {
    // The coroutines a coroutine.wrap error came from, the failed thread,
    // then the parents still running, as lua-nginx-module shows them.
    // SAFETY: `co` is a dead coroutine whose references are kept (caller's contract).
    let mut chain = unsafe { wrapped_failures(co, msg) };
    chain.push(co);
    let mut parent = ctx
        .threads
        .iter()
        .find(|t| t.co == co)
        .map_or(std::ptr::null_mut(), |t| t.parent);
    while let Some(p) = ctx.threads.iter().find(|t| t.co == parent && !t.done) {
        chain.push(p.co);
        parent = p.parent;
    }
    // SAFETY: `co` is dead with its frames kept; its parents are live.
    let tb = unsafe { crate::lua::traceback::format(&chain) };
    let kind = if entry { "entry" } else { "user" };
    log::log_error!(
        ctx.log(),
        NGX_LOG_ERR,
        "lua {kind} thread aborted: runtime error: {msg}\n{tb}"
    );
}

/// The wrapped coroutines whose error `co` died of, innermost first, if
/// `co` raised `msg` from coroutine.wrap's caller side.
///
/// # Safety
/// `co` must be a coroutine of the current VM, not collected.
unsafe fn wrapped_failures(co: *mut lua_State, msg: &str) -> Vec<*mut lua_State> {
    let mut out = Vec::new();
    let Some(vm) = crate::lua::vm::current() else {
        return out;
    };
    let l = vm.main();
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_checkstack(l, 4) } == 0 || unsafe { ffi::lua_checkstack(co, 1) } == 0 {
        return out;
    }
    // SAFETY: `l` is the running state (callers' duty)
    let top = unsafe { ffi::lua_gettop(l) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { lua::get_registry(l, &WRAP_FAILURES) };
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TTABLE {
        // SAFETY: `co` is a live Lua thread of ours (callers' duty)
        unsafe {
            ffi::lua_pushthread(co);
            ffi::lua_xmove(co, l, 1);
            ffi::lua_rawget(l, -2);
        }
        // SAFETY: `l` is the running state (callers' duty)
        if unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TTABLE
            // SAFETY: `l` is the running state (callers' duty)
            && unsafe { field_is(l, c"msg", msg.as_bytes()) }
        {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe {
                ffi::lua_pushstring(l, c"chain".as_ptr());
                ffi::lua_rawget(l, -2);
            }
            // SAFETY: `l` is the running state (callers' duty)
            if unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TTABLE {
                let mut i = 1;
                loop {
                    // SAFETY: `l` is the running state (callers' duty)
                    unsafe { ffi::lua_rawgeti(l, -1, i) };
                    // SAFETY: `l` is the running state (callers' duty)
                    let t = unsafe { ffi::lua_tothread(l, -1) };
                    // SAFETY: `l` is the running state (callers' duty)
                    unsafe { ffi::lua_settop(l, -2) };
                    if t.is_null() {
                        break;
                    }
                    out.push(t);
                    i += 1;
                }
            }
        }
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_settop(l, top) };
    out
}

/// Is `t[name]` (t on top of `l`'s stack) the string `want`?
unsafe fn field_is(l: *mut lua_State, name: &std::ffi::CStr, want: &[u8]) -> bool {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pushstring(l, name.as_ptr());
        ffi::lua_rawget(l, -2);
    }
    // SAFETY: `l` is the running state (callers' duty)
    let same = unsafe { lua::to_bytes(l, -1) }.is_some_and(|b| b == want);
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_settop(l, -2) };
    same
}

/// Resumes a waiting thread from an nginx event handler and lets the phase
/// finish if its code is done. `ctx` may be freed when this returns.
///
/// # Safety
/// `ctx` must be live and `co` one of its threads with `nargs` values pushed.
pub unsafe fn wake(ctx: *mut RequestCtx, co: *mut lua_State, nargs: c_int) {
    // SAFETY: callers' contract
    unsafe { wake_as(ctx, co, nargs, false) }
}

/// `wake` from a handler that found `co` still holding the wait it made
/// when it yielded: it is suspended there, and need not be checked.
///
/// # Safety
/// As `wake`, with `co` suspended.
pub unsafe fn wake_suspended(ctx: *mut RequestCtx, co: *mut lua_State, nargs: c_int) {
    // SAFETY: callers' contract
    unsafe { wake_as(ctx, co, nargs, true) }
}

/// `wake`, `suspended` when the caller knows `co` is.
///
/// # Safety
/// As `wake`.
unsafe fn wake_as(ctx: *mut RequestCtx, co: *mut lua_State, nargs: c_int, suspended: bool) {
    // SAFETY: `ctx` and its request are live (caller's contract)
    let c = unsafe { (*(*ctx).r).connection };
    // A fake connection (timer, TLS handshake code) is freed with its
    // request; it never has posted subrequests to run.
    // SAFETY: `ctx` is live (caller's contract)
    let timer = unsafe { (*ctx).context.is(super::context::ON_FAKE_REQUEST) };
    {
        // The scope may outlive the VM when on_finish frees the request;
        // nothing asks for the current VM before it ends.
        // SAFETY: `ctx` is live (caller's contract)
        let _vm = unsafe { (*ctx).enter_vm() };
        // SAFETY: `ctx` is live and `co` its thread with `nargs` values
        // pushed (caller's contract); no other reference to it is held here
        let outcome = if suspended {
            // SAFETY: as above; `co` is suspended (caller's contract)
            unsafe { resume_checked(&mut *ctx, co, nargs, true) }
        } else {
            // SAFETY: as above
            unsafe { resume(&mut *ctx, co, nargs) }
        };
        if outcome != Outcome::Wait {
            // SAFETY: `ctx` is live: the thread's run did not finish the request
            if let Some(on_finish) = unsafe { (*ctx).on_finish } {
                // SAFETY: `ctx` is live until on_finish, which may free it and is its last use
                on_finish(unsafe { &mut *ctx }, outcome);
            }
        }
    }
    if !timer {
        // SAFETY: a real request's connection outlives the request that `on_finish` may have freed
        unsafe { ngx_http_run_posted_requests(c) };
    }
}

/// Runs `func` to completion on the main thread, for code that may not
/// wait (set, log, filters, init): returns `nresults` values on `main`.
///
/// # Safety
/// Must run with the worker's VM set; the caller pops the results.
pub unsafe fn call_sync(func: c_int, nargs_pushed: c_int, nresults: c_int) -> Result<*mut lua_State, String> {
    let vm = vm::current().ok_or("no Lua VM")?;
    let l = vm.main();
    // SAFETY: `l` is the running state (callers' duty)
    let base = unsafe { ffi::lua_gettop(l) } - nargs_pushed;
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pushcfunction(l, traceback);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, func as _);
    }
    // Move handler and function below the already pushed arguments.
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_insert(l, base + 1);
        ffi::lua_insert(l, base + 1);
    }
    // SAFETY: `l` is the running state (callers' duty)
    let rc = unsafe { ffi::lua_pcall(l, nargs_pushed, nresults, base + 1) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_remove(l, base + 1) };
    if rc != 0 {
        // lua-nginx-module logs only string (or number) errors.
        // SAFETY: `l` is the running state (callers' duty)
        if unsafe { ffi::lua_isstring(l, -1) } == 0 {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 1) };
            return Err("unknown reason".into());
        }
        // SAFETY: `l` is the running state (callers' duty)
        return Err(unsafe { vm::pop_message(l) });
    }
    Ok(l)
}

crate::lua::lua_fns! { traceback => traceback_impl }

/// pcall message handler: appends the traceback to a string error, as
/// lua-nginx-module logs it (other values are kept as they are).
unsafe fn traceback_impl(l: *mut lua_State) -> crate::lua::LuaRet {
    // SAFETY: called by lua_pcall with the error value at index 1.
    unsafe {
        if ffi::lua_isstring(l, 1) == 0 {
            ffi::lua_settop(l, 1);
            return Ok(1);
        }
        // From level 1: the function that raised (level 0 is this handler).
        let trace = crate::lua::traceback::plain(l, 1);
        let mut text = lua::to_bytes(l, 1).unwrap_or_default().to_vec();
        text.push(b'\n');
        text.extend_from_slice(trace.as_bytes());
        lua::push_bytes(l, &text);
    }
    Ok(1)
}
