//! Copies a value from one Lua state to another (independent VMs): what
//! `ngx.run_worker_thread` passes and returns. lua-nginx-module's rules:
//! nil (at the top level only), booleans, numbers, strings, light userdata
//! (`ngx.null`) and tables of those, at most 100 tables deep (which also
//! stops reference cycles); anything else is refused with its type name.

use std::ffi::c_int;

use super::{ffi, lua_State, push_bytes, to_bytes};

/// Deepest table nesting copied.
pub const MAX_DEPTH: c_int = 100;

/// Pushes onto `to` a copy of the value at `idx` of `from`; on failure
/// pushes nothing and says why ("unsupported Lua type: LUA_TFUNCTION").
///
/// # Safety
/// Both states valid, neither running a call that could interleave; `idx`
/// a valid index of `from`.
pub unsafe fn copy(
    from: *mut lua_State,
    to: *mut lua_State,
    idx: c_int,
    allow_nil: bool,
    depth: c_int,
) -> Result<(), &'static str> {
    // SAFETY: the caller's contract; only non-raising calls, with stack
    // room checked before each level.
    unsafe {
        if ffi::lua_checkstack(from, 4) == 0 || ffi::lua_checkstack(to, 4) == 0 {
            return Err("no memory");
        }
        match ffi::lua_type(from, idx) {
            ffi::LUA_TBOOLEAN => ffi::lua_pushboolean(to, ffi::lua_toboolean(from, idx)),
            ffi::LUA_TLIGHTUSERDATA => ffi::lua_pushlightuserdata(to, ffi::lua_touserdata(from, idx)),
            ffi::LUA_TNUMBER => ffi::lua_pushnumber(to, ffi::lua_tonumber(from, idx)),
            ffi::LUA_TSTRING => push_bytes(to, to_bytes(from, idx).unwrap_or_default()),
            ffi::LUA_TNIL if allow_nil => ffi::lua_pushnil(to),
            ffi::LUA_TNIL => return Err("unsupported Lua type: LUA_TNIL"),
            ffi::LUA_TTABLE => return copy_table(from, to, idx, depth),
            ffi::LUA_TFUNCTION => return Err("unsupported Lua type: LUA_TFUNCTION"),
            ffi::LUA_TUSERDATA => return Err("unsupported Lua type: LUA_TUSERDATA"),
            8 => return Err("unsupported Lua type: LUA_TTHREAD"),
            _ => return Err("unsupported Lua type"),
        }
    }
    Ok(())
}

unsafe fn copy_table(
    from: *mut lua_State,
    to: *mut lua_State,
    idx: c_int,
    depth: c_int,
) -> Result<(), &'static str> {
    if depth >= MAX_DEPTH {
        return Err("suspicious circular references, table depth exceed max depth: 100");
    }
    // SAFETY: as `copy`; lua_next walks a table we do not change.
    unsafe {
        let idx = super::abs_index(from, idx);
        let (top_from, top_to) = (ffi::lua_gettop(from), ffi::lua_gettop(to));
        ffi::lua_createtable(to, 0, 0);
        ffi::lua_pushnil(from);
        while ffi::lua_next(from, idx) != 0 {
            let done =
                copy(from, to, -2, false, depth + 1).and_then(|()| copy(from, to, -1, false, depth + 1));
            if let Err(e) = done {
                ffi::lua_settop(from, top_from);
                ffi::lua_settop(to, top_to);
                return Err(e);
            }
            ffi::lua_rawset(to, -3);
            ffi::lua_pop(from, 1);
        }
    }
    Ok(())
}
