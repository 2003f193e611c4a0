//! `ngx.shared.DICT`: the dictionaries of `lua_shared_dict`.
//!
//! Each dictionary is a table `{ [1] = <zone> }` sharing one metatable that
//! holds the methods and is its own `__index`, as in lua-nginx-module, so
//! `pairs(ngx.shared)` and `ngx.shared.dogs.__index` look the same. Return values
//! and error texts are those of lua-nginx-module with lua-resty-core (which
//! is what users get by default).

use std::ffi::c_int;

use crate::conf::shdict::Zone;
use crate::glue::shdict_store::{Dict, NO_MEMORY_FOR_ITEM, Owned, Value};
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, ffi, lua_State, push_bytes, push_cstr, set_fn, type_name};

/// Registry fields: the methods' metatable and the `ngx.shared` table.
const MT: &std::ffi::CStr = c"ngx_lua_shdict_mt";
const SHARED: &std::ffi::CStr = c"ngx_lua_shared";

lua_fns! {
    lpush => lpush_impl,
    rpush => rpush_impl,
    lpop => lpop_impl,
    rpop => rpop_impl,
    llen => llen_impl,
    flush_expired => flush_expired_impl,
    get_keys => get_keys_impl,
}

/// Creates `ngx.shared` (empty; `lua_shared_dict` fills it) and the
/// dictionaries' metatable.
///
/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up (not running); raw sets only
    unsafe {
        ffi::lua_createtable(l, 0, 4);
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, ffi::LUA_REGISTRYINDEX, SHARED);
        push_cstr(l, c"shared");
        ffi::lua_insert(l, -2);
        ffi::lua_rawset(l, -3);
    }

    // One table is both the metatable and its own `__index`, as in
    // lua-nginx-module, where `dict.__index` is that table.
    // SAFETY: `l` is the main state being set up, with room for these pushes
    unsafe { ffi::lua_createtable(l, 0, 24) };
    let methods: [(&std::ffi::CStr, ffi::lua_CFunction); 7] = [
        (c"lpush", lpush),
        (c"rpush", rpush),
        (c"lpop", lpop),
        (c"rpop", rpop),
        (c"llen", llen),
        (c"flush_expired", flush_expired),
        (c"get_keys", get_keys),
    ];
    for (name, f) in methods {
        // SAFETY: the metatable is on top of `l`
        unsafe { set_fn(l, -1, name, f) };
    }
    // SAFETY: `l` is the main state being set up; the metatable is on top
    unsafe {
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, -2, c"__index");
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, ffi::LUA_REGISTRYINDEX, MT);
    }
    // The hot methods are Lua over the FFI (shdict_ffi.rs), given the
    // metatable to fill.
    // SAFETY: `l` is the main state being set up, the metatable on top
    unsafe { super::run_face(l, lua_source!("lua/shdict.lua"), c"=ngx.shared", &[], 1, 0) }?;
    Ok(())
}

/// Adds `ngx.shared[name]` for a zone declared by `lua_shared_dict`.
///
/// # Safety
/// `l` is the configuration's main state (not running); `zone` lives as
/// long as that state (both belong to the cycle's main conf).
pub unsafe fn register(l: *mut lua_State, name: &[u8], zone: *mut Zone) {
    // SAFETY: `l` is the configuration's main state, not running (caller's contract)
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, SHARED);
        push_bytes(l, name);
        ffi::lua_createtable(l, 1, 0);
        ffi::lua_pushlightuserdata(l, zone.cast());
        ffi::lua_rawseti(l, -2, 1);
        crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, MT);
    }
    // SAFETY: the dictionary table, its key and the metatable are on top, `ngx.shared` under them
    unsafe {
        ffi::lua_setmetatable(l, -2);
        ffi::lua_rawset(l, -3);
        ffi::lua_pop(l, 1);
    }
}

/// Has the table at `idx` the metatable `register` gives dictionaries?
unsafe fn is_dict_table(l: *mut lua_State, idx: c_int) -> bool {
    // SAFETY: `l` is the running state Lua called the method with (callers' duty)
    if unsafe { ffi::lua_getmetatable(l, idx) } == 0 {
        return false;
    }
    // SAFETY: the value's metatable was pushed; the registry is a table
    unsafe { crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, MT) };
    // SAFETY: both metatables are the two top values
    let ours = unsafe { ffi::lua_rawequal(l, -1, -2) } != 0;
    // SAFETY: pops the two values pushed above
    unsafe { ffi::lua_pop(l, 2) };
    ours
}

const BAD_ZONE: &str = "bad \"zone\" argument";

