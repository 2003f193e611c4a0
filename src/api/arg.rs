//! `ngx.arg`: one table for the VM's life, as in lua-nginx-module. The
//! code of set_by_lua* and body_filter_by_lua* finds its arguments in the
//! table's slots while it runs (the phase fills them before and clears them
//! after); reading it anywhere else is refused, as lua-resty-core refuses.

use crate::lua::{LuaRet, ffi, lua_State, push_bytes};
use crate::runtime::context;

/// Registry key of the table.
static ARG: u8 = 0;

crate::lua::lua_fns! {
    index => index_impl,
}

/// Puts `ngx.arg` on the `ngx` table on top of the stack.
///
/// # Safety
/// `l` must be the VM's main state being set up, not running, with the
/// `ngx` table on top.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 2, 0);
        ffi::lua_createtable(l, 0, 1);
        crate::lua::set_fn(l, -1, c"__index", index);
        ffi::lua_setmetatable(l, -2);
        crate::lua::set_registry(l, &ARG);
        crate::lua::set_raw(l, -2, c"arg");
    }
}

/// Pushes the VM's `ngx.arg` table for a phase to fill, and makes it
/// `ngx.arg` again should code have replaced it.
///
/// # Safety
/// `l` must be a state of a VM set up by [`install`], with room on its stack.
pub unsafe fn push(l: *mut lua_State) {
    // SAFETY: `l` is a live state with room (caller's contract)
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
        crate::lua::get_registry(l, &ARG);
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, -3, c"arg");
        ffi::lua_replace(l, -2);
    }
}

/// Empties slots 1 to `n` of the table once the phase's code returned, so
/// that it keeps no value alive and other phases read nothing.
///
/// # Safety
/// As [`push`].
pub unsafe fn clear(l: *mut lua_State, n: usize) {
    // SAFETY: `l` is a live state with room (caller's contract)
    unsafe {
        crate::lua::get_registry(l, &ARG);
        for i in 1..=n {
            ffi::lua_pushnil(l);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
        }
        ffi::lua_pop(l, 1);
    }
}

/// A slot the phase left empty: in a body filter, `ngx.arg[1]` and `[2]`
/// that the code set to nil read back as a cleared chain ("" and false),
/// as in lua-nginx-module; set_by_lua* has no more arguments than it was
/// given; no other phase has any.
unsafe fn index_impl(l: *mut lua_State) -> LuaRet {
    match context::current() {
        // SAFETY: `l` is the state calling the __index metamethod, with its 2 arguments
        context::BODY_FILTER => unsafe {
            match ffi::lua_tointeger(l, 2) {
                1 => push_bytes(l, b""),
                2 => ffi::lua_pushboolean(l, 0),
                _ => ffi::lua_pushnil(l),
            }
        },
        // SAFETY: as above
        context::SET => unsafe { ffi::lua_pushnil(l) },
        _ => return Err("API disabled in the current context".into()),
    }
    Ok(1)
}
