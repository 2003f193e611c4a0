//! ngx.header.NAME (read, write, delete), ngx.resp.get_headers and the
//! `ngx.resp` module's add_header.

use std::borrow::Cow;

use smallvec::SmallVec;

use nginx_sys::{NGX_LOG_ERR, ngx_http_request_t};

use super::req::request;
use super::req_headers::{push_limited, values_arg};
use crate::conf::loc_conf;
use crate::glue::escape::escape_header_name;
use crate::glue::headers_out::{self, SetError};
use crate::glue::log as nlog;
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, check_bytes, ffi, lua_State, push_bytes, set_fn, to_bytes};
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
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushcfunction(l, header_index);
        crate::lua::set_raw(l, -2, c"__index");
        ffi::lua_pushcfunction(l, header_newindex);
        crate::lua::set_raw(l, -2, c"__newindex");
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_setmetatable(l, -2);
        crate::lua::set_raw(l, -2, c"header");
    }

    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, -1, c"resp") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_istable(l, -1) } == 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushvalue(l, -1);
            crate::lua::set_raw(l, -3, c"resp");
        }
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"get_headers", get_headers);
        ffi::lua_pop(l, 1);
    }

    // require "ngx.resp"
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
        crate::lua::get_raw(l, -1, c"loaded");
        ffi::lua_createtable(l, 0, 2);
        set_fn(l, -1, c"add_header", add_header);
        push_bytes(l, b"0.1.2");
        crate::lua::set_raw(l, -2, c"version");
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::set_raw(l, -2, c"ngx.resp");
        ffi::lua_pop(l, 2);
    }
}

/// Runs the Lua face (`lua/resp_headers.lua`), which replaces both
/// metamethods of `ngx.header` and keeps the classic functions as its
/// fallback.
///
/// # Safety
/// `l` must be the main state, not running, with the `ngx` global set.
pub unsafe fn install_ffi_face(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: the caller's contract
    unsafe {
        super::run_face(
            l,
            lua_source!("lua/resp_headers.lua"),
            c"=ngx.header",
            &[header_index, header_newindex],
            0,
            0,
        )
    }
}

/// The header name a Lua key stands for: `_` becomes `-` unless
/// lua_transform_underscores_in_response_headers is off; unsafe bytes are
/// %-escaped so a name cannot inject a header.
pub(crate) unsafe fn header_name(r: *mut ngx_http_request_t, key: &[u8]) -> SmallVec<[u8; 64]> {
    // SAFETY: `r` is a live request (callers' duty)
    let transform = unsafe { loc_conf(r) }.transform_underscores.unwrap_or(true);
    // On the stack, `content_length` and the like included: escaping never
    // makes nor removes a `_`, so the two steps commute.
    let mut name: SmallVec<[u8; 64]> = match escape_header_name(key) {
        Cow::Borrowed(b) => SmallVec::from_slice(b),
        Cow::Owned(v) => SmallVec::from_vec(v),
    };
    if transform {
        for c in name.iter_mut().filter(|c| **c == b'_') {
            *c = b'-';
        }
    }
    name
}

unsafe fn header_index_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(key) = (unsafe { to_bytes(l, 2) }) else {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    };
    // SAFETY: `r` is the live request of the running context
    let name = unsafe { header_name(r, key) };
    // SAFETY: `r` is the live request of the running context
    let values = unsafe { headers_out::get(r, &name) };
    match values.len() {
        // SAFETY: `l` is the running state Lua called this API function with
        0 => unsafe { ffi::lua_pushnil(l) },
        // SAFETY: `l` is the running state Lua called this API function with
        1 => unsafe { push_bytes(l, &values[0]) },
        n => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_createtable(l, n as _, 0) };
            for (i, v) in values.iter().enumerate() {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe {
                    push_bytes(l, v);
                    ffi::lua_rawseti(l, -2, (i + 1) as _);
                }
            }
        }
    }
    Ok(1)
}

pub(crate) const SET_PHASES: Context = context::REQUEST_ALL;

/// Sets or adds a response header from Lua; after the header is sent this
/// only logs, as lua-nginx-module does.
unsafe fn change(l: *mut lua_State, key: &[u8], vidx: i32, fname: &str, replace: bool) -> LuaRet {
    context::check_request_data(SET_PHASES)?;
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let values = unsafe { values_arg(l, vidx, fname) }?;
    // SAFETY: `r` is the live request of the running context
    unsafe { apply(r, key, &values, replace) }?;
    Ok(0)
}

/// Sets (`replace`) or adds response header `key` (a Lua key: see
/// `header_name`) to `values`, already escaped; after the header is sent
/// this only logs, as lua-nginx-module does.
///
/// # Safety
/// `r` is the live request of the running context, whose code may set
/// response headers.
pub(crate) unsafe fn apply(
    r: *mut ngx_http_request_t,
    key: &[u8],
    values: &[Cow<[u8]>],
    replace: bool,
) -> Result<(), String> {
    let lua_sent = crate::runtime::ctx::request().is_ok_and(|c| c.header_sent);
    // SAFETY: `r` is a live request (caller's contract)
    if unsafe { (*r).header_sent() } != 0 || lua_sent {
        nlog::error(
            // SAFETY: `r` is a live request (caller's contract)
            unsafe { (*(*r).connection).log },
            NGX_LOG_ERR,
            b"attempt to set ngx.header.HEADER after sending out response headers",
        );
        return Ok(());
    }
    // SAFETY: `r` is a live request (caller's contract)
    let name = unsafe { header_name(r, key) };
    if name.is_empty() {
        return Err("invalid header name".into());
    }
    if name.eq_ignore_ascii_case(b"content-type")
        && let Ok(ctx) = crate::runtime::ctx::request()
    {
        ctx.mime_set = true;
    }
    // SAFETY: `r` is a live request (caller's contract)
    match unsafe { headers_out::set(r, &name, values, replace) } {
        Ok(()) => Ok(()),
        Err(SetError::NoMemory) => Err("no memory".into()),
        Err(SetError::Invalid(m)) => Err(m.into()),
    }
}

unsafe fn header_newindex_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let key = unsafe { check_bytes(l, 2, "newindex") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { change(l, key, 3, "newindex", true) }
}

unsafe fn add_header_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 2 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(format!("expecting 2 arguments, but got {}", unsafe {
            ffi::lua_gettop(l)
        }));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let key = unsafe { check_bytes(l, 1, "add_header") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_isnil(l, 2) } != 0 {
        return Err("invalid header value".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { change(l, key, 2, "add_header", false) }
}

unsafe fn get_headers_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let max = unsafe { super::string::max_arg(l, 1, "get_headers") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let raw = unsafe { ffi::lua_toboolean(l, 2) } != 0;
    // SAFETY: `r` is the live request of the running context
    let all = unsafe { headers_out::all(r) };
    if max > 0 && all.len() > max {
        // SAFETY: `r` is the live request of the running context
        let (n, log) = (all.len(), unsafe { (*(*r).connection).log });
        crate::glue::log::log_debug_http!(log, "lua exceeding response header limit {n} > {max}");
    }
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { push_limited(l, &all, max, raw) })
}