/// The dictionary of `self` (argument 1).
unsafe fn zone_arg<'a>(l: *mut lua_State) -> Result<(&'a Zone, Dict), String> {
    // SAFETY: `l` is the running state Lua called the method with (callers' duty)
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TTABLE {
        return Err(BAD_ZONE.into());
    }
    // Another object type's table passed as `self` (a socket, whose [1] is
    // a full userdata) must not be read as a zone.
    // SAFETY: argument 1 was checked to be a table
    unsafe { ffi::lua_rawgeti(l, 1, 1) };
    // SAFETY: `l` is the running state; both calls only read values
    let p = if unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TLIGHTUSERDATA && unsafe { is_dict_table(l, 1) } {
        // SAFETY: the value on top was checked to be a light userdata
        (unsafe { ffi::lua_touserdata(l, -1) }) as *const Zone
    } else {
        std::ptr::null()
    };
    // SAFETY: pops the value rawgeti pushed
    unsafe { ffi::lua_pop(l, 1) };
    // SAFETY: only `register` puts a light userdata at [1] of a table with
    // the dictionaries' metatable; Lua code cannot make a light userdata
    // other than ngx.null (NULL, refused here) without the FFI.
    let zone = unsafe { p.as_ref() }.ok_or(BAD_ZONE)?;
    let dict = zone.dict.clone().ok_or(BAD_ZONE)?;
    Ok((zone, dict))
}

/// The key at `idx` (converted as `tostring` would), or the `(nil, err)`
/// message lua-nginx-module returns for it.
unsafe fn key_arg<'a>(l: *mut lua_State, idx: c_int) -> Result<&'a [u8], &'static str> {
    // SAFETY: `l` is the running state Lua called the method with (callers' duty)
    let key: &[u8] = match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNIL | ffi::LUA_TNONE => return Err("nil key"),
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            let mut len = 0usize;
            // SAFETY: the value at `idx` is a string or number
            let p = unsafe { ffi::lua_tolstring(l, idx, &mut len) };
            // SAFETY: lua_tolstring gave `len` bytes at `p`, alive while the value stays on the stack
            unsafe { std::slice::from_raw_parts(p.cast(), len) }
        }
        ffi::LUA_TBOOLEAN => {
            // SAFETY: `l` is the running state
            if unsafe { ffi::lua_toboolean(l, idx) } != 0 {
                b"true"
            } else {
                b"false"
            }
        }
        _ => {
            // SAFETY: `l` is the running state; both calls only read the value
            let s = format!("{}: {:p}", unsafe { type_name(l, idx) }, unsafe {
                ffi::lua_topointer(l, idx)
            });
            // SAFETY: `idx` is a valid stack slot; lua_replace puts the string there
            unsafe {
                push_bytes(l, s.as_bytes());
                ffi::lua_replace(l, idx);
            }
            let mut len = 0usize;
            // SAFETY: the value at `idx` is now a string
            let p = unsafe { ffi::lua_tolstring(l, idx, &mut len) };
            // SAFETY: lua_tolstring gave `len` bytes at `p`, alive while the value stays on the stack
            unsafe { std::slice::from_raw_parts(p.cast(), len) }
        }
    };
    if key.is_empty() {
        return Err("empty key");
    }
    if key.len() > 65535 {
        return Err("key too long");
    }
    Ok(key)
}

unsafe fn nil_err(l: *mut lua_State, msg: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pushnil(l);
        push_bytes(l, msg.as_bytes());
    }
    Ok(2)
}

unsafe fn push_owned(l: *mut lua_State, v: &Owned) {
    match v {
        // SAFETY: `l` is the running state (callers' duty)
        Owned::Bool(b) => unsafe { ffi::lua_pushboolean(l, *b as c_int) },
        // SAFETY: `l` is the running state (callers' duty)
        Owned::Num(n) => unsafe { ffi::lua_pushnumber(l, *n) },
        // SAFETY: `l` is the running state (callers' duty)
        Owned::Str(s) => unsafe { push_bytes(l, s) },
    }
}

unsafe fn expect_args(l: *mut lua_State, n: c_int) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    let got = unsafe { ffi::lua_gettop(l) };
    if got != n {
        return Err(format!("expecting {n} arguments, but only seen {got}"));
    }
    Ok(())
}

unsafe fn lpush_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { push_common(l, true) }
}
unsafe fn rpush_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { push_common(l, false) }
}

