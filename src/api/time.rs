//! ngx.time, now, update_time, today, localtime, utctime, http_time,
//! cookie_time, parse_http_time: nginx's cached time and its own formatters,
//! so the text matches what nginx writes byte for byte.

use nginx_sys::{NGX_ERROR, ngx_http_cookie_time, ngx_http_time, ngx_parse_http_time, time_t};

use super::time_ffi;

use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, check_number, ffi, lua_State, push_bytes, set_fn};

lua_fns! {
    time => time_impl,
    now => now_impl,
    update_time => update_time_impl,
    today => today_impl,
    localtime => localtime_impl,
    utctime => utctime_impl,
    http_time => http_time_impl,
    cookie_time => cookie_time_impl,
    parse_http_time => parse_http_time_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"time", time);
        set_fn(l, -1, c"now", now);
        set_fn(l, -1, c"update_time", update_time);
        set_fn(l, -1, c"today", today);
        set_fn(l, -1, c"localtime", localtime);
        set_fn(l, -1, c"utctime", utctime);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"http_time", http_time);
        set_fn(l, -1, c"cookie_time", cookie_time);
        set_fn(l, -1, c"parse_http_time", parse_http_time);
    }
}

unsafe fn time_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushnumber(l, time_ffi::ngx_http_lua_ffi_time() as f64) };
    Ok(1)
}

unsafe fn now_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushnumber(l, time_ffi::ngx_http_lua_ffi_now()) };
    Ok(1)
}

unsafe fn update_time_impl(_l: *mut lua_State) -> LuaRet {
    time_ffi::ngx_http_lua_ffi_update_time();
    Ok(0)
}

/// Pushes what `write` puts in a `LEN`-byte buffer on the stack.
unsafe fn push_written<const LEN: usize>(l: *mut lua_State, write: unsafe extern "C" fn(*mut u8)) -> LuaRet {
    let mut buf = [0u8; LEN];
    // SAFETY: `buf` has the LEN bytes `write` fills; `l` is the running
    // state Lua called this API function with (caller's contract)
    unsafe {
        write(buf.as_mut_ptr());
        push_bytes(l, &buf);
    }
    Ok(1)
}

unsafe fn today_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_written::<10>(l, time_ffi::ngx_http_lua_ffi_today) }
}

unsafe fn localtime_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_written::<19>(l, time_ffi::ngx_http_lua_ffi_localtime) }
}

unsafe fn utctime_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_written::<19>(l, time_ffi::ngx_http_lua_ffi_utctime) }
}

unsafe fn one_arg(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err("expecting one argument".into());
    }
    Ok(())
}

unsafe fn format_with(
    l: *mut lua_State,
    fname: &str,
    f: unsafe extern "C" fn(*mut u8, time_t) -> *mut u8,
) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { one_arg(l) })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let sec = unsafe { check_number(l, 1, fname) }? as time_t;
    let mut buf = [0u8; 64];
    // SAFETY: `buf` has room for the longest date these functions write
    let end = unsafe { f(buf.as_mut_ptr(), sec) };
    // SAFETY: `end` points into `buf`, past the text just written
    let len = unsafe { end.offset_from(buf.as_ptr()) } as usize;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &buf[..len]) };
    Ok(1)
}

unsafe fn http_time_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { format_with(l, "http_time", ngx_http_time) }
}

unsafe fn cookie_time_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { format_with(l, "cookie_time", ngx_http_cookie_time) }
}

unsafe fn parse_http_time_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { one_arg(l) })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { check_bytes(l, 1, "parse_http_time") }?;
    // SAFETY: ngx_parse_http_time only reads the s.len() bytes of `s`
    let t = unsafe { ngx_parse_http_time(s.as_ptr() as *mut u8, s.len()) };
    if t == NGX_ERROR as time_t {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
    } else {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnumber(l, t as f64) };
    }
    Ok(1)
}
