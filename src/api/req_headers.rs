//! ngx.req.get_headers, set_header, clear_header.

use std::borrow::Cow;

use std::ffi::c_int;

use nginx_sys::ngx_table_elt_t;

use super::req::{push_req_table, request};
use crate::glue::escape::{escape_header_name, escape_header_value};
use crate::glue::{headers, headers_in};
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, ffi, lua_State, push_bytes, set_fn, to_bytes, type_name};
use crate::runtime::context::{self, Context};

lua_fns! {
    get_headers => get_headers_impl,
    set_header => set_header_impl,
    clear_header => clear_header_impl,
}

const MT_KEY: &std::ffi::CStr = c"ngx_lua_headers_metatable";

/// The classic set_header, clear_header and get_headers, for the Lua face
/// (`lua/req.lua`).
pub(crate) const CLASSIC: [ffi::lua_CFunction; 3] = [set_header, clear_header, get_headers];

/// # Safety
/// The `ngx` table must be on top of `l` (main state, not running).
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { push_req_table(l) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"get_headers", get_headers) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"set_header", set_header) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"clear_header", clear_header) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pop(l, 1) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { install_metatable(l) }
}

/// The metatable of header tables: `h.User_Agent`, `h["USER-AGENT"]` find
/// the lower-cased key; a number finds the header it names (`h[123]`).
/// The key is made by an FFI function (req_ffi.rs), so that loops reading
/// headers stay compiled (LuaJIT does not compile string.gsub).
unsafe fn install_metatable(l: *mut lua_State) -> Result<(), String> {
    let code = br#"
local declare = ...
local lower, gsub, rawget, type, tostring = string.lower, string.gsub, rawget, type, tostring
local ffi = require "ffi"
local C, ffi_str = ffi.C, ffi.string
declare({
    ngx_http_lua_rs_scratch = "unsigned char *ngx_http_lua_rs_scratch(void);",
    ngx_http_lua_rs_header_key = "int ngx_http_lua_rs_header_key(const char *key, size_t len);",
})
local header_key, buf = C.ngx_http_lua_rs_header_key, C.ngx_http_lua_rs_scratch()
return { __index = function(t, k)
    if type(k) == "number" then
        k = tostring(k)
    elseif type(k) ~= "string" then
        return nil
    end
    local n = header_key(k, #k)
    if n < 0 then
        return rawget(t, (gsub(lower(k), "_", "-")))
    end
    local v = rawget(t, ffi_str(buf, n))
    return v
end }
"#;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { super::run_face(l, code, c"=ngx_lua_headers", &[], 0, 1) }?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, ffi::LUA_REGISTRYINDEX, MT_KEY) };
    Ok(())
}

/// Pushes a table of headers as `get_headers` returns them: keys lower-cased
/// (unless `raw`) with the lookup metatable, repeated headers as arrays.
///
/// # Safety
/// `l` must be a running state.
pub unsafe fn push_header_table<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    l: *mut lua_State,
    items: &[(K, V)],
    raw: bool,
) {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_createtable(l, 0, items.len() as c_int) };
    // Lower-cased keys are built here, on the stack for usual lengths.
    let mut short = [0u8; 128];
    let mut long: Vec<u8>;
    for (k, v) in items {
        let (k, v) = (k.as_ref(), v.as_ref());
        let key: &[u8] = if raw {
            k
        } else if k.len() <= short.len() {
            let dst = &mut short[..k.len()];
            dst.copy_from_slice(k);
            dst.make_ascii_lowercase();
            dst
        } else {
            long = k.to_ascii_lowercase();
            &long
        };
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { push_bytes(l, key) };
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_rawget(l, -2) };
        // SAFETY: `l` is the running state (callers' duty)
        match unsafe { ffi::lua_type(l, -1) } {
            ffi::LUA_TNIL => {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_pop(l, 1) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { push_bytes(l, key) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { push_bytes(l, v) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawset(l, -3) };
            }
            ffi::LUA_TTABLE => {
                // SAFETY: `l` is the running state (callers' duty)
                let n = unsafe { ffi::lua_objlen(l, -1) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { push_bytes(l, v) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawseti(l, -2, (n + 1) as _) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_pop(l, 1) };
            }
            _ => {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_createtable(l, 4, 0) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_insert(l, -2) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawseti(l, -2, 1) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { push_bytes(l, v) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawseti(l, -2, 2) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { push_bytes(l, key) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_insert(l, -2) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawset(l, -3) };
            }
        }
    }
    if !raw {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, MT_KEY) };
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_setmetatable(l, -2) };
    }
}

/// Pushes the header table and, when `max` cut it short, "truncated".
///
/// # Safety
/// `l` must be a running state.
pub unsafe fn push_limited<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    l: *mut lua_State,
    all: &[(K, V)],
    max: usize,
    raw: bool,
) -> c_int {
    let truncated = max > 0 && all.len() > max;
    let items = if truncated { &all[..max] } else { all };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { push_header_table(l, items, raw) };
    if truncated {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { push_bytes(l, b"truncated") };
        return 2;
    }
    1
}

/// A header's key and value, borrowed from the request's pool.
///
/// # Safety
/// `h` must be a live header element; the slices live as long as it.
pub unsafe fn pair<'a>(h: *const ngx_table_elt_t) -> (&'a [u8], &'a [u8]) {
    // SAFETY: `h` is a live header element (caller's contract)
    (unsafe { (*h).key.as_bytes() }, unsafe { (*h).value.as_bytes() })
}

