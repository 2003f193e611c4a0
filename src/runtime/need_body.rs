//! `lua_need_request_body on`: the entry thread reads the client body
//! (waiting like `ngx.req.read_body()`) before the user's code starts.

use super::context::{self, Context};
use super::ctx::{Outcome, RequestCtx};
use super::scheduler;
use crate::conf::loc_conf;
use crate::lua::vm;
use crate::lua::{ffi, lua_State};

/// Registry key of `function(f) return function(...) read_body() return f(...) end end`.
pub const WRAPPER_KEY: &std::ffi::CStr = c"ngx_lua_need_body_wrapper";

/// Stores the wrapper factory, closing over the `read_body` function on top
/// of `l` (which it pops).
///
/// # Safety
/// `l` must be the main state, not running, with read_body on top.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    let code =
        b"local read_body = ...\nreturn function(f) return function(...) read_body() return f(...) end end";
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe {
        ffi::luaL_loadbuffer(
            l,
            code.as_ptr().cast(),
            code.len(),
            c"=lua_need_request_body".as_ptr(),
        )
    } != 0
    {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_insert(l, -2) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_pcall(l, 1, 1, 0) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, ffi::LUA_REGISTRYINDEX, WRAPPER_KEY) };
    Ok(())
}

fn needs_body(ctx: &RequestCtx, phase: Context) -> bool {
    if !matches!(phase, context::REWRITE | context::ACCESS | context::CONTENT) {
        return false;
    }
    // SAFETY: ctx.r is the live request.
    unsafe { loc_conf(ctx.r).need_request_body.unwrap_or(false) && (*ctx.r).request_body.is_null() }
}

/// Starts the entry thread with `func`, reading the body first if the
/// location asks for it.
#[inline]
pub fn start(ctx: &mut RequestCtx, func: i32, phase: Context) -> Outcome {
    if !needs_body(ctx, phase) {
        return scheduler::start(ctx, func);
    }
    let Some(vm) = vm::current() else {
        return scheduler::start(ctx, func);
    };
    let l = vm.main();
    // SAFETY: the main state is idle between Lua runs; the stack is
    // balanced on every path.
    let wrapped = unsafe {
        crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, WRAPPER_KEY);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, func as _);
        if ffi::lua_pcall(l, 1, 1, 0) != 0 {
            ffi::lua_pop(l, 1);
            return scheduler::start(ctx, func);
        }
        ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX)
    };
    let outcome = scheduler::start(ctx, wrapped);
    vm.unref(wrapped);
    outcome
}
