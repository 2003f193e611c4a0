//! ngx.worker.* and ngx.config.*.

use nginx_sys::{NGX_PROCESS_WORKER, ngx_cycle, ngx_process};

use super::worker_ffi;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, ffi, lua_State, push_bytes, set_fn, set_str};

lua_fns! {
    pid => pid_impl,
    pids => pids_impl,
    id => id_impl,
    count => count_impl,
    exiting => exiting_impl,
    prefix => prefix_impl,
    configure => configure_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 4);
        set_fn(l, -1, c"pid", pid);
        set_fn(l, -1, c"pids", pids);
        set_fn(l, -1, c"id", id);
        set_fn(l, -1, c"count", count);
        set_fn(l, -1, c"exiting", exiting);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"worker") };

    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 6);
        set_str(l, -1, c"subsystem", b"http");
        ffi::lua_pushboolean(l, 1);
        crate::lua::set_raw(l, -2, c"debug");
        ffi::lua_pushinteger(l, nginx_sys::nginx_version as _);
        crate::lua::set_raw(l, -2, c"nginx_version");
    }
    // The lua-nginx-module release whose behaviour this module reproduces
    // (Debian 12's 0.10.23): libraries compare against it, and lua-resty-core
    // 0.1.25's own resty.core.base refuses any other number.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_pushinteger(l, 10023);
        crate::lua::set_raw(l, -2, c"ngx_lua_version");
        set_fn(l, -1, c"prefix", prefix);
        set_fn(l, -1, c"nginx_configure", configure);
        crate::lua::set_raw(l, -2, c"config");
    }
}

unsafe fn pid_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, worker_ffi::ngx_http_lua_ffi_worker_pid() as _) };
    Ok(1)
}

/// All worker pids this worker knows: its own, the ones forked before it
/// (inherited) and the later ones (sent by the master over the channels).
unsafe fn pids_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    if unsafe { ngx_process } != NGX_PROCESS_WORKER as nginx_sys::ngx_uint_t && unsafe { ngx_process } != 0 {
        return Err("API disabled in the current context".into());
    }
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    let mut list = vec![unsafe { nginx_sys::ngx_pid }];
    // Slots announced over the channel do not move ngx_last_process: scan
    // them all. A closed channel means that process is gone.
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    let procs = unsafe { &*std::ptr::addr_of!(nginx_sys::ngx_processes) };
    for (i, p) in procs.iter().enumerate() {
        let open = p.channel[0] != -1;
        // SAFETY: nginx's process globals are only touched by this worker's one thread
        if i as isize != unsafe { nginx_sys::ngx_process_slot } && p.pid > 0 && open && !list.contains(&p.pid)
        {
            list.push(p.pid);
        }
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_createtable(l, list.len() as i32, 0) };
    for (i, worker) in list.iter().enumerate() {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe {
            ffi::lua_pushinteger(l, *worker as _);
            ffi::lua_rawseti(l, -2, (i + 1) as _);
        }
    }
    Ok(1)
}

unsafe fn id_impl(l: *mut lua_State) -> LuaRet {
    match worker_ffi::ngx_http_lua_ffi_worker_id() {
        // SAFETY: `l` is the running state Lua called this API function with
        n if n < 0 => unsafe { ffi::lua_pushnil(l) },
        // SAFETY: `l` is the running state Lua called this API function with
        n => unsafe { ffi::lua_pushinteger(l, n as _) },
    }
    Ok(1)
}

unsafe fn count_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, worker_ffi::ngx_http_lua_ffi_worker_count() as _) };
    Ok(1)
}

unsafe fn exiting_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, worker_ffi::ngx_http_lua_ffi_worker_exiting()) };
    Ok(1)
}

unsafe fn prefix_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: ngx_cycle is the live current cycle
    unsafe { push_bytes(l, (*ngx_cycle).prefix.as_bytes()) };
    Ok(1)
}

unsafe fn configure_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, NGX_CONFIGURE.as_bytes()) };
    Ok(1)
}

/// The configure arguments of the nginx we were built for (Debian's flags).
const NGX_CONFIGURE: &str = env!("NGX_LUA_CONFIGURE");
