//! ngx.header.NAME (read, write, delete), ngx.resp.get_headers and the
//! `ngx.resp` module's add_header.

use std::borrow::Cow;

use nginx_sys::{ngx_http_request_t, NGX_LOG_ERR};

use super::req::request;
use super::req_headers::{push_limited, values_arg};
use crate::conf::loc_conf;
use crate::glue::escape::escape_header_name;
use crate::glue::headers_out::{self, SetError};
use crate::glue::log as nlog;
use crate::lua::lua_fns;
use crate::lua::{check_bytes, ffi, lua_State, push_bytes, set_fn, to_bytes, LuaRet};
use crate::runtime::context::{self, Context};

lua_fns! {
    header_index => header_index_impl,
    header_newindex => header_newindex_impl,
    get_headers => get_headers_impl,
    add_header => add_header_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l` (main state, not running).
pub unsafe fn install(l: *mut lua_State) {
    ffi::lua_createtable(l, 0, 0);
    ffi::lua_createtable(l, 0, 2);
    ffi::lua_pushcfunction(l, header_index);
    crate::lua::set_raw(l, -2, c"__index");
    ffi::lua_pushcfunction(l, header_newindex);
    crate::lua::set_raw(l, -2, c"__newindex");
    ffi::lua_setmetatable(l, -2);
    crate::lua::set_raw(l, -2, c"header");

    crate::lua::get_raw(l, -1, c"resp");
    if ffi::lua_istable(l, -1) == 0 {
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, -3, c"resp");
    }
    set_fn(l, -1, c"get_headers", get_headers);
    ffi::lua_pop(l, 1);

    // require "ngx.resp"
    crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
    crate::lua::get_raw(l, -1, c"loaded");
    ffi::lua_createtable(l, 0, 2);
    set_fn(l, -1, c"add_header", add_header);
    push_bytes(l, b"0.1.2");
    crate::lua::set_raw(l, -2, c"version");
    crate::lua::set_raw(l, -2, c"ngx.resp");
    ffi::lua_pop(l, 2);
}

/// The header name a Lua key stands for: `_` becomes `-` unless
/// lua_transform_underscores_in_response_headers is off; unsafe bytes are
/// %-escaped so a name cannot inject a header.
unsafe fn header_name(r: *mut ngx_http_request_t, key: &[u8]) -> Cow<'_, [u8]> {
    let transform = loc_conf(r).transform_underscores.unwrap_or(true);
    if transform && key.contains(&b'_') {
        let name: Vec<u8> = key.iter().map(|&c| if c == b'_' { b'-' } else { c }).collect();
        return Cow::Owned(escape_header_name(&name).into_owned());
    }
    escape_header_name(key)
}

unsafe fn header_index_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    let Some(key) = to_bytes(l, 2) else {
        ffi::lua_pushnil(l);
        return Ok(1);
    };
    let name = header_name(r, key);
    let values = headers_out::get(r, &name);
    match values.len() {
        0 => ffi::lua_pushnil(l),
        1 => push_bytes(l, &values[0]),
        n => {
            ffi::lua_createtable(l, n as _, 0);
            for (i, v) in values.iter().enumerate() {
                push_bytes(l, v);
                ffi::lua_rawseti(l, -2, (i + 1) as _);
            }
        }
    }
    Ok(1)
}

const SET_PHASES: Context = context::REQUEST_ALL;

/// Sets or adds a response header from Lua; after the header is sent this
/// only logs, as lua-nginx-module does.
unsafe fn change(l: *mut lua_State, key: &[u8], vidx: i32, fname: &str, replace: bool) -> LuaRet {
    context::check_request_data(SET_PHASES)?;
    let r = request()?;
    let values = values_arg(l, vidx, fname)?;
    let lua_sent = crate::runtime::ctx::request().is_ok_and(|c| c.header_sent);
    if (*r).header_sent() != 0 || lua_sent {
        nlog::error(
            (*(*r).connection).log,
            NGX_LOG_ERR,
            b"attempt to set ngx.header.HEADER after sending out response headers",
        );
        return Ok(0);
    }
    let name = header_name(r, key);
    if name.is_empty() {
        return Err("invalid header name".into());
    }
    if name.eq_ignore_ascii_case(b"content-type") {
        if let Ok(ctx) = crate::runtime::ctx::request() {
            ctx.mime_set = true;
        }
    }
    match headers_out::set(r, &name, &values, replace) {
        Ok(()) => Ok(0),
        Err(SetError::NoMemory) => Err("no memory".into()),
        Err(SetError::Invalid(m)) => Err(m.into()),
    }
}

unsafe fn header_newindex_impl(l: *mut lua_State) -> LuaRet {
    let key = check_bytes(l, 2, "newindex")?;
    change(l, key, 3, "newindex", true)
}

unsafe fn add_header_impl(l: *mut lua_State) -> LuaRet {
    if ffi::lua_gettop(l) != 2 {
        return Err(format!("expecting 2 arguments, but got {}", ffi::lua_gettop(l)));
    }
    let key = check_bytes(l, 1, "add_header")?;
    if ffi::lua_isnil(l, 2) != 0 {
        return Err("invalid header value".into());
    }
    change(l, key, 2, "add_header", false)
}

unsafe fn get_headers_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    let max = super::string::max_arg(l, 1, "get_headers")?;
    let raw = ffi::lua_toboolean(l, 2) != 0;
    let all = headers_out::all(r);
    if max > 0 && all.len() > max {
        let (n, log) = (all.len(), (*(*r).connection).log);
        crate::glue::log::debug_http(log, || format!("lua exceeding response header limit {n} > {max}"));
    }
    Ok(push_limited(l, &all, max, raw))
}
