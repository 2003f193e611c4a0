//! The `ngx` table's own properties: ngx.status, ngx.ctx, ngx.headers_sent,
//! ngx.is_subrequest.

use nginx_sys::NGX_LOG_ERR;

use crate::glue::log as nlog;
use crate::lua::lua_fns;
use crate::lua::{bad_arg, check_number, ffi, lua_State, to_bytes, LuaRet};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    ngx_index => index_impl,
    ngx_newindex => newindex_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    ffi::lua_createtable(l, 0, 2);
    ffi::lua_pushcfunction(l, ngx_index);
    crate::lua::set_raw(l, -2, c"__index");
    ffi::lua_pushcfunction(l, ngx_newindex);
    crate::lua::set_raw(l, -2, c"__newindex");
    ffi::lua_setmetatable(l, -2);
}

/// The key at 2 when it is a string (a number must stay a number: `ngx[1]`
/// is not `ngx["1"]`).
unsafe fn string_key<'a>(l: *mut lua_State) -> &'a [u8] {
    if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
        to_bytes(l, 2).unwrap_or_default()
    } else {
        b""
    }
}

fn request_phase() -> Result<(), String> {
    context::check_request_data(context::ANY_REQUEST).map(|_| ())
}

unsafe fn index_impl(l: *mut lua_State) -> LuaRet {
    let key = string_key(l);
    match key {
        b"status" => {
            request_phase()?;
            let r = ctx::request()?.r;
            // As lua-nginx-module reads it: an error page's status first,
            // and 9 for an HTTP/0.9 request that set none.
            let st = if (*r).err_status != 0 {
                (*r).err_status
            } else if (*r).headers_out.status != 0 {
                (*r).headers_out.status as _
            } else if (*r).http_version == nginx_sys::NGX_HTTP_VERSION_9 as _ {
                9
            } else {
                0
            };
            ffi::lua_pushinteger(l, st as _);
        }
        b"ctx" => push_ctx(l)?,
        b"headers_sent" => {
            request_phase()?;
            ffi::lua_pushboolean(l, ctx::request()?.header_sent() as _);
        }
        b"is_subrequest" => {
            request_phase()?;
            let r = ctx::request()?.r;
            ffi::lua_pushboolean(l, ((*r).main != r) as _);
        }
        _ => ffi::lua_pushnil(l),
    }
    Ok(1)
}

/// Registry key of init_worker_by_lua's `ngx.ctx` table.
static INIT_WORKER_CTX: u8 = 0;

/// ngx.ctx: one table per request (and per timer run, as in
/// lua-nginx-module), created on first use. init_worker_by_lua code has
/// one too (lua-nginx-module runs it on a fake request); it is kept for
/// the worker's life, a single small table.
unsafe fn push_ctx(l: *mut lua_State) -> Result<(), String> {
    match context::current() {
        c if c.is(context::ON_FAKE_REQUEST) => {}
        context::INIT_WORKER => {
            let key = &INIT_WORKER_CTX as *const u8 as *mut std::ffi::c_void;
            ffi::lua_pushlightuserdata(l, key);
            ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
            if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
                ffi::lua_pop(l, 1);
                ffi::lua_createtable(l, 0, 4);
                ffi::lua_pushlightuserdata(l, key);
                ffi::lua_pushvalue(l, -2);
                ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
            }
            return Ok(());
        }
        _ => request_phase()?,
    }
    let c = ctx::request()?;
    if c.ctx_ref == ffi::LUA_NOREF {
        ffi::lua_createtable(l, 0, 4);
        ffi::lua_pushvalue(l, -1);
        c.ctx_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
    } else {
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, c.ctx_ref as _);
    }
    Ok(())
}

/// An ngx_str_t over static bytes (nginx only reads a status line).
fn ngx_string_static(s: &'static [u8]) -> nginx_sys::ngx_str_t {
    nginx_sys::ngx_str_t {
        len: s.len(),
        data: s.as_ptr().cast_mut(),
    }
}

unsafe fn newindex_impl(l: *mut lua_State) -> LuaRet {
    let key = string_key(l);
    match key {
        b"status" => {
            context::check_request_data(context::REQUEST_ALL)?;
            let r = ctx::request()?.r;
            let status = check_number(l, 3, "status")? as i64;
            if (*r).header_sent() != 0 {
                let msg = "attempt to set ngx.status after sending out response headers".to_string();
                nlog::error((*(*r).connection).log, NGX_LOG_ERR, msg.as_bytes());
                return Ok(0);
            }
            if !(100..=999).contains(&status) {
                return Err(format!("invalid HTTP status code {status}"));
            }
            (*r).headers_out.status = status as _;
            (*r).err_status = 0;
            // nginx has no status line of its own for 101.
            (*r).headers_out.status_line = if status == 101 {
                ngx_string_static(b"101 Switching Protocols")
            } else {
                nginx_sys::ngx_str_t::empty()
            };
        }
        b"ctx" => {
            request_phase()?;
            let c = ctx::request()?;
            if ffi::lua_type(l, 3) != ffi::LUA_TTABLE {
                return Err(
                    "ctx should be a table while getting a ".to_string() + &crate::lua::type_name(l, 3)
                );
            }
            if c.ctx_ref != ffi::LUA_NOREF {
                ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, c.ctx_ref);
            }
            ffi::lua_pushvalue(l, 3);
            c.ctx_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        }
        _ => {
            // lua_rawset would raise (nil or NaN key) or write through a
            // non-table: refuse as Lua itself does for `t[nil] = v`.
            if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
                return Err(bad_arg(1, "__newindex", "table expected"));
            }
            match ffi::lua_type(l, 2) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => return Err("table index is nil".into()),
                ffi::LUA_TNUMBER if ffi::lua_tonumber(l, 2).is_nan() => {
                    return Err("table index is NaN".into())
                }
                _ => {}
            }
            ffi::lua_settop(l, 3);
            ffi::lua_rawset(l, 1);
        }
    }
    Ok(0)
}
