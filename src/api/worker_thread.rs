//! `ngx.run_worker_thread(threadpool, module, func, ...)`: calls
//! `require(module)[func](...)` in a separate Lua VM on a thread of the
//! nginx thread pool `threadpool` (the `thread_pool` directive), while the
//! calling Lua thread waits; returns true and the function's results, or
//! false and an error. Failures that lua-nginx-module reports before the
//! call (no such pool, module or function, a value that cannot be passed)
//! are returned the same way, without waiting.
//!
//! The VMs (`lua_worker_thread_vm_pool_size`, 100 by default) are fresh
//! states with the standard libraries, the main VM's `package.path` and
//! `package.cpath`, and the part of `ngx` that needs no request, as in
//! lua-nginx-module: the string functions, `ngx.re`, `ngx.config`,
//! `ngx.shared`, the constants and `ngx.null`.

use std::ffi::c_int;

use nginx_sys::{ngx_cycle, ngx_str_t, ngx_thread_pool_get};

use crate::conf::main_conf;
use crate::lua::lua_fns;
use crate::lua::xcopy;
use crate::lua::{LuaRet, new_bare_state};
use crate::lua::{ffi, get_raw, lua_State, push_bytes, set_fn, set_raw, to_bytes};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx;
use crate::runtime::scheduler::yield_wait;
use crate::runtime::worker_thread;

lua_fns! { run_worker_thread => run_impl }

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"run_worker_thread", run_worker_thread) };
}

/// `false, msg`: how this function reports every failure.
unsafe fn fail(l: *mut lua_State, msg: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushboolean(l, 0) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { push_bytes(l, msg.as_bytes()) };
    Ok(2)
}

/// A string argument (a number converts, as lua_tolstring does).
unsafe fn string_arg<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => unsafe { to_bytes(l, idx) },
        _ => None,
    }
}

unsafe fn run_impl(l: *mut lua_State) -> LuaRet {
    let ctx = ctx::request()?;
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n < 3 {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "expecting at least 3 arguments") };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(pool_name) = (unsafe { string_arg(l, 1) }) else {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "threadpool should be a string") };
    };
    let mut name = ngx_str_t {
        len: pool_name.len(),
        data: pool_name.as_ptr() as *mut u8,
    };
    // SAFETY: ngx_cycle is the live current cycle
    let pool = unsafe { ngx_thread_pool_get(ngx_cycle, &mut name) };
    if pool.is_null() {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe {
            fail(
                l,
                &format!("thread pool {} not found", String::from_utf8_lossy(pool_name)),
            )
        };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(module) = (unsafe { string_arg(l, 2) }) else {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "module name should be a string") };
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(func) = (unsafe { string_arg(l, 3) }) else {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "function name should be a string") };
    };
    // SAFETY: `ctx.r` is the live request of the running context
    let max = unsafe { main_conf(ctx.r) }.worker_thread_vm_pool_size();
    // SAFETY: `ctx.r` is the live request of the running context
    let vm = match worker_thread::acquire(max, || unsafe { build_vm(l, ctx.r) }) {
        Ok(Some(vm)) => vm,
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(None) | Err(_) => return unsafe { fail(l, "no available Lua vm") },
    };
    // SAFETY: `l` is the running state Lua called this API function with
    if let Err(e) = unsafe { prepare(l, vm, module, func, n) } {
        // SAFETY: `vm` came from acquire and runs nothing
        unsafe { worker_thread::release(vm) };
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, &e) };
    }
    let Some(co) = ctx.running_thread().map(|t| t.co) else {
        // SAFETY: `vm` came from acquire and runs nothing
        unsafe { worker_thread::release(vm) };
        return Err("no request thread to suspend".into());
    };
    let ctx_ptr: *mut ctx::RequestCtx = ctx;
    // SAFETY: ngx_cycle is the live current cycle
    match unsafe { worker_thread::post(pool, vm, n - 3, ctx_ptr, co, (*ngx_cycle).log) } {
        // (stored once the raw ctx pointer was handed over: no borrow of the
        // thread is live meanwhile)
        Ok(wait) => {
            if let Some(t) = ctx.running_thread() {
                t.wait = Some(wait.into());
            }
        }
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => return unsafe { fail(l, e) },
    }
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

