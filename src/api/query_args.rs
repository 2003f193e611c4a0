//! A Lua table of query arguments as a query string: the one encoder of
//! `ngx.encode_args`, `ngx.req.set_uri_args`, `ngx.exec` and the `args`
//! option of `ngx.location.capture` (lua-nginx-module's
//! `ngx_http_lua_process_args_option`). `{a = 1, b = true, c = {"x", "y"}}`
//! gives `a=1&b&c=x&c=y` (in table order), keys and values escaped as URI
//! components; `false` leaves its key out.

use std::ffi::{CStr, c_int};

use crate::glue::escape::escape_uri_append;
use crate::lua::{ffi, lua_State, to_bytes};

/// The error texts of a caller, given the offending value's type name.
pub struct Texts {
    pub bad_key: fn(&str) -> String,
    pub bad_value: fn(&str) -> String,
}

/// `ngx.encode_args`, `ngx.req.set_uri_args` and `ngx.exec`.
pub const ENCODE_ARGS: Texts = Texts {
    bad_key: |t| format!("attempt to use {t} as query arg key"),
    bad_value: |t| format!("attempt to use {t} as query arg value"),
};

/// The `args` option of `ngx.location.capture*`.
pub const ARGS_OPTION: Texts = Texts {
    bad_key: |_| "attempt to use a non-string key in the \"args\" option table".into(),
    bad_value: |_| "attempt to use an invalid value in the \"args\" option table".into(),
};

unsafe fn type_of(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx))) })
        .to_string_lossy()
        .into_owned()
}

/// Appends `key=value` (or a bare key) for one value of an args table.
unsafe fn encode_pair(
    l: *mut lua_State,
    key: &[u8],
    vidx: c_int,
    out: &mut Vec<u8>,
    texts: &Texts,
) -> Result<(), String> {
    let push = |out: &mut Vec<u8>, v: Option<&[u8]>| {
        if !out.is_empty() {
            out.push(b'&');
        }
        escape_uri_append(key, false, out);
        if let Some(v) = v {
            out.push(b'=');
            escape_uri_append(v, false, out);
        }
    };
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, vidx) } {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            // A copy, so that a number is converted there and not in the
            // table being traversed; its bytes live until it is popped.
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushvalue(l, vidx) };
            // SAFETY: `l` is the running state (callers' duty)
            push(out, Some(unsafe { to_bytes(l, -1) }.unwrap_or_default()));
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 1) };
        }
        ffi::LUA_TBOOLEAN => {
            // SAFETY: `l` is the running state (callers' duty)
            if unsafe { ffi::lua_toboolean(l, vidx) } != 0 {
                push(out, None);
            }
        }
        // SAFETY: `l` is the running state (callers' duty)
        _ => return Err((texts.bad_value)(&unsafe { type_of(l, vidx) })),
    }
    Ok(())
}

/// Encodes the table at `idx` as a query string; a bad key or value fails
/// with the caller's `texts`.
///
/// # Safety
/// `l` must be a running state with a table at `idx` (positive).
pub unsafe fn encode(l: *mut lua_State, idx: c_int, texts: &Texts) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    // SAFETY: the caller's contract
    unsafe { encode_into(l, idx, texts, &mut out) }?;
    Ok(out)
}

/// [`encode`] appended to `out`.
///
/// # Safety
/// As for [`encode`].
pub unsafe fn encode_into(
    l: *mut lua_State,
    idx: c_int,
    texts: &Texts,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushnil(l) };
    // SAFETY: `l` is the running state (callers' duty)
    while unsafe { ffi::lua_next(l, idx) } != 0 {
        // The key's bytes live while it is on the stack, until lua_next.
        // SAFETY: `l` is the running state (callers' duty)
        let key = match unsafe { ffi::lua_type(l, -2) } {
            // SAFETY: `l` is the running state (callers' duty)
            ffi::LUA_TSTRING => unsafe { to_bytes(l, -2) }.unwrap_or_default(),
            _ => {
                // SAFETY: `l` is the running state (callers' duty)
                let e = (texts.bad_key)(&unsafe { type_of(l, -2) });
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_pop(l, 2) };
                return Err(e);
            }
        };
        // SAFETY: `l` is the running state (callers' duty)
        let vidx = unsafe { ffi::lua_gettop(l) };
        // SAFETY: `l` is the running state (callers' duty)
        if unsafe { ffi::lua_type(l, vidx) } == ffi::LUA_TTABLE {
            // SAFETY: `l` is the running state (callers' duty)
            let len = unsafe { ffi::lua_objlen(l, vidx) };
            for i in 1..=len {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_rawgeti(l, vidx, i as _) };
                // SAFETY: `l` is the running state (callers' duty)
                let r = unsafe { encode_pair(l, key, ffi::lua_gettop(l), out, texts) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_pop(l, 1) };
                if let Err(e) = r {
                    // SAFETY: `l` is the running state (callers' duty)
                    unsafe { ffi::lua_pop(l, 2) };
                    return Err(e);
                }
            }
        // SAFETY: `l` is the running state (callers' duty)
        } else if let Err(e) = unsafe { encode_pair(l, key, vidx, out, texts) } {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 2) };
            return Err(e);
        }
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pop(l, 1) };
    }
    Ok(())
}
