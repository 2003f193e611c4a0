//! ngx.log(level, ...) and the global print(...) (level notice).

use std::ffi::c_int;

use nginx_sys::{NGX_LOG_NOTICE, ngx_log_t};

use crate::glue::log as nlog;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, bad_arg, check_number, ffi, lua_State, set_fn, to_bytes, type_name};
use crate::runtime::ctx;

lua_fns! {
    log => log_impl,
    print => print_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"log", log) };
}

/// # Safety
/// `l` must be the main state.
pub unsafe fn install_print(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_pushcfunction(l, print);
        crate::lua::set_raw(l, ffi::LUA_GLOBALSINDEX, c"print");
    }
}

/// The running request's log, or the cycle's outside requests.
pub(crate) fn current_log() -> *mut ngx_log_t {
    match ctx::current() {
        // SAFETY: the current request is live while its code runs.
        Some(c) => unsafe { (*(*c.r).connection).log },
        None => nlog::outside_request_log(),
    }
}

/// Concatenates the arguments from `first` on, as lua-nginx-module does.
unsafe fn message(l: *mut lua_State, first: c_int, fname: &str) -> Result<Vec<u8>, String> {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    let mut out = Vec::new();
    for i in first..=n {
        // SAFETY: `l` is the running state Lua called this API function with
        match unsafe { ffi::lua_type(l, i) } {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { ffi::lua_pushvalue(l, i) };
                // SAFETY: `l` is the running state Lua called this API function with
                out.extend_from_slice(unsafe { to_bytes(l, -1) }.unwrap_or_default());
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { ffi::lua_pop(l, 1) };
            }
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            // SAFETY: `l` is the running state Lua called this API function with
            ffi::LUA_TBOOLEAN => out.extend_from_slice(if unsafe { ffi::lua_toboolean(l, i) } != 0 {
                b"true"
            } else {
                b"false"
            }),
            // SAFETY: `l` is the running state Lua called this API function with
            ffi::LUA_TLIGHTUSERDATA if unsafe { ffi::lua_touserdata(l, i) }.is_null() => {
                out.extend_from_slice(b"null")
            }
            // Other light userdata print nothing, as in lua-nginx-module.
            ffi::LUA_TLIGHTUSERDATA => {}
            // Arguments count from the message's first one (the level of
            // ngx.log is not counted), as lua-nginx-module numbers them.
            ffi::LUA_TTABLE => {
                // SAFETY: `l` is the running state Lua called this API function with
                if !unsafe { crate::lua::has_metamethod(l, i, c"__tostring") } {
                    return Err(bad_arg(
                        i - first + 1,
                        fname,
                        "expected table to have __tostring metamethod",
                    ));
                }
                // SAFETY: `l` is the running state Lua called this API function with
                (unsafe { crate::lua::to_display(l, i) })?;
                // SAFETY: `l` is the running state Lua called this API function with
                if unsafe { ffi::lua_isstring(l, -1) } == 0 {
                    // SAFETY: `l` is the running state Lua called this API function with
                    unsafe { ffi::lua_pop(l, 1) };
                    return Err("'__tostring' must return a string".into());
                }
                // SAFETY: `l` is the running state Lua called this API function with
                out.extend_from_slice(unsafe { to_bytes(l, -1) }.unwrap_or_default());
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { ffi::lua_pop(l, 1) };
            }
            _ => {
                return Err(bad_arg(
                    i - first + 1,
                    fname,
                    &format!(
                        "string, number, boolean, or nil expected, got {}",
                        // SAFETY: `l` is the running state Lua called this API function with
                        unsafe { type_name(l, i) }
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// `[lua] file:line: function(): ` as lua-nginx-module prefixes log lines.
unsafe fn source_prefix(l: *mut lua_State) -> Vec<u8> {
    // SAFETY: lua_Debug is plain C data, all-zero is a valid value
    let mut ar: ffi::lua_Debug = unsafe { std::mem::zeroed() };
    let mut out = b"[lua] ".to_vec();
    // SAFETY: `l` is the running state (callers' duty); `ar` is a live lua_Debug
    if unsafe { ffi::lua_getstack(l, 1, &mut ar) } != 0
        // SAFETY: lua_getstack filled `ar` for a live frame of `l`
        && unsafe { ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar) } != 0
    {
        // SAFETY: lua_getinfo filled short_src with a NUL-terminated string
        let src = unsafe { std::ffi::CStr::from_ptr(ar.short_src.as_ptr()) }.to_bytes();
        // The base name of a file path, as lua-nginx-module shows it.
        let base = src.rsplit(|&b| b == b'/' || b == b'\\').next().unwrap_or(src);
        out.extend_from_slice(base);
        // Into the Vec as it is: no String in between. Writing to a Vec cannot fail.
        let _ = std::io::Write::write_fmt(&mut out, format_args!(":{}: ", ar.currentline));
        if !ar.name.is_null() {
            // SAFETY: lua_getinfo set `name` (checked non-null) to a NUL-terminated string
            out.extend_from_slice(unsafe { std::ffi::CStr::from_ptr(ar.name) }.to_bytes());
            out.extend_from_slice(b"(): ");
        }
    }
    out
}

unsafe fn write(l: *mut lua_State, level: u32, first: c_int, fname: &str) -> LuaRet {
    let target = current_log();
    if !nlog::enabled(target, level) {
        return Ok(0);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let mut text = unsafe { source_prefix(l) };
    // SAFETY: `l` is the running state Lua called this API function with
    text.extend_from_slice(&unsafe { message(l, first, fname) }?);
    nlog::error(target, level, &text);
    Ok(0)
}

unsafe fn log_impl(l: *mut lua_State) -> LuaRet {
    // luaL_checkint's conversion: the level is an int, so 2^32 + 4 is 4.
    // SAFETY: `l` is the running state Lua called this API function with
    let level = crate::glue::cconv::lua_int(unsafe { check_number(l, 1, "log") }?);
    if !(0..=8).contains(&level) {
        return Err(crate::lua::bad_arg(1, "log", &format!("bad log level: {level}")));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { write(l, level as u32, 2, "log") }
}

unsafe fn print_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { write(l, NGX_LOG_NOTICE, 1, "print") }
}