/// Leaves the function and the arguments (4..n of `l`) on `vm`'s stack.
unsafe fn prepare(
    l: *mut lua_State,
    vm: *mut lua_State,
    module: &[u8],
    func: &[u8],
    n: c_int,
) -> Result<(), String> {
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    if unsafe { ffi::lua_checkstack(vm, n + 4) } == 0 {
        return Err("no memory".into());
    }
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { get_raw(vm, ffi::LUA_GLOBALSINDEX, c"require") };
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { push_bytes(vm, module) };
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    if unsafe { ffi::lua_pcall(vm, 1, 1, 0) } != 0 {
        // SAFETY: `vm` is a pool VM held by this thread alone, not running
        return Err(match unsafe { to_bytes(vm, -1) } {
            Some(msg) => String::from_utf8_lossy(msg).into_owned(),
            None => "unknown error".into(),
        });
    }
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    if unsafe { ffi::lua_istable(vm, -1) } == 0 {
        return Err("invalid lua module".into());
    }
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { push_bytes(vm, func) };
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { ffi::lua_rawget(vm, -2) };
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    if unsafe { ffi::lua_isfunction(vm, -1) } == 0 {
        return Err("invalid function".into());
    }
    // Drop the module table: the stack is the function, then its arguments.
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { ffi::lua_remove(vm, -2) };
    for i in 4..=n {
        // SAFETY: `l` is the running state (callers' duty)
        (unsafe { xcopy::copy(l, vm, i, true, 1) }).map_err(|e| format!("{e} in the argument"))?;
    }
    Ok(())
}

/// A new VM for the pool: standard libraries, the main VM's search paths,
/// and the request-free part of `ngx`.
unsafe fn build_vm(
    main: *mut lua_State,
    r: *mut nginx_sys::ngx_http_request_t,
) -> Result<*mut lua_State, String> {
    // SAFETY: a fresh state, closed by whoever takes it from the pool
    let vm = unsafe { new_bare_state() };
    if vm.is_null() {
        return Err("no memory".into());
    }
    // SAFETY: `main` is the VM's live main state (caller's); only its own stack is touched
    unsafe { get_raw(main, ffi::LUA_GLOBALSINDEX, c"package") };
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { get_raw(vm, ffi::LUA_GLOBALSINDEX, c"package") };
    for field in [c"path", c"cpath"] {
        // SAFETY: `main` is the VM's live main state (caller's); only its own stack is touched
        unsafe { get_raw(main, -1, field) };
        // SAFETY: `main` is the VM's live main state (caller's); only its own stack is touched
        if unsafe { ffi::lua_type(main, -1) } == ffi::LUA_TSTRING {
            // SAFETY: `main` is the VM's live main state, `vm` our fresh state
            unsafe { push_bytes(vm, to_bytes(main, -1).unwrap_or_default()) };
            // SAFETY: `vm` is a pool VM held by this thread alone, not running
            unsafe { set_raw(vm, -2, field) };
        }
        // SAFETY: `main` is the VM's live main state (caller's); only its own stack is touched
        unsafe { ffi::lua_pop(main, 1) };
    }
    // SAFETY: `main` is the VM's live main state (caller's); only its own stack is touched
    unsafe { ffi::lua_pop(main, 1) };
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { ffi::lua_pop(vm, 1) };

    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { ffi::lua_createtable(vm, 0, 32) };
    // SAFETY: `vm` is a fresh state of ours, not running
    unsafe { super::constants::install(vm) };
    // SAFETY: `vm` is a fresh state of ours, not running
    unsafe { super::string::install(vm) };
    // SAFETY: `vm` is a fresh state of ours, not running
    unsafe { super::worker::install(vm) };
    // SAFETY: `vm` is a fresh state of ours, not running
    if let Err(e) = unsafe { super::regex::install(vm) } {
        // SAFETY: `vm` is our fresh state, not running, dropped here
        unsafe { crate::lua::close_state(vm) };
        return Err(e);
    }
    // SAFETY: `vm` is a fresh state of ours, not running
    if let Err(e) = unsafe { super::shdict::install(vm) } {
        // SAFETY: `vm` is our fresh state, not running, dropped here
        unsafe { crate::lua::close_state(vm) };
        return Err(e);
    }
    // SAFETY: `vm` is a pool VM held by this thread alone, not running
    unsafe { set_raw(vm, ffi::LUA_GLOBALSINDEX, c"ngx") };
    // SAFETY: `r` is a live request (callers' duty)
    for zone in &unsafe { main_conf(r) }.shdicts {
        let z: *const crate::conf::shdict::Zone = &**zone;
        // SAFETY: `vm` is not running; the zone lives in the cycle's main conf, longer than the VM
        unsafe { super::shdict::register(vm, &zone.name, z as *mut _) };
    }
    Ok(vm)
}