unsafe fn push_common(l: *mut lua_State, left: bool) -> LuaRet {
    // SAFETY: `l` is the running state Lua called lpush/rpush with
    (unsafe { expect_args(l, 3) })?;
    // SAFETY: `l` is the running state
    let (_, dict) = unsafe { zone_arg(l) }?;
    // SAFETY: `l` is the running state with 3 arguments
    let key = match unsafe { key_arg(l, 2) } {
        Ok(k) => k,
        // SAFETY: `l` is the running state
        Err(e) => return unsafe { nil_err(l, e) },
    };
    // SAFETY: `l` is the running state with 3 arguments
    let value = match unsafe { ffi::lua_type(l, 3) } {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            // SAFETY: the value is a string
            let p = unsafe { ffi::lua_tolstring(l, 3, &mut len) };
            // SAFETY: lua_tolstring gave `len` bytes at `p`, alive while the value stays on the stack
            Value::Str(unsafe { std::slice::from_raw_parts(p.cast(), len) })
        }
        // SAFETY: the value is a number
        ffi::LUA_TNUMBER => Value::Num(unsafe { ffi::lua_tonumber(l, 3) }),
        // SAFETY: `l` is the running state
        _ => return unsafe { nil_err(l, "bad value type") },
    };
    match dict.push(key, left, value) {
        Ok(n) => {
            // SAFETY: `l` is the running state
            unsafe { ffi::lua_pushnumber(l, n as f64) };
            Ok(1)
        }
        Err("no memory") => {
            // SAFETY: `l` is the running state
            unsafe {
                ffi::lua_pushboolean(l, 0);
                push_cstr(l, c"no memory");
            }
            Ok(2)
        }
        // SAFETY: `l` is the running state
        Err(NO_MEMORY_FOR_ITEM) => unsafe { nil_err(l, "no memory") },
        // SAFETY: `l` is the running state
        Err(e) => unsafe { nil_err(l, e) },
    }
}

unsafe fn lpop_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { pop_common(l, true) }
}
unsafe fn rpop_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { pop_common(l, false) }
}

unsafe fn pop_common(l: *mut lua_State, left: bool) -> LuaRet {
    // SAFETY: `l` is the running state Lua called lpop/rpop with
    (unsafe { expect_args(l, 2) })?;
    // SAFETY: `l` is the running state Lua called lpop/rpop with
    let (_, dict) = unsafe { zone_arg(l) }?;
    // SAFETY: `l` is the running state Lua called lpop/rpop with
    let key = match unsafe { key_arg(l, 2) } {
        Ok(k) => k,
        // SAFETY: `l` is the running state Lua called lpop/rpop with
        Err(e) => return unsafe { nil_err(l, e) },
    };
    match dict.pop(key, left) {
        // SAFETY: `l` is the running state Lua called lpop/rpop with
        Ok(Some(v)) => unsafe { push_owned(l, &v) },
        // SAFETY: `l` is the running state Lua called lpop/rpop with
        Ok(None) => unsafe { ffi::lua_pushnil(l) },
        // SAFETY: `l` is the running state Lua called lpop/rpop with
        Err(e) => return unsafe { nil_err(l, e) },
    }
    Ok(1)
}

unsafe fn llen_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        expect_args(l, 2)?;
        let (_, dict) = zone_arg(l)?;
        let key = match key_arg(l, 2) {
            Ok(k) => k,
            Err(e) => return nil_err(l, e),
        };
        match dict.llen(key) {
            Ok(n) => {
                ffi::lua_pushnumber(l, n as f64);
                Ok(1)
            }
            Err(e) => nil_err(l, e),
        }
    }
}

/// The optional count of flush_expired and get_keys (luaL_checkint).
unsafe fn count_arg(l: *mut lua_State, fname: &str, default: usize) -> Result<usize, String> {
    // SAFETY: `l` is the running state Lua called the method with (callers' duty)
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 1 && n != 2 {
        return Err(format!("expecting 1 or 2 argument(s), but saw {n}"));
    }
    if n == 1 {
        return Ok(default);
    }
    // SAFETY: `l` is the running state Lua called the method with (callers' duty)
    let v = unsafe { crate::lua::check_number(l, 2, fname) }?;
    Ok(if v < 1.0 { 0 } else { v as usize })
}

unsafe fn flush_expired_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let max = count_arg(l, "flush_expired", 0)?;
        let (_, dict) = zone_arg(l)?;
        ffi::lua_pushnumber(l, dict.flush_expired(max) as f64);
        Ok(1)
    }
}

unsafe fn get_keys_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let max = count_arg(l, "get_keys", 1024)?;
        let (_, dict) = zone_arg(l)?;
        let keys = dict.keys(max);
        ffi::lua_createtable(l, keys.len() as c_int, 0);
        for (i, k) in keys.iter().enumerate() {
            push_bytes(l, k);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
        Ok(1)
    }
}
