//! The engine of `ngx.run_worker_thread`: a pool of separate Lua VMs, and
//! tasks that call a function in one of them on an nginx thread pool
//! thread while the calling Lua thread waits.
//!
//! A VM is used by one thread at a time: it is taken from the pool in the
//! event loop, prepared there (module, function, arguments), handed to the
//! pool thread for the call only, and read back and returned to the pool in
//! the event loop once nginx runs the task's completion event. The task
//! (and the VM it holds) is owned by nginx's thread pool from the post
//! until that event, so it is heap memory of its own, never the
//! request's: a request that ends meanwhile only marks the task abandoned.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;

use nginx_sys::{NGX_OK, ngx_event_t, ngx_log_t, ngx_thread_pool_t, ngx_thread_task_post, ngx_thread_task_t};

use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use crate::lua::vm;
use crate::lua::xcopy;
use crate::lua::{close_state, ffi, lua_State, push_bytes, to_bytes};

/// This worker's VMs for worker threads: the idle ones, and how many were
/// made (lua_worker_thread_vm_pool_size bounds it; VMs are never given
/// back to the system before the worker exits, as in lua-nginx-module).
#[derive(Default)]
pub struct VmPool {
    idle: RefCell<Vec<*mut lua_State>>,
    made: Cell<usize>,
}
crate::lua::vm::vm_state!(VmPool);

impl Drop for VmPool {
    fn drop(&mut self) {
        for l in self.idle.borrow_mut().drain(..) {
            // SAFETY: an idle VM is used by nobody.
            unsafe { close_state(l) };
        }
    }
}

/// An idle VM, or a new one made by `build` while fewer than `max` exist;
/// None when all `max` are busy.
pub fn acquire(
    max: usize,
    build: impl FnOnce() -> Result<*mut lua_State, String>,
) -> Result<Option<*mut lua_State>, String> {
    let pool = vm::current_state::<VmPool>().ok_or("no Lua VM")?;
    if let Some(l) = pool.idle.borrow_mut().pop() {
        return Ok(Some(l));
    }
    if pool.made.get() >= max {
        return Ok(None);
    }
    let l = build()?;
    pool.made.set(pool.made.get() + 1);
    Ok(Some(l))
}

/// Puts a VM back, its stack emptied.
///
/// # Safety
/// `l` must be a VM from [`acquire`] that no thread runs now.
pub unsafe fn release(l: *mut lua_State) {
    // SAFETY: a VM of the pool that no thread runs now (caller's contract).
    unsafe { ffi::lua_settop(l, 0) };
    match vm::current_state::<VmPool>() {
        Some(pool) => pool.idle.borrow_mut().push(l),
        // SAFETY: no pool to return it to (the worker is exiting).
        None => unsafe { close_state(l) },
    }
}

/// nginx's task with what the call needs. `task` comes first: nginx is
/// handed a pointer to it, and `task.ctx` / `task.event.data` point back
/// to the whole.
#[repr(C)]
struct Task {
    task: ngx_thread_task_t,
    vm: *mut lua_State,
    nargs: c_int,
    /// The pool thread's lua_pcall status.
    rc: Cell<c_int>,
    /// The waiting thread went away (request ended, thread killed): the
    /// completion only frees the task. Touched in the event loop only.
    abandoned: Cell<bool>,
    ctx: *mut RequestCtx,
    co: *mut lua_State,
}

/// The waiting thread's hold on a task in flight.
struct TaskWait(*mut Task);

impl Wait for TaskWait {}

impl Drop for TaskWait {
    fn drop(&mut self) {
        // SAFETY: the task lives until its completion event, which takes
        // the wait off the thread before it frees the task.
        unsafe { (*self.0).abandoned.set(true) };
    }
}

