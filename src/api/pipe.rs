//! `require "ngx.pipe"`: lua-resty-core's pipe API over `runtime::pipe`.
//! The argument checks and their texts are Lua (`lua/pipe.lua`); the
//! functions below take checked values. A process object is a userdata
//! holding the boxed `Proc`; its `__gc` kills a child still running.

use std::ffi::{CString, c_int};

use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{
    LuaRet, ffi, get_raw, lua_State, new_metatable, push_bytes, set_fn, set_raw, to_bytes, udata_of,
};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx;
use crate::runtime::pipe::{self, Proc, ReadKind, Spawn, Step};
use crate::runtime::scheduler::yield_wait;

lua_fns! {
    spawn => spawn_impl,
    pid => pid_impl,
    set_timeouts => set_timeouts_impl,
    read => read_impl,
    write => write_impl,
    shutdown => shutdown_impl,
    wait => wait_impl,
    kill => kill_impl,
    is_proc => is_proc_impl,
    gc => gc_impl,
}

/// Registry name of the process objects' metatable.
const MT: &std::ffi::CStr = c"ngx_lua_pipe_proc";

type Slot = *mut Proc;

/// Registers `ngx.pipe` in `package.preload`.
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        new_metatable(l, MT);
        set_fn(l, -1, c"__gc", gc);
        ffi::lua_pop(l, 1);
    }
    let code = lua_source!("lua/pipe.lua");
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), c"=ngx.pipe".as_ptr()) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 10);
        set_fn(l, -1, c"spawn", spawn);
        set_fn(l, -1, c"pid", pid);
        set_fn(l, -1, c"set_timeouts", set_timeouts);
        set_fn(l, -1, c"read", read);
        set_fn(l, -1, c"write", write);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"shutdown", shutdown);
        set_fn(l, -1, c"wait", wait);
        set_fn(l, -1, c"kill", kill);
        set_fn(l, -1, c"is_proc", is_proc);
        get_raw(l, ffi::LUA_REGISTRYINDEX, MT);
        set_raw(l, -2, c"mt");
    }
    // The chunk returns the preload function.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_pcall(l, 1, 1, 0) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
        get_raw(l, -1, c"preload");
        ffi::lua_pushvalue(l, -3);
        set_raw(l, -2, c"ngx.pipe");
        ffi::lua_pop(l, 3);
    }
    Ok(())
}

/// The live process of argument 1 (checked by the Lua face already).
unsafe fn proc_arg(l: *mut lua_State) -> Result<*mut Proc, String> {
    // SAFETY: `l` is the running state (callers' duty)
    let ud = unsafe { udata_of(l, 1, MT) }.ok_or("not a process instance")? as *mut Slot;
    // SAFETY: udata_of checked the userdata is one of ours: it holds a Slot
    let p = unsafe { *ud };
    if p.is_null() {
        return Err("not a process instance".into());
    }
    Ok(p)
}

unsafe fn is_proc_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: udata_of checked the userdata is one of ours: it holds a Slot
    let ok = unsafe { udata_of(l, 1, MT) }.is_some_and(|ud| !unsafe { (*(ud as *mut Slot)).is_null() });
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, ok as c_int) };
    Ok(1)
}

unsafe fn cstring_at(l: *mut lua_State, t: c_int, i: c_int) -> Result<CString, String> {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_rawgeti(l, t, i as _) };
    // SAFETY: `l` is the running state (callers' duty)
    let s = unsafe { to_bytes(l, -1) }.unwrap_or_default().to_vec();
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pop(l, 1) };
    CString::new(s).map_err(|_| "argument contains a NUL byte".to_string())
}

/// spawn(argv, merge_stderr, buffer_size, environ|nil, t_write, t_stdout,
/// t_stderr, t_wait): the object, or nil and the error.
unsafe fn spawn_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let nargs = unsafe { ffi::lua_objlen(l, 1) } as c_int;
    let mut argv = Vec::with_capacity(nargs as usize);
    for i in 1..=nargs {
        // SAFETY: `l` is the running state Lua called this API function with
        argv.push(unsafe { cstring_at(l, 1, i) }?);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let env = if unsafe { ffi::lua_istable(l, 4) } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        let n = unsafe { ffi::lua_objlen(l, 4) } as c_int;
        let mut v = Vec::with_capacity(n as usize);
        for i in 1..=n {
            // SAFETY: `l` is the running state Lua called this API function with
            v.push(unsafe { cstring_at(l, 4, i) }?);
        }
        Some(v)
    } else {
        None
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let t = |i: c_int| unsafe { ffi::lua_tonumber(l, i) } as nginx_sys::ngx_msec_t;
    let s = Spawn {
        file: argv[0].clone(),
        argv,
        env,
        // SAFETY: `l` is the running state Lua called this API function with
        merge_stderr: unsafe { ffi::lua_toboolean(l, 2) } != 0,
        // SAFETY: `l` is the running state Lua called this API function with
        buffer_size: unsafe { ffi::lua_tonumber(l, 3) } as usize,
        timeouts: [t(5), t(6), t(7), t(8)],
    };
    let r = ctx::current().map_or(std::ptr::null_mut(), |c| c.r);
    // SAFETY: `r` is the live request of the running context
    match unsafe { pipe::spawn(s, r) } {
        Ok(p) => {
            // SAFETY: `l` is the running state Lua called this API function with
            let ud = unsafe { ffi::lua_newuserdata(l, size_of::<Slot>()) } as *mut Slot;
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe {
                ud.write(Box::into_raw(p));
                get_raw(l, ffi::LUA_REGISTRYINDEX, MT);
                ffi::lua_setmetatable(l, -2);
            }
            Ok(1)
        }
        Err(e) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe {
                ffi::lua_pushnil(l);
                push_bytes(l, e.as_bytes());
            }
            Ok(2)
        }
    }
}