unsafe fn get_headers_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let max = unsafe { super::string::max_arg(l, 1, "get_headers") }?;
    // SAFETY: as above
    let raw = unsafe { ffi::lua_toboolean(l, 2) } != 0;
    // SAFETY: `r` is the live request of the running context; its header list is nginx's
    let all: smallvec::SmallVec<[(&[u8], &[u8]); 32]> =
        unsafe { headers::elts(&mut (*r).headers_in.headers) }
            // SAFETY: elts yields live elements of the request's header list
            .map(|h| unsafe { pair(h) })
            .collect();
    if max > 0 && all.len() > max {
        // SAFETY: `r` is the live request of the running context
        let (n, log) = (all.len(), unsafe { (*(*r).connection).log });
        crate::glue::log::log_debug_http!(log, "lua exceeding request header limit {n} > {max}");
    }
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { push_limited(l, &all, max, raw) })
}

/// Header values from Lua, usually one, borrowed where they can be.
pub type HeaderValues<'a> = smallvec::SmallVec<[Cow<'a, [u8]>; 1]>;

/// The values an FFI face passes for a header: none for a null `value`
/// (Lua's nil), else the one value, escaped as `values_arg` escapes it.
///
/// # Safety
/// `value` is null or points to `len` bytes that outlive the result.
pub unsafe fn ffi_values<'a>(value: *const u8, len: usize) -> HeaderValues<'a> {
    if value.is_null() {
        return HeaderValues::new();
    }
    // SAFETY: `value` has `len` bytes (caller's contract)
    smallvec::smallvec![escape_header_value(unsafe {
        std::slice::from_raw_parts(value, len)
    })]
}

/// Header values from Lua: nil or an empty table clear, a string or number
/// is one value, a table of them several. Control bytes are %-escaped so a
/// value can never split a header.
///
/// # Safety
/// `l` must be a running state.
pub unsafe fn values_arg<'a>(l: *mut lua_State, idx: c_int, fname: &str) -> Result<HeaderValues<'a>, String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNIL | ffi::LUA_TNONE => Ok(HeaderValues::new()),
        // Borrowed from the argument's string (a number is converted in
        // its stack slot), which stays while the function runs.
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => Ok(smallvec::smallvec![escape_header_value(
            // SAFETY: `l` is the running state (callers' duty)
            (unsafe { to_bytes(l, idx) }).unwrap_or_default()
        )]),
        ffi::LUA_TTABLE => {
            // SAFETY: `l` is the running state (callers' duty)
            let n = unsafe { ffi::lua_objlen(l, idx) };
            let mut out = HeaderValues::with_capacity(n);
            for i in 1..=n {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawgeti(l, idx, i as _) };
                // SAFETY: `l` is the running state (callers' duty)
                let t = unsafe { ffi::lua_type(l, -1) };
                if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
                    // SAFETY: `l` is the running state (callers' duty)
                    let tn = unsafe { type_name(l, -1) };
                    // SAFETY: `l` is the running state (callers' duty)
                    unsafe { ffi::lua_pop(l, 1) };
                    return Err(format!(
                        "bad argument #{idx} to '{fname}' (invalid header value type: {tn})"
                    ));
                }
                // A string stays alive in the table; a number's string only
                // lives in the stack slot popped below, so it is copied.
                // SAFETY: `l` is the running state (callers' duty)
                let v = escape_header_value(unsafe { to_bytes(l, -1) }.unwrap_or_default());
                out.push(if t == ffi::LUA_TSTRING {
                    v
                } else {
                    Cow::Owned(v.into_owned())
                });
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_pop(l, 1) };
            }
            Ok(out)
        }
        _ => Err(format!(
            "bad argument #{idx} to '{fname}' (string, number, table or nil expected, got {})",
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { type_name(l, idx) }
        )),
    }
}

pub(crate) const SET_PHASES: Context = context::REQUEST_NO_LOG;

unsafe fn change(l: *mut lua_State, fname: &str, values: HeaderValues) -> LuaRet {
    context::check_request_data(SET_PHASES)?;
    let r = request()?;
    // SAFETY: `l` is the running state (callers' duty)
    let key = unsafe { check_bytes(l, 1, fname) }?;
    // SAFETY: `r` is the live request of the running context
    unsafe { set_in(r, key, &values) }?;
    Ok(0)
}

/// Sets request header `key` (escaped here) to `values` (already escaped;
/// none removes it).
///
/// # Safety
/// `r` is the live request of the running context.
pub(crate) unsafe fn set_in(
    r: *mut nginx_sys::ngx_http_request_t,
    key: &[u8],
    values: &[Cow<[u8]>],
) -> Result<(), String> {
    let name = escape_header_name(key);
    // lua-nginx-module takes an empty name without complaint; we add
    // nothing rather than a header line without a name.
    if name.is_empty() {
        return Ok(());
    }
    // SAFETY: `r` is a live request (caller's contract)
    (unsafe { headers_in::set(r, &name, values) }).ok_or("no memory")?;
    Ok(())
}

unsafe fn set_header_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 2 {
        return Err(format!("expecting two arguments, but seen {n}"));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let values = unsafe { values_arg(l, 2, "set_header") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { change(l, "set_header", values) }
}

unsafe fn clear_header_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 1 {
        return Err(format!("expecting one argument, but seen {n}"));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { change(l, "clear_header", HeaderValues::new()) }
}
