//! Thin helpers over the raw Lua C API for the `ngx.*` functions.
//!
//! API functions are plain `lua_CFunction`s: errors must reach Lua as strings
//! with a `chunk:line:` prefix (what lua-nginx-module raises and what Lua code
//! matches on), and waiting calls must be able to `lua_yield`.

use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use mlua::ffi;
pub use mlua::ffi::lua_State;

/// What an API function's body returns: the number of results it pushed, or
/// an error message raised as a Lua error once the body's frame is gone.
pub type LuaRet = Result<c_int, String>;

/// Runs an API function body, turning `Err` and panics into Lua errors.
///
/// # Safety
/// `l` must be the running Lua state that called the C function.
pub unsafe fn guard(l: *mut lua_State, body: unsafe fn(*mut lua_State) -> LuaRet) -> c_int {
    let msg = match catch_unwind(AssertUnwindSafe(|| body(l))) {
        Ok(Ok(n)) => return n,
        Ok(Err(msg)) => msg,
        Err(_) => "internal error (Rust panic in ngx_http_lua_module)".to_string(),
    };
    ffi::luaL_where(l, 1);
    push_bytes(l, msg.as_bytes());
    drop(msg);
    ffi::lua_concat(l, 2);
    // SAFETY: no Rust value with a destructor is alive in this frame; the
    // error unwinds through "C-unwind" frames only.
    ffi::lua_error(l)
}

/// Declares the `lua_CFunction`s of API bodies.
///
/// The functions return a sign-extended `isize` although Lua declares C
/// functions as returning `int`: the x86-64 ABI leaves the upper half of
/// `rax` undefined for an `int`, rustc does leave garbage there, and
/// LuaJIT (Debian's LuaJIT2 build) reads the whole register as the result
/// count. With `isize` every bit is defined and `eax` is the same value.
#[macro_export]
macro_rules! lua_fns {
    ($($name:ident => $body:path),* $(,)?) => {
        $(
            #[allow(non_upper_case_globals)]
            const $name: $crate::runtime::lua::ffi::lua_CFunction = {
                unsafe extern "C-unwind" fn raw(l: *mut $crate::runtime::lua::lua_State) -> isize {
                    // SAFETY: called by Lua with its own running state.
                    unsafe { $crate::runtime::lua::guard(l, $body) as isize }
                }
                // SAFETY: same calling convention; an isize return fills
                // rax whole, of which C callers read eax.
                unsafe {
                    ::std::mem::transmute::<
                        unsafe extern "C-unwind" fn(*mut $crate::runtime::lua::lua_State) -> isize,
                        $crate::runtime::lua::ffi::lua_CFunction,
                    >(raw)
                }
            };
        )*
    };
}

/// # Safety
/// `l` must be a valid Lua state with room on its stack.
pub unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
}

/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn push_cstr(l: *mut lua_State, s: &CStr) {
    ffi::lua_pushstring(l, s.as_ptr());
}

/// Borrow the bytes of a string (or number, converted in place) at `idx`.
///
/// # Safety
/// The returned slice lives as long as the value stays on the stack.
pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p.cast(), len))
    }
}

/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    let t = ffi::lua_type(l, idx);
    CStr::from_ptr(ffi::lua_typename(l, t))
        .to_string_lossy()
        .into_owned()
}

/// The error text of `luaL_argerror`, without the position prefix.
pub fn bad_arg(n: c_int, fname: &str, extra: &str) -> String {
    format!("bad argument #{n} to '{fname}' ({extra})")
}

/// A string argument, as luaL_checklstring would take it.
///
/// # Safety
/// The returned slice lives as long as the value stays on the stack.
pub unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int, fname: &str) -> Result<&'a [u8], String> {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => Ok(to_bytes(l, idx).unwrap_or_default()),
        ffi::LUA_TNONE => Err(bad_arg(idx, fname, "string expected, got no value")),
        _ => Err(bad_arg(
            idx,
            fname,
            &format!("string expected, got {}", type_name(l, idx)),
        )),
    }
}

/// A number argument, as luaL_checknumber would take it.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn check_number(l: *mut lua_State, idx: c_int, fname: &str) -> Result<f64, String> {
    let t = ffi::lua_type(l, idx);
    if t == ffi::LUA_TNUMBER || (t == ffi::LUA_TSTRING && ffi::lua_isnumber(l, idx) != 0) {
        return Ok(ffi::lua_tonumber(l, idx));
    }
    let got = if t == ffi::LUA_TNONE {
        "no value".to_string()
    } else {
        type_name(l, idx)
    };
    Err(bad_arg(idx, fname, &format!("number expected, got {got}")))
}

/// # Safety
/// `l` must be a valid Lua state with a table at `idx`.
pub unsafe fn set_fn(l: *mut lua_State, idx: c_int, name: &CStr, f: ffi::lua_CFunction) {
    ffi::lua_pushcfunction(l, f);
    ffi::lua_setfield(l, if idx < 0 { idx - 1 } else { idx }, name.as_ptr());
}

/// # Safety
/// `l` must be a valid Lua state with a table at `idx`.
pub unsafe fn set_int(l: *mut lua_State, idx: c_int, name: &CStr, v: i64) {
    ffi::lua_pushinteger(l, v as ffi::lua_Integer);
    ffi::lua_setfield(l, if idx < 0 { idx - 1 } else { idx }, name.as_ptr());
}

/// # Safety
/// `l` must be a valid Lua state with a table at `idx`.
pub unsafe fn set_str(l: *mut lua_State, idx: c_int, name: &CStr, v: &[u8]) {
    push_bytes(l, v);
    ffi::lua_setfield(l, if idx < 0 { idx - 1 } else { idx }, name.as_ptr());
}
