//! lua-resty-core's modules (`resty.core`, `resty.core.*`, `ngx.req`,
//! `ngx.process`, `ngx.errlog`) over our built-in API, so that libraries
//! written for OpenResty find every function they call. The modules are
//! Lua (`lua/resty_core.lua`); the few facts Lua cannot get by itself come
//! from the small functions below, handed to that chunk at VM creation.

use nginx_sys::{
    NGX_LOG_DEBUG, NGX_LOG_DEBUG_ALL, NGX_LOG_STDERR, NGX_PROCESS_MASTER, NGX_PROCESS_SINGLE,
    ngx_core_conf_t, ngx_core_module, ngx_cycle, ngx_log_t, ngx_parent, ngx_pid, ngx_process, ngx_quit,
    ngx_uint_t,
};

use super::req_headers::values_arg;
use crate::glue::escape::escape_header_name;
use crate::glue::headers_in;
use crate::glue::log as nlog;
use crate::glue::log_ring::LogRing;
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, check_bytes, ffi, lua_State, push_bytes, set_fn};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    get_request => get_request_impl,
    has_ctx => has_ctx_impl,
    req_add_header => req_add_header_impl,
    process_type => process_type_impl,
    master_pid => master_pid_impl,
    graceful_exit => graceful_exit_impl,
    sys_filter_level => sys_filter_level_impl,
    raw_log => raw_log_impl,
    errlog_set_filter => errlog_set_filter_impl,
    errlog_get_msg => errlog_get_msg_impl,
    regex_cache_empty => regex_cache_empty_impl,
    conf_env => conf_env_impl,
}

/// Runs `lua/resty_core.lua` with a table of the helpers above: it fills
/// `package.preload` (and `package.loaded.ngx`, `.ndk`).
///
/// # Safety
/// `l` must be the main state, not running, with the `ngx` and `ndk`
/// globals installed.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    let code = lua_source!("lua/resty_core.lua");
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), c"=resty.core".as_ptr()) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 12);
        set_fn(l, -1, c"get_request", get_request);
        set_fn(l, -1, c"has_ctx", has_ctx);
        set_fn(l, -1, c"req_add_header", req_add_header);
        set_fn(l, -1, c"process_type", process_type);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"master_pid", master_pid);
        set_fn(l, -1, c"graceful_exit", graceful_exit);
        set_fn(l, -1, c"sys_filter_level", sys_filter_level);
        set_fn(l, -1, c"raw_log", raw_log);
        set_fn(l, -1, c"errlog_set_filter", errlog_set_filter);
        set_fn(l, -1, c"errlog_get_msg", errlog_get_msg);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"regex_cache_empty", regex_cache_empty);
        set_fn(l, -1, c"conf_env", conf_env);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_pcall(l, 1, 0, 0) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    Ok(())
}

/// `resty.core.base.get_request()`: the running request (a light userdata:
/// nothing of ours takes lua-resty-core's `ngx_http_request_t*` cdata) or,
/// outside requests, no value at all, as lua-resty-core's. Timers run on a
/// fake request, so they have one, as in lua-nginx-module.
unsafe fn get_request_impl(l: *mut lua_State) -> LuaRet {
    match ctx::current() {
        Some(c) if !c.r.is_null() => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushlightuserdata(l, c.r.cast()) };
            Ok(1)
        }
        _ => Ok(0),
    }
}

/// Whether the running request already has its `ngx.ctx` table
/// (`get_ctx_table(t)` adopts `t` only when it has not).
unsafe fn has_ctx_impl(l: *mut lua_State) -> LuaRet {
    let c = ctx::request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, (c.ctx_ref != ffi::LUA_NOREF) as _) };
    Ok(1)
}

