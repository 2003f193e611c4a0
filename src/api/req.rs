//! ngx.req: get_method, set_method, http_version, is_internal, start_time,
//! raw_header. The `ngx.req` table itself is created here; the headers,
//! args and body areas add their functions to it.

use std::ffi::c_int;

use nginx_sys::{ngx_http_request_t, ngx_str_t};

use crate::glue::headers::elts;
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

/// The request head as the client sent it when it is still contiguous in
/// the connection's header buffer, else rebuilt from the request line and
/// the header list.
unsafe fn raw_header_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    let no_request_line = ffi::lua_gettop(l) >= 1 && ffi::lua_toboolean(l, 1) != 0;
    if (*r).main != r {
        return Err("raw_header is not supported in subrequests".into());
    }
    let mut out = raw_bytes(r).unwrap_or_else(|| rebuilt(r));
    if no_request_line {
        if let Some(i) = out.windows(2).position(|w| w == b"\r\n") {
            out.drain(..i + 2);
        } else if let Some(i) = out.iter().position(|&c| c == b'\n') {
            out.drain(..i + 1);
        }
    }
    push_bytes(l, &out);
    Ok(1)
}

unsafe fn raw_bytes(r: *mut ngx_http_request_t) -> Option<Vec<u8>> {
    let b = (*r).header_in;
    let (start, end) = ((*r).request_start, (*r).header_end);
    if b.is_null() || start.is_null() || end.is_null() {
        return None;
    }
    if start < (*b).start || end > (*b).last || end < start {
        return None;
    }
    let mut p = end;
    // header_end marks the blank line; take its line ending too.
    for _ in 0..2 {
        if p < (*b).last && (*p == b'\r' || *p == b'\n') {
            let c = *p;
            p = p.add(1);
            if c == b'\n' {
                break;
            }
        }
    }
    let mut v = std::slice::from_raw_parts(start, p.offset_from(start) as usize).to_vec();
    // nginx NUL-terminated each key (over the ':') and value (over the
    // space, CR or LF after it) in place; put the client's bytes back.
    for h in elts(&mut (*r).headers_in.headers) {
        let key_end = (*h).key.data.add((*h).key.len);
        let value_end = (*h).value.data.add((*h).value.len);
        for (at, is_key) in [(key_end, true), (value_end, false)] {
            if at < start || at >= p {
                continue;
            }
            let i = at.offset_from(start) as usize;
            if v[i] != 0 {
                continue;
            }
            v[i] = match (is_key, v.get(i + 1)) {
                (true, _) => b':',
                (false, Some(b'\n')) => b'\r',
                (false, Some(b'\r' | b' ' | b'\t')) => b' ',
                (false, _) => b'\n',
            };
        }
    }
    Some(v)
}

unsafe fn rebuilt(r: *mut ngx_http_request_t) -> Vec<u8> {
    let mut out = (*r).request_line.as_bytes().to_vec();
    out.extend_from_slice(b"\r\n");
    for h in elts(&mut (*r).headers_in.headers) {
        out.extend_from_slice((*h).key.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice((*h).value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
