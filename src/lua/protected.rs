//! Metamethods run for us under `lua_pcall`: where lua-nginx-module runs
//! one (an option table's `__index`, `ctx.pos = ...`, `__tostring` in
//! `ngx.log`), these helpers call a small Lua function protected, and a
//! metamethod's error comes back as the body's `Err` for [`guard`] to raise
//! unchanged.
//!
//! [`guard`]: super::guard

use std::ffi::{CStr, c_int};

use super::{abs_index, check_stack, ffi, key_ptr, lua_State, propagate, vm};

/// Lua functions that run metamethods for us under `lua_pcall`.
const PROTECTED_OPS: &[u8] = br#"
local tostring = tostring
return function(t, k) return t[k] end,
       function(t, k, v) t[k] = v end,
       function(v) return tostring(v) end
"#;

static GET_KEY: u8 = 0;
static SET_KEY: u8 = 0;
static TOSTRING_KEY: u8 = 0;

/// Compiles the protected operations into the registry of a new VM.
///
/// # Safety
/// `l` must be a main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is a main state not running (caller's contract); loading raises only on OOM
    if unsafe { ffi::luaL_loadbuffer(
        l,
        PROTECTED_OPS.as_ptr().cast(),
        PROTECTED_OPS.len(),
        c"=ngx_lua_ops".as_ptr(),
    ) } != 0
        // SAFETY: the chunk just loaded is on top; pcall catches its errors
        || unsafe { ffi::lua_pcall(l, 0, 3, 0) } != 0
    {
        // SAFETY: the failed load or pcall left its error value on top
        return Err(unsafe { vm::pop_message(l) });
    }
    for key in [&TOSTRING_KEY, &SET_KEY, &GET_KEY] {
        // SAFETY: the chunk's three results are on top; raw registry stores cannot raise
        unsafe {
            ffi::lua_pushlightuserdata(l, key_ptr(key));
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
        }
    }
    Ok(())
}

/// Calls the protected operation `key` on the `nargs` values on top of `l`.
unsafe fn call_protected(
    l: *mut lua_State,
    key: &'static u8,
    nargs: c_int,
    nres: c_int,
) -> Result<(), String> {
    // SAFETY: `l` is valid with `nargs` values on top (callers' duty); raw registry read
    unsafe {
        ffi::lua_pushlightuserdata(l, key_ptr(key));
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
        ffi::lua_insert(l, -(nargs + 1));
    }
    // SAFETY: the operation sits under its `nargs` arguments; pcall catches its errors
    if unsafe { ffi::lua_pcall(l, nargs, nres, 0) } != 0 {
        // SAFETY: the failed pcall left its error value on top
        return Err(unsafe { propagate(l) });
    }
    Ok(())
}

/// Does the value at `idx` have a metatable? (Tables without one can be
/// read and written raw.)
unsafe fn has_metatable(l: *mut lua_State, idx: c_int) -> bool {
    // SAFETY: `l` is valid (callers' duty); the call only reads `idx`
    if unsafe { ffi::lua_getmetatable(l, idx) } == 0 {
        return false;
    }
    // SAFETY: pops the metatable lua_getmetatable pushed
    unsafe { ffi::lua_pop(l, 1) };
    true
}

/// Pushes `t[name]` for the value at `idx`, running `__index` as
/// `lua_getfield` would, but without raising: a metamethod's error is
/// returned for [`guard`] to raise.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn get_field(l: *mut lua_State, idx: c_int, name: &CStr) -> Result<(), String> {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `l` is a valid state (caller's contract)
    (unsafe { check_stack(l, 4) })?;
    // SAFETY: `l` is valid and `idx` absolute; both calls only read the value
    if unsafe { ffi::lua_type(l, idx) } == ffi::LUA_TTABLE && !unsafe { has_metatable(l, idx) } {
        // SAFETY: a plain table without metatable at `idx`: raw access runs no metamethod
        unsafe {
            ffi::lua_pushstring(l, name.as_ptr());
            ffi::lua_rawget(l, idx);
        }
        return Ok(());
    }
    // SAFETY: check_stack made room for the two pushes
    unsafe {
        ffi::lua_pushvalue(l, idx);
        ffi::lua_pushstring(l, name.as_ptr());
    }
    // SAFETY: the object and the key are the two top values
    unsafe { call_protected(l, &GET_KEY, 2, 1) }
}

/// `t[name] = v` with `v` popped from the top, running `__newindex` as
/// `lua_setfield` would, without raising.
///
/// # Safety
/// `l` must be a valid state with the value on top.
pub unsafe fn set_field(l: *mut lua_State, idx: c_int, name: &CStr) -> Result<(), String> {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `l` is a valid state (caller's contract)
    if let Err(e) = unsafe { check_stack(l, 4) } {
        // SAFETY: pops the value the caller pushed, as on success
        unsafe { ffi::lua_pop(l, 1) };
        return Err(e);
    }
    // SAFETY: `l` is valid and `idx` absolute; both calls only read the value
    if unsafe { ffi::lua_type(l, idx) } == ffi::LUA_TTABLE && !unsafe { has_metatable(l, idx) } {
        // SAFETY: a plain table without metatable at `idx`: raw set runs no metamethod
        unsafe {
            ffi::lua_pushstring(l, name.as_ptr());
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, idx);
        }
        return Ok(());
    }
    // SAFETY: check_stack made room; the value was on top (caller's contract)
    unsafe {
        ffi::lua_pushvalue(l, idx);
        ffi::lua_pushstring(l, name.as_ptr());
        ffi::lua_pushvalue(l, -3);
        ffi::lua_remove(l, -4);
    }
    // SAFETY: object, key and value are the three top values
    unsafe { call_protected(l, &SET_KEY, 3, 0) }
}

/// Pushes `tostring(v)` of the value at `idx` (running `__tostring`),
/// without raising.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn to_display(l: *mut lua_State, idx: c_int) -> Result<(), String> {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `l` is a valid state (caller's contract)
    (unsafe { check_stack(l, 3) })?;
    // SAFETY: check_stack made room for the copy
    unsafe { ffi::lua_pushvalue(l, idx) };
    // SAFETY: the value to convert is on top
    unsafe { call_protected(l, &TOSTRING_KEY, 1, 1) }
}
