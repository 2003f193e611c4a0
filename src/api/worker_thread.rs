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
use crate::lua::{ffi, get_raw, lua_State, push_bytes, set_fn, set_raw, to_bytes};
use crate::lua::{new_bare_state, LuaRet};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx;
use crate::runtime::scheduler::yield_wait;
use crate::runtime::worker_thread;

lua_fns! { run_worker_thread => run_impl }

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    set_fn(l, -1, c"run_worker_thread", run_worker_thread);
}

/// `false, msg`: how this function reports every failure.
unsafe fn fail(l: *mut lua_State, msg: &str) -> LuaRet {
    ffi::lua_pushboolean(l, 0);
    push_bytes(l, msg.as_bytes());
    Ok(2)
}

/// A string argument (a number converts, as lua_tolstring does).
unsafe fn string_arg<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => to_bytes(l, idx),
        _ => None,
    }
}

unsafe fn run_impl(l: *mut lua_State) -> LuaRet {
    let ctx = ctx::request()?;
    context::check(YIELDABLE)?;
    let n = ffi::lua_gettop(l);
    if n < 3 {
        return fail(l, "expecting at least 3 arguments");
    }
    let Some(pool_name) = string_arg(l, 1) else {
        return fail(l, "threadpool should be a string");
    };
    let mut name = ngx_str_t {
        len: pool_name.len(),
        data: pool_name.as_ptr() as *mut u8,
    };
    let pool = ngx_thread_pool_get(ngx_cycle, &mut name);
    if pool.is_null() {
        return fail(
            l,
            &format!("thread pool {} not found", String::from_utf8_lossy(pool_name)),
        );
    }
    let Some(module) = string_arg(l, 2) else {
        return fail(l, "module name should be a string");
    };
    let Some(func) = string_arg(l, 3) else {
        return fail(l, "function name should be a string");
    };
    let max = main_conf(ctx.r).worker_thread_vm_pool_size();
    let vm = match worker_thread::acquire(max, || build_vm(l, ctx.r)) {
        Ok(Some(vm)) => vm,
        Ok(None) | Err(_) => return fail(l, "no available Lua vm"),
    };
    if let Err(e) = prepare(l, vm, module, func, n) {
        worker_thread::release(vm);
        return fail(l, &e);
    }
    let ctx_ptr: *mut ctx::RequestCtx = ctx;
    let Some(t) = ctx.running_thread() else {
        worker_thread::release(vm);
        return Err("no request thread to suspend".into());
    };
    let co = t.co;
    match worker_thread::post(pool, vm, n - 3, ctx_ptr, co, (*ngx_cycle).log) {
        Ok(wait) => t.wait = Some(wait),
        Err(e) => return fail(l, e),
    }
    yield_wait(l)
}

/// Leaves the function and the arguments (4..n of `l`) on `vm`'s stack.
unsafe fn prepare(
    l: *mut lua_State,
    vm: *mut lua_State,
    module: &[u8],
    func: &[u8],
    n: c_int,
) -> Result<(), String> {
    if ffi::lua_checkstack(vm, n + 4) == 0 {
        return Err("no memory".into());
    }
    get_raw(vm, ffi::LUA_GLOBALSINDEX, c"require");
    push_bytes(vm, module);
    if ffi::lua_pcall(vm, 1, 1, 0) != 0 {
        return Err(match to_bytes(vm, -1) {
            Some(msg) => String::from_utf8_lossy(msg).into_owned(),
            None => "unknown error".into(),
        });
    }
    if ffi::lua_istable(vm, -1) == 0 {
        return Err("invalid lua module".into());
    }
    push_bytes(vm, func);
    ffi::lua_rawget(vm, -2);
    if ffi::lua_isfunction(vm, -1) == 0 {
        return Err("invalid function".into());
    }
    // Drop the module table: the stack is the function, then its arguments.
    ffi::lua_remove(vm, -2);
    for i in 4..=n {
        xcopy::copy(l, vm, i, true, 1).map_err(|e| format!("{e} in the argument"))?;
    }
    Ok(())
}

/// A new VM for the pool: standard libraries, the main VM's search paths,
/// and the request-free part of `ngx`.
unsafe fn build_vm(
    main: *mut lua_State,
    r: *mut nginx_sys::ngx_http_request_t,
) -> Result<*mut lua_State, String> {
    let vm = new_bare_state();
    if vm.is_null() {
        return Err("no memory".into());
    }
    get_raw(main, ffi::LUA_GLOBALSINDEX, c"package");
    get_raw(vm, ffi::LUA_GLOBALSINDEX, c"package");
    for field in [c"path", c"cpath"] {
        get_raw(main, -1, field);
        if ffi::lua_type(main, -1) == ffi::LUA_TSTRING {
            push_bytes(vm, to_bytes(main, -1).unwrap_or_default());
            set_raw(vm, -2, field);
        }
        ffi::lua_pop(main, 1);
    }
    ffi::lua_pop(main, 1);
    ffi::lua_pop(vm, 1);

    ffi::lua_createtable(vm, 0, 32);
    super::constants::install(vm);
    super::string::install(vm);
    super::worker::install(vm);
    if let Err(e) = super::regex::install(vm) {
        crate::lua::close_state(vm);
        return Err(e);
    }
    if let Err(e) = super::shdict::install(vm) {
        crate::lua::close_state(vm);
        return Err(e);
    }
    set_raw(vm, ffi::LUA_GLOBALSINDEX, c"ngx");
    for zone in &main_conf(r).shdicts {
        let z: *const crate::conf::shdict::Zone = &**zone;
        super::shdict::register(vm, &zone.name, z as *mut _);
    }
    Ok(vm)
}