/// Hands `vm` (function and `nargs` arguments on its stack) to `pool` and
/// returns the wait that keeps `co` of `ctx` suspended until the call
/// returns. On failure the VM is back in the pool.
///
/// # Safety
/// `ctx` live, `co` its running thread; `pool` from ngx_thread_pool_get.
pub unsafe fn post(
    pool: *mut ngx_thread_pool_t,
    vm_l: *mut lua_State,
    nargs: c_int,
    ctx: *mut RequestCtx,
    co: *mut lua_State,
    log: *mut ngx_log_t,
) -> Result<Box<dyn Wait>, &'static str> {
    // SAFETY: an all-zero ngx_thread_task_t is what ngx_thread_task_alloc
    // gives (ngx_pcalloc).
    let zero = unsafe { MaybeUninit::<ngx_thread_task_t>::zeroed().assume_init() };
    let t = Box::into_raw(Box::new(Task {
        task: zero,
        vm: vm_l,
        nargs,
        rc: Cell::new(0),
        abandoned: Cell::new(false),
        ctx,
        co,
    }));
    // SAFETY: `t` is ours until posted; after a successful post nginx owns
    // it until the completion event, which frees it.
    unsafe {
        (*t).task.ctx = t.cast::<c_void>();
        (*t).task.handler = Some(call_in_thread);
        (*t).task.event.data = t.cast::<c_void>();
        (*t).task.event.handler = Some(on_done);
        (*t).task.event.log = log;
        if ngx_thread_task_post(pool, &mut (*t).task) != NGX_OK as nginx_sys::ngx_int_t {
            drop(Box::from_raw(t));
            release(vm_l);
            return Err("ngx_thread_task_post failed");
        }
    }
    Ok(Box::new(TaskWait(t)))
}

/// Runs on a pool thread: the call, and nothing else of ours.
unsafe extern "C" fn call_in_thread(data: *mut c_void, _log: *mut ngx_log_t) {
    crate::glue::catch((), || {
        let t = data as *mut Task;
        // SAFETY: the task and its VM belong to this thread until the call
        // returns; lua_pcall catches every Lua error.
        unsafe {
            (*t).rc
                .set(ffi::lua_pcall((*t).vm, (*t).nargs, ffi::LUA_MULTRET, 0))
        };
    })
}

/// Back in the event loop: copy the results to the waiting thread, give
/// the VM back, resume.
unsafe extern "C" fn on_done(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data is the task, which nginx handed back; a wait still
        // held by its thread means the request and thread are live.
        unsafe {
            let t = (*ev).data as *mut Task;
            let (vm_l, rc, ctx, co) = ((*t).vm, (*t).rc.get(), (*t).ctx, (*t).co);
            if !(*t).abandoned.get() {
                // Detach the wait first (its Drop marks this task), then
                // copy while the VM is still ours.
                drop((*ctx).take_wait(co));
                let n = push_results(vm_l, co, rc);
                release(vm_l);
                drop(Box::from_raw(t));
                wake(ctx, co, n);
            } else {
                release(vm_l);
                drop(Box::from_raw(t));
            }
        }
    })
}

/// What the waiting call returns: true and the function's results, or
/// false and the error.
unsafe fn push_results(from: *mut lua_State, to: *mut lua_State, rc: c_int) -> c_int {
    // SAFETY: `from` is idle again (the call returned), `to` suspended.
    unsafe {
        if ffi::lua_checkstack(to, 4) == 0 {
            return 0;
        }
        if rc != 0 {
            ffi::lua_pushboolean(to, 0);
            match to_bytes(from, -1) {
                Some(msg) if ffi::lua_type(from, -1) == ffi::LUA_TSTRING => push_bytes(to, msg),
                _ => ffi::lua_pushnil(to),
            }
            return 2;
        }
        let base = ffi::lua_gettop(to);
        let n = ffi::lua_gettop(from);
        if ffi::lua_checkstack(to, n + 4) == 0 {
            ffi::lua_pushboolean(to, 0);
            push_bytes(to, b"no memory");
            return 2;
        }
        ffi::lua_pushboolean(to, 1);
        for i in 1..=n {
            if let Err(e) = xcopy::copy(from, to, i, true, 1) {
                ffi::lua_settop(to, base);
                ffi::lua_pushboolean(to, 0);
                push_bytes(to, format!("{e} in the return value").as_bytes());
                return 2;
            }
        }
        n + 1
    }
}