unsafe fn gc_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(ud) = unsafe { udata_of(l, 1, MT) } {
        let slot = ud as *mut Slot;
        // SAFETY: udata_of checked the userdata is one of ours: it holds a Slot
        let p = unsafe { *slot };
        // SAFETY: the slot is ours; cleared so the Proc is freed once
        unsafe {
            *slot = std::ptr::null_mut();
        }
        if !p.is_null() {
            // SAFETY: `p` came from Box::into_raw of a spawned Proc; the slot no longer holds it
            unsafe { pipe::destroy(p) };
        }
    }
    Ok(0)
}

unsafe fn pid_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    // SAFETY: `l` is the running state; proc_arg gave a live Proc
    unsafe { ffi::lua_pushinteger(l, (*p).pid as _) };
    Ok(1)
}

/// set_timeouts(proc, write, stdout, stderr, wait): nil keeps a value.
unsafe fn set_timeouts_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    for i in 0..4 {
        // SAFETY: `l` is the running state Lua called this API function with
        if unsafe { ffi::lua_type(l, 2 + i) } == ffi::LUA_TNUMBER {
            // SAFETY: proc_arg gave a live Proc; `l` is the running state
            unsafe {
                (*p).timeouts[i as usize] = ffi::lua_tonumber(l, 2 + i) as nginx_sys::ngx_msec_t;
            }
        }
    }
    Ok(0)
}

/// The running request thread, for a call that may wait.
fn waiter() -> Result<(*mut ctx::RequestCtx, *mut lua_State), String> {
    context::check(YIELDABLE)?;
    let ctx = ctx::request()?;
    let ctx_ptr: *mut ctx::RequestCtx = ctx;
    let t = ctx.running_thread().ok_or("no request thread to suspend")?;
    Ok((ctx_ptr, t.co))
}

unsafe fn fail(l: *mut lua_State, e: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pushnil(l);
        push_bytes(l, e.as_bytes());
    }
    Ok(2)
}

unsafe fn suspend(
    l: *mut lua_State,
    ctx: *mut ctx::RequestCtx,
    w: Box<dyn crate::runtime::scheduler::Wait>,
) -> LuaRet {
    // SAFETY: `ctx.r` is the live request of the running context
    if let Some(t) = unsafe { (*ctx).running_thread() } {
        t.wait = Some(w.into());
    }
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

/// read(proc, from_stderr, kind, n): kind 0 all, 1 bytes, 2 line, 3 any.
unsafe fn read_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    let (ctx, co) = waiter()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_tonumber(l, 4) }.max(0.0) as usize;
    // SAFETY: `l` is the running state Lua called this API function with
    let kind = match unsafe { ffi::lua_tointeger(l, 3) } {
        0 => ReadKind::All,
        1 => ReadKind::Bytes(n),
        2 => ReadKind::Line,
        _ => ReadKind::Any(n),
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let i = if unsafe { ffi::lua_toboolean(l, 2) } != 0 {
        pipe::STDERR
    } else {
        pipe::STDOUT
    };
    // SAFETY: proc_arg gave a live Proc; `ctx`/`co` are the running request thread
    match unsafe { pipe::read(p, i, kind, ctx, co) } {
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { fail(l, e) },
        // SAFETY: `r` is the live request of the running context
        Ok(Step::Done(r)) => Ok(unsafe { pipe::push_read(l, r) }),
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(Step::Wait(w)) => unsafe { suspend(l, ctx, w) },
    }
}

unsafe fn write_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    let (ctx, co) = waiter()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let data = unsafe { to_bytes(l, 2) }.unwrap_or_default();
    // SAFETY: proc_arg gave a live Proc; `ctx`/`co` are the running request thread
    match unsafe { pipe::write(p, data, ctx, co) } {
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { fail(l, e) },
        // SAFETY: `r` is the live request of the running context
        Ok(Step::Done(r)) => Ok(unsafe { pipe::push_write(l, r) }),
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(Step::Wait(w)) => unsafe { suspend(l, ctx, w) },
    }
}

unsafe fn wait_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    let (ctx, co) = waiter()?;
    // SAFETY: proc_arg gave a live Proc; `ctx`/`co` are the running request thread
    match unsafe { pipe::wait(p, ctx, co) } {
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { fail(l, e) },
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(Step::Done(how)) => Ok(unsafe { pipe::push_ended(l, how) }),
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(Step::Wait(w)) => unsafe { suspend(l, ctx, w) },
    }
}

/// shutdown(proc, 0 stdin | 1 stdout | 2 stderr): true, or nil and err.
unsafe fn shutdown_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let i = (unsafe { ffi::lua_tointeger(l, 2) } as usize).min(2);
    // SAFETY: proc_arg gave a live Proc
    match unsafe { pipe::shutdown(p, i) } {
        Ok(()) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushboolean(l, 1) };
            Ok(1)
        }
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { fail(l, e) },
    }
}

unsafe fn kill_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { proc_arg(l) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    match unsafe { pipe::kill(p, ffi::lua_tointeger(l, 2) as c_int) } {
        Ok(()) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushboolean(l, 1) };
            Ok(1)
        }
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { fail(l, &e) },
    }
}
