//! ngx.req: get_method, set_method, http_version, is_internal, start_time,
//! raw_header. The `ngx.req` table itself is created here; the headers,
//! args and body areas add their functions to it.

use std::ffi::c_int;

use nginx_sys::{ngx_http_request_t, ngx_str_t};

use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, ffi, lua_State, push_bytes, set_fn};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    get_method => get_method_impl,
    set_method_fn => set_method_impl,
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
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, -1, c"req") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_istable(l, -1) } == 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 32);
            ffi::lua_pushvalue(l, -1);
            crate::lua::set_raw(l, -3, c"req");
        }
    }
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        push_req_table(l);
        set_fn(l, -1, c"get_method", get_method);
        set_fn(l, -1, c"set_method", set_method_fn);
        set_fn(l, -1, c"http_version", http_version);
        set_fn(l, -1, c"is_internal", is_internal);
        set_fn(l, -1, c"start_time", start_time);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"raw_header", raw_header);
        ffi::lua_pop(l, 1);
    }
}

/// Runs the Lua face (`lua/req.lua`) over the functions it replaces.
///
/// # Safety
/// `l` must be the main state, not running, with the `ngx` global set.
pub unsafe fn install_ffi_face(l: *mut lua_State) -> Result<(), String> {
    let [set_header, clear_header, get_headers] = super::req_headers::CLASSIC;
    let classic = [
        get_method,
        set_method_fn,
        http_version,
        is_internal,
        start_time,
        set_header,
        clear_header,
        get_headers,
        super::req_args::CLASSIC_GET_URI_ARGS,
    ];
    // SAFETY: the caller's contract
    unsafe { super::run_face(l, lua_source!("lua/req.lua"), c"=ngx.req", &classic, 0, 0) }
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

/// `method`'s number (nginx's method bit, as `ngx.HTTP_*`) when `name` is
/// that method's own name.
pub(crate) fn method_number(method: usize, name: &[u8]) -> Option<usize> {
    METHODS
        .iter()
        .find(|&&(bit, n)| bit == method && n.as_bytes() == name)
        .map(|&(bit, _)| bit)
}

unsafe fn get_method_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with; `r` is the live request of its context
    unsafe { push_bytes(l, (*r).method_name.as_bytes()) };
    Ok(1)
}

unsafe fn set_method_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err("expecting one argument".into());
    }
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TNUMBER {
        return Err("bad method number".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let m = unsafe { ffi::lua_tonumber(l, 1) } as i64;
    // SAFETY: `r` is the live request of the running context
    unsafe { set_method(r, m) }?;
    Ok(0)
}

/// Gives request `r` method `m` (one of the `ngx.HTTP_*` method numbers).
///
/// # Safety
/// `r` is a live request.
pub(crate) unsafe fn set_method(r: *mut ngx_http_request_t, m: i64) -> Result<(), String> {
    let Some(&(bit, name)) = METHODS.iter().find(|(b, _)| *b as i64 == m) else {
        return Err(format!("unsupported HTTP method: {m}"));
    };
    // SAFETY: `r` is a live request (caller's contract); the name is static
    unsafe {
        (*r).method = bit as _;
        (*r).method_name = ngx_str_t {
            len: name.len(),
            data: name.as_ptr() as *mut u8,
        };
    }
    Ok(())
}

unsafe fn http_version_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `r` is the live request of the running context
    match unsafe { (*r).http_version } {
        // SAFETY: `l` is the running state Lua called this API function with
        9 => unsafe { ffi::lua_pushnumber(l, 0.9) },
        // SAFETY: `l` is the running state Lua called this API function with
        1000 => unsafe { ffi::lua_pushnumber(l, 1.0) },
        // SAFETY: `l` is the running state Lua called this API function with
        1001 => unsafe { ffi::lua_pushnumber(l, 1.1) },
        // SAFETY: `l` is the running state Lua called this API function with
        2000 => unsafe { ffi::lua_pushnumber(l, 2.0) },
        // SAFETY: `l` is the running state Lua called this API function with
        3000 => unsafe { ffi::lua_pushnumber(l, 3.0) },
        // SAFETY: `l` is the running state Lua called this API function with
        _ => unsafe { ffi::lua_pushnil(l) },
    }
    Ok(1)
}

unsafe fn is_internal_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with; `r` is the live request of its context
    unsafe { ffi::lua_pushboolean(l, (*r).internal() as c_int) };
    Ok(1)
}

unsafe fn start_time_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with; `r` is the live request of its context
    unsafe { ffi::lua_pushnumber(l, (*r).start_sec as f64 + (*r).start_msec as f64 / 1000.0) };
    Ok(1)
}

/// `ngx.req.raw_header(no_request_line?)`
unsafe fn raw_header_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let no_request_line = unsafe { ffi::lua_gettop(l) } >= 1 && unsafe { ffi::lua_toboolean(l, 1) } != 0;
    // SAFETY: `r` is the live request of the running context
    let head = unsafe { super::req_raw_header::read(r, no_request_line) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &head) };
    Ok(1)
}