/// The value an `env NAME=value;` directive gives `name` (nothing for a
/// name it does not set): what `os.getenv` reads in init_by_lua, before
/// nginx has put those values in the environment of its workers.
unsafe fn conf_env_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let name = unsafe { check_bytes(l, 1, "getenv") }?;
    // SAFETY: ngx_cycle is the cycle being configured in init_by_lua (set
    // by phase::init) or the running one; a core module's slot holds its
    // conf itself (ngx_get_conf), whose `env` is an array of ngx_str_t
    // that lives as long as the cycle.
    let vars: &[nginx_sys::ngx_str_t] = unsafe {
        let conf = (*ngx_cycle).conf_ctx;
        let ccf = if conf.is_null() {
            std::ptr::null()
        } else {
            *conf.add(ngx_core_module.index) as *const ngx_core_conf_t
        };
        if ccf.is_null() || (*ccf).env.nelts == 0 {
            return Ok(0);
        }
        std::slice::from_raw_parts((*ccf).env.elts as *const nginx_sys::ngx_str_t, (*ccf).env.nelts)
    };
    // nginx keeps `env NAME=value;` as the directive's NUL-terminated
    // argument with the length of NAME alone: the value follows the '='.
    for var in vars {
        if var.as_bytes() != name {
            continue;
        }
        // SAFETY: a configuration token is NUL-terminated, so the byte
        // after NAME exists; after a '=' comes the value and its NUL.
        let value = unsafe {
            if *var.data.add(var.len) != b'=' {
                return Ok(0);
            }
            std::ffi::CStr::from_ptr(var.data.add(var.len + 1).cast())
        };
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { push_bytes(l, value.to_bytes()) };
        return Ok(1);
    }
    Ok(0)
}

/// `require("ngx.req").add_header(name, value)`: adds request headers
/// without removing those of that name (argument checks are in Lua).
unsafe fn req_add_header_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(context::REQUEST_NO_LOG)?;
    let r = super::req::request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let name = escape_header_name(unsafe { check_bytes(l, 1, "add_header") }?);
    // lua-nginx-module takes an empty name without complaint; we add
    // nothing rather than a header line without a name.
    if name.is_empty() {
        return Ok(0);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let values = unsafe { values_arg(l, 2, "add_header") }?;
    // SAFETY: `r` is the live request of the running context
    (unsafe { headers_in::add(r, &name, &values) }).ok_or("no memory")?;
    Ok(0)
}

/// nginx's process type number (`ngx.process.type()` names it): the
/// single process of a configuration with a master is reported as the
/// master, as lua-nginx-module does (init_by_lua runs there).
unsafe fn process_type_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, current_process_type() as _) };
    Ok(1)
}

/// nginx's process type, "master" for init_by_lua under a master (nginx
/// still says "single" while it reads the configuration), as
/// lua-nginx-module's `ngx_http_lua_ffi_get_process_type`.
pub fn current_process_type() -> ngx_uint_t {
    // SAFETY: nginx's globals, set before any module code runs; a core
    // module's slot holds its conf itself (ngx_get_conf).
    unsafe {
        let mut t = ngx_process;
        if t == NGX_PROCESS_SINGLE as ngx_uint_t {
            let conf = (*ngx_cycle).conf_ctx;
            let ccf = if conf.is_null() {
                std::ptr::null()
            } else {
                *conf.add(ngx_core_module.index) as *const ngx_core_conf_t
            };
            if !ccf.is_null() && (*ccf).master != 0 {
                t = NGX_PROCESS_MASTER as ngx_uint_t;
            }
        }
        t
    }
}

/// The master's pid: our own in the master or a single process, the
/// parent nginx recorded at startup in a worker.
unsafe fn master_pid_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    let pid = if unsafe { ngx_process } == NGX_PROCESS_SINGLE as ngx_uint_t
        // SAFETY: nginx's process globals are only touched by this worker's one thread
        || unsafe { ngx_process } == NGX_PROCESS_MASTER as ngx_uint_t
    {
        // SAFETY: nginx's process globals are only touched by this worker's one thread
        unsafe { ngx_pid }
    } else {
        // SAFETY: nginx's process globals are only touched by this worker's one thread
        unsafe { ngx_parent }
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, pid as _) };
    Ok(1)
}

