//! ngx.req.get_uri_args, get_post_args, set_uri_args, set_uri.

use std::ffi::c_int;

use nginx_sys::ngx_http_request_t;

use super::query_args;
use super::req::{push_req_table, request};
use super::string::{add_arg, begin_args_table, max_arg};
use crate::glue::escape::{arg_count_hint, escape_args, escape_log, for_each_arg, unsafe_uri_byte};
use crate::glue::headers::pool_str;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, ffi, lua_State, push_bytes, set_fn, type_name};
use crate::runtime::context;
use crate::runtime::ctx;
use crate::runtime::scheduler::yield_wait;

lua_fns! {
    get_uri_args => get_uri_args_impl,
    get_post_args => get_post_args_impl,
    set_uri_args => set_uri_args_impl,
    set_uri => set_uri_impl,
}

/// The classic get_uri_args, for the Lua face (`lua/req.lua`).
pub(crate) const CLASSIC_GET_URI_ARGS: ffi::lua_CFunction = get_uri_args;

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        push_req_table(l);
        set_fn(l, -1, c"get_uri_args", get_uri_args);
        set_fn(l, -1, c"get_post_args", get_post_args);
        set_fn(l, -1, c"set_uri_args", set_uri_args);
        set_fn(l, -1, c"set_uri", set_uri);
        ffi::lua_pop(l, 1);
    }
}

/// Pushes the args table (the caller's table at argument 2, when given,
/// emptied first), and "truncated" when `max` cut it short.
unsafe fn push_parsed(l: *mut lua_State, r: *mut ngx_http_request_t, s: &[u8], max: usize) -> LuaRet {
    // A copy in the request pool, unescaped in place pair by pair (as
    // lua-nginx-module does): no heap allocation per call.
    // SAFETY: `r` is the live request of the running context (callers' duty)
    let copy = unsafe { pool_str((*r).pool, s) }.ok_or("no memory")?;
    // SAFETY: pool_str gave `copy.len` bytes of our own at `copy.data`
    let buf = unsafe { std::slice::from_raw_parts_mut(copy.data, copy.len) };
    // SAFETY: `l` is the running state (callers' duty)
    let reuse = (unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TTABLE).then_some(2);
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { begin_args_table(l, reuse, arg_count_hint(s, max)) };
    // SAFETY: `l` is the running state with the args table on top
    let truncated = for_each_arg(buf, max, |k, v| unsafe { add_arg(l, k, v) });
    // SAFETY: `l` is the running state (callers' duty)
    Ok(unsafe { push_truncated(l, truncated, max) })
}

/// The "truncated" second result when `max` cut the args short, with
/// lua-nginx-module's debug line; the number of extra results.
pub(super) unsafe fn push_truncated(l: *mut lua_State, truncated: bool, max: usize) -> c_int {
    if !truncated {
        return 1;
    }
    crate::glue::log::log_debug_http!(std::ptr::null_mut(), "lua hit query args limit {max}");
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { push_bytes(l, b"truncated") };
    2
}

unsafe fn get_uri_args_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } > 2 {
        return Err("expecting 0, 1 or 2 arguments".into());
    }
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let max = unsafe { max_arg(l, 1, "get_uri_args") }?;
    // SAFETY: `r` is the live request of the running context
    let args = unsafe { (*r).args.as_bytes() };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_parsed(l, r, args, max) }
}

unsafe fn get_post_args_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } > 2 {
        return Err("expecting 0, 1 or 2 arguments".into());
    }
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let max = unsafe { max_arg(l, 1, "get_post_args") }?;
    // SAFETY: `r` is the live request of the running context
    if unsafe { (*r).discard_body() } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_createtable(l, 0, 0) };
        return Ok(1);
    }
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { (*r).request_body };
    if rb.is_null() {
        return Err("no request body found; maybe you should turn on lua_need_request_body?".into());
    }
    // SAFETY: `rb` is the live, non-null body of the running request
    if !unsafe { (*rb).temp_file.is_null() } {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe {
            ffi::lua_pushnil(l);
            push_bytes(l, b"request body in temp file not supported");
        }
        return Ok(2);
    }
    // SAFETY: `rb` is the live body of the running request, not in a file
    let body = unsafe { super::req_body::memory_body(rb) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_parsed(l, r, &body, max) }
}

unsafe fn set_uri_args_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err("expecting 1 argument but seen ".to_string() + &unsafe { ffi::lua_gettop(l) }.to_string());
    }
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let args = match unsafe { ffi::lua_type(l, 1) } {
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TNUMBER => unsafe { check_bytes(l, 1, "set_uri_args") }?.to_vec(),
        // Escaped as lua-nginx-module does, so the query cannot split the
        // request line of a proxied request.
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TSTRING => escape_args(unsafe { check_bytes(l, 1, "set_uri_args") }?),
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TTABLE => unsafe { query_args::encode(l, 1, &query_args::ENCODE_ARGS) }?,
        _ => {
            return Err(format!(
                "bad argument #1 to 'set_uri_args' (string, number, or table expected, but got {})",
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { type_name(l, 1) }
            ));
        }
    };
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).args = pool_str((*r).pool, &args).ok_or("no memory")?;
        (*r).set_valid_unparsed_uri(0);
    }
    Ok(0)
}

unsafe fn set_uri_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=3).contains(&n) {
        return Err(format!("expecting 1, 2 or 3 arguments but seen {n}"));
    }
    // Any request code may change the URI (log_by_lua too: the access log
    // then shows it); only a jump needs the rewrite phase.
    context::check_request_data(context::REQUEST_ALL)?;
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let uri = unsafe { check_bytes(l, 1, "set_uri") }?.to_vec();
    if uri.is_empty() {
        return Err("attempt to use zero-length uri".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let jump = n >= 2 && unsafe { ffi::lua_toboolean(l, 2) } != 0;
    // SAFETY: `l` is the running state Lua called this API function with
    let binary = n >= 3 && unsafe { ffi::lua_toboolean(l, 3) } != 0;
    if !binary && let Some(c) = unsafe_uri_byte(&uri) {
        return Err(format!(
            "unsafe byte \"0x{c:02x}\" in uri \"{}\" (maybe you want to set the 'binary' argument?)",
            escape_log(&uri)
        ));
    }
    if jump {
        context::check(context::REWRITE | context::SERVER_REWRITE)?;
        // SAFETY: `r` is the live request of the running context
        let log = unsafe { (*(*r).connection).log };
        crate::glue::log::log_debug_http!(log, "lua set uri jump to \"{}\"", crate::glue::log::Lossy(&uri));
        crate::runtime::ctx::request()?.check_abortable()?;
    }
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).uri = pool_str((*r).pool, &uri).ok_or("no memory")?;
    }
    // As lua-nginx-module: an internal URI, which proxy_pass escapes
    // (ngx_escape_uri) before it goes into the upstream request line, so
    // a "binary" URI cannot split it.
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).set_internal(1);
        (*r).set_valid_unparsed_uri(0);
        nginx_sys::ngx_http_set_exten(r);
    }
    if !jump {
        // SAFETY: `r` is the live request of the running context
        unsafe {
            (*r).set_valid_location(0);
            (*r).set_uri_changed(0);
        }
        return Ok(0);
    }
    // Like `rewrite ... last`: nginx finds the location again once the
    // rewrite phase ends.
    // SAFETY: `r` is the live request of the running context
    unsafe { (*r).set_uri_changed(1) };
    ctx::request()?.exit_code = Some(nginx_sys::NGX_OK as _);
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}
