//! ngx.req: get_method, set_method, http_version, is_internal, start_time,
//! raw_header. The `ngx.req` table itself is created here; the headers,
//! args and body areas add their functions to it.

use std::ffi::c_int;

use nginx_sys::{ngx_http_request_t, ngx_str_t};

use crate::lua::lua_fns;
use crate::lua::{ffi, lua_State, push_bytes, set_fn, LuaRet};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    get_method => get_method_impl,
    set_method => set_method_impl,
    http_version => http_version_impl,
    is_internal => is_internal_impl,
    start_time => start_time_impl,
    raw_header => raw_header_impl,
}

/// Pushes `ngx.req`, creating it if needed (`ngx` table on top of `l`).
///
/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn push_req_table(l: *mut lua_State) {
    crate::lua::get_raw(l, -1, c"req");
    if ffi::lua_istable(l, -1) == 0 {
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 32);
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, -3, c"req");
    }
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    push_req_table(l);
    set_fn(l, -1, c"get_method", get_method);
    set_fn(l, -1, c"set_method", set_method);
    set_fn(l, -1, c"http_version", http_version);
    set_fn(l, -1, c"is_internal", is_internal);
    set_fn(l, -1, c"start_time", start_time);
    set_fn(l, -1, c"raw_header", raw_header);
    ffi::lua_pop(l, 1);
}

/// The current request, in any phase that runs for one.
pub fn request() -> Result<*mut ngx_http_request_t, String> {
    context::check_request_data(context::ANY_REQUEST)?;
    Ok(ctx::request()?.r)
}

const METHODS: &[(usize, &str)] = &[
    (0x0002, "GET"),
    (0x0004, "HEAD"),
    (0x0008, "POST"),
    (0x0010, "PUT"),
    (0x0020, "DELETE"),
    (0x0040, "MKCOL"),
    (0x0080, "COPY"),
    (0x0100, "MOVE"),
    (0x0200, "OPTIONS"),
    (0x0400, "PROPFIND"),
    (0x0800, "PROPPATCH"),
    (0x1000, "LOCK"),
    (0x2000, "UNLOCK"),
    (0x4000, "PATCH"),
    (0x8000, "TRACE"),
];

unsafe fn get_method_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    push_bytes(l, (*r).method_name.as_bytes());
    Ok(1)
}

unsafe fn set_method_impl(l: *mut lua_State) -> LuaRet {
    if ffi::lua_gettop(l) != 1 {
        return Err("expecting one argument".into());
    }
    let r = request()?;
    if ffi::lua_type(l, 1) != ffi::LUA_TNUMBER {
        return Err("bad method number".into());
    }
    let m = ffi::lua_tonumber(l, 1) as i64;
    let Some(&(bit, name)) = METHODS.iter().find(|(b, _)| *b as i64 == m) else {
        return Err(format!("unsupported HTTP method: {m}"));
    };
    (*r).method = bit as _;
    (*r).method_name = ngx_str_t {
        len: name.len(),
        data: name.as_ptr() as *mut u8,
    };
    Ok(0)
}

unsafe fn http_version_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    match (*r).http_version {
        9 => ffi::lua_pushnumber(l, 0.9),
        1000 => ffi::lua_pushnumber(l, 1.0),
        1001 => ffi::lua_pushnumber(l, 1.1),
        2000 => ffi::lua_pushnumber(l, 2.0),
        3000 => ffi::lua_pushnumber(l, 3.0),
        _ => ffi::lua_pushnil(l),
    }
    Ok(1)
}

unsafe fn is_internal_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    ffi::lua_pushboolean(l, (*r).internal() as c_int);
    Ok(1)
}

unsafe fn start_time_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    ffi::lua_pushnumber(l, (*r).start_sec as f64 + (*r).start_msec as f64 / 1000.0);
    Ok(1)
}

/// `ngx.req.raw_header(no_request_line?)`
unsafe fn raw_header_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    let no_request_line = ffi::lua_gettop(l) >= 1 && ffi::lua_toboolean(l, 1) != 0;
    let head = super::req_raw_header::read(r, no_request_line)?;
    push_bytes(l, &head);
    Ok(1)
}