/// `ngx.process.signal_graceful_exit()`: this process leaves as on SIGQUIT
/// once the running handler returns (a worker is then replaced by the
/// master), as lua-nginx-module does.
unsafe fn graceful_exit_impl(_l: *mut lua_State) -> LuaRet {
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    unsafe { ngx_quit = 1 };
    Ok(0)
}

/// The log of the running request, else the cycle's.
fn current_log() -> *mut ngx_log_t {
    match ctx::current() {
        // SAFETY: the current request and its connection are live while
        // its Lua code runs.
        Some(c) if !c.r.is_null() => unsafe { (*(*c.r).connection).log },
        _ => nlog::cycle_log(),
    }
}

/// `errlog.get_sys_filter_level()`: the level of the error log in effect.
unsafe fn sys_filter_level_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: current_log gives the running request's or the cycle's live log
    let mut level = unsafe { (*current_log()).log_level };
    if level == NGX_LOG_DEBUG_ALL as ngx_uint_t {
        level = NGX_LOG_DEBUG as ngx_uint_t;
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, level as _) };
    Ok(1)
}

/// `errlog.raw_log(level, msg)`: `msg` as it is, without the Lua source
/// position `ngx.log` adds; false for a level out of range.
unsafe fn raw_log_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let level = unsafe { ffi::lua_tonumber(l, 1) };
    if !(NGX_LOG_STDERR as f64..=NGX_LOG_DEBUG as f64).contains(&level) {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushboolean(l, 0) };
        return Ok(1);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let msg = unsafe { check_bytes(l, 2, "raw_log") }?;
    nlog::error(current_log(), level as u32, msg);
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

/// The running cycle's `lua_capture_error_log` buffer, or the error
/// lua-nginx-module gives without the directive.
unsafe fn capture_ring<'a>() -> Result<&'a mut LogRing, &'static str> {
    // SAFETY: ngx_cycle is the live current cycle
    match unsafe { crate::conf::main_conf_cycle(ngx_cycle) }.and_then(|m| m.capture_log) {
        // SAFETY: the ring lives in the cycle's pool; only this thread uses it.
        Some(ring) => Ok(unsafe { &mut *ring.as_ptr() }),
        None => Err("directive \"lua_capture_error_log\" is not set"),
    }
}

/// `errlog.set_filter_level(level)`: true, or nil and the error.
unsafe fn errlog_set_filter_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let level = unsafe { ffi::lua_tonumber(l, 1) } as i64;
    // SAFETY: runs in a worker, where ngx_cycle is the live cycle
    let err = match unsafe { capture_ring() } {
        Ok(_) if !(NGX_LOG_STDERR as i64..=NGX_LOG_DEBUG as i64).contains(&level) => {
            format!("bad log level: {level}")
        }
        Ok(ring) => {
            ring.filter_level = level as usize;
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushboolean(l, 1) };
            return Ok(1);
        }
        Err(e) => e.to_string(),
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe {
        ffi::lua_pushnil(l);
        push_bytes(l, err.as_bytes());
    }
    Ok(2)
}

/// The oldest captured line as level, time, text; nothing when none is
/// left; false and the error without the directive.
unsafe fn errlog_get_msg_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: runs in a worker, where ngx_cycle is the live cycle
    match unsafe { capture_ring() } {
        Ok(ring) => match ring.read() {
            Some((level, time, text)) => {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe {
                    ffi::lua_pushinteger(l, level as _);
                    ffi::lua_pushnumber(l, time);
                    push_bytes(l, text);
                }
                Ok(3)
            }
            None => Ok(0),
        },
        Err(e) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe {
                ffi::lua_pushboolean(l, 0);
                push_bytes(l, e.as_bytes());
            }
            Ok(2)
        }
    }
}

/// Whether no `o` regex was cached in this worker yet.
unsafe fn regex_cache_empty_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, (crate::runtime::regex_cache::len() == 0) as _) };
    Ok(1)
}
