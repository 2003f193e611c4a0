//! `ngx.shared.DICT`: the dictionaries of `lua_shared_dict`.
//!
//! Each dictionary is a table `{ [1] = <zone> }` sharing one metatable whose
//! `__index` holds the methods, as in lua-nginx-module, so `pairs(ngx.shared)`
//! and `getmetatable(ngx.shared.dogs).__index` look the same. Return values
//! and error texts are those of lua-nginx-module with lua-resty-core (which
//! is what users get by default).

use std::ffi::c_int;

use crate::conf::shdict::Zone;
use crate::glue::shdict_store::{Dict, Owned, StoreOp, Value};
use crate::lua::lua_fns;
use crate::lua::{ffi, lua_State, push_bytes, push_cstr, set_fn, type_name, LuaRet};

/// Registry fields: the methods' metatable and the `ngx.shared` table.
const MT: &std::ffi::CStr = c"ngx_lua_shdict_mt";
const SHARED: &std::ffi::CStr = c"ngx_lua_shared";

lua_fns! {
    get => get_impl,
    get_stale => get_stale_impl,
    set => set_impl,
    safe_set => safe_set_impl,
    add => add_impl,
    safe_add => safe_add_impl,
    replace => replace_impl,
    delete => delete_impl,
    incr => incr_impl,
    lpush => lpush_impl,
    rpush => rpush_impl,
    lpop => lpop_impl,
    rpop => rpop_impl,
    llen => llen_impl,
    ttl => ttl_impl,
    expire => expire_impl,
    flush_all => flush_all_impl,
    flush_expired => flush_expired_impl,
    get_keys => get_keys_impl,
    capacity => capacity_impl,
    free_space => free_space_impl,
}

/// Creates `ngx.shared` (empty; `lua_shared_dict` fills it) and the
/// dictionaries' metatable.
///
/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    ffi::lua_createtable(l, 0, 4);
    ffi::lua_pushvalue(l, -1);
    crate::lua::set_raw(l, ffi::LUA_REGISTRYINDEX, SHARED);
    push_cstr(l, c"shared");
    ffi::lua_insert(l, -2);
    ffi::lua_rawset(l, -3);

    ffi::lua_createtable(l, 0, 2);
    ffi::lua_createtable(l, 0, 24);
    let methods: [(&std::ffi::CStr, ffi::lua_CFunction); 21] = [
        (c"get", get),
        (c"get_stale", get_stale),
        (c"set", set),
        (c"safe_set", safe_set),
        (c"add", add),
        (c"safe_add", safe_add),
        (c"replace", replace),
        (c"delete", delete),
        (c"incr", incr),
        (c"lpush", lpush),
        (c"rpush", rpush),
        (c"lpop", lpop),
        (c"rpop", rpop),
        (c"llen", llen),
        (c"ttl", ttl),
        (c"expire", expire),
        (c"flush_all", flush_all),
        (c"flush_expired", flush_expired),
        (c"get_keys", get_keys),
        (c"capacity", capacity),
        (c"free_space", free_space),
    ];
    for (name, f) in methods {
        set_fn(l, -1, name, f);
    }
    crate::lua::set_raw(l, -2, c"__index");
    crate::lua::set_raw(l, ffi::LUA_REGISTRYINDEX, MT);
}

/// Adds `ngx.shared[name]` for a zone declared by `lua_shared_dict`.
///
/// # Safety
/// `l` is the configuration's main state (not running); `zone` lives as
/// long as that state (both belong to the cycle's main conf).
pub unsafe fn register(l: *mut lua_State, name: &[u8], zone: *mut Zone) {
    crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, SHARED);
    push_bytes(l, name);
    ffi::lua_createtable(l, 1, 0);
    ffi::lua_pushlightuserdata(l, zone.cast());
    ffi::lua_rawseti(l, -2, 1);
    crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, MT);
    ffi::lua_setmetatable(l, -2);
    ffi::lua_rawset(l, -3);
    ffi::lua_pop(l, 1);
}

/// Has the table at `idx` the metatable `register` gives dictionaries?
unsafe fn is_dict_table(l: *mut lua_State, idx: c_int) -> bool {
    if ffi::lua_getmetatable(l, idx) == 0 {
        return false;
    }
    crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, MT);
    let ours = ffi::lua_rawequal(l, -1, -2) != 0;
    ffi::lua_pop(l, 2);
    ours
}

const BAD_ZONE: &str = "bad \"zone\" argument";

/// The dictionary of `self` (argument 1).
unsafe fn zone_arg<'a>(l: *mut lua_State) -> Result<(&'a Zone, Dict), String> {
    if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
        return Err(BAD_ZONE.into());
    }
    // Another object type's table passed as `self` (a socket, whose [1] is
    // a full userdata) must not be read as a zone.
    ffi::lua_rawgeti(l, 1, 1);
    let p = if ffi::lua_type(l, -1) == ffi::LUA_TLIGHTUSERDATA && is_dict_table(l, 1) {
        ffi::lua_touserdata(l, -1) as *const Zone
    } else {
        std::ptr::null()
    };
    ffi::lua_pop(l, 1);
    // SAFETY: only `register` puts a light userdata at [1] of a table with
    // the dictionaries' metatable; Lua code cannot make a light userdata
    // other than ngx.null (NULL, refused here) without the FFI.
    let zone = p.as_ref().ok_or(BAD_ZONE)?;
    let dict = zone.dict.clone().ok_or(BAD_ZONE)?;
    Ok((zone, dict))
}

/// The key at `idx` (converted as `tostring` would), or the `(nil, err)`
/// message lua-nginx-module returns for it.
unsafe fn key_arg<'a>(l: *mut lua_State, idx: c_int) -> Result<&'a [u8], &'static str> {
    let key: &[u8] = match ffi::lua_type(l, idx) {
        ffi::LUA_TNIL | ffi::LUA_TNONE => return Err("nil key"),
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, idx, &mut len);
            std::slice::from_raw_parts(p.cast(), len)
        }
        ffi::LUA_TBOOLEAN => {
            if ffi::lua_toboolean(l, idx) != 0 {
                b"true"
            } else {
                b"false"
            }
        }
        _ => {
            let s = format!("{}: {:p}", type_name(l, idx), ffi::lua_topointer(l, idx));
            push_bytes(l, s.as_bytes());
            ffi::lua_replace(l, idx);
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, idx, &mut len);
            std::slice::from_raw_parts(p.cast(), len)
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
    ffi::lua_pushnil(l);
    push_bytes(l, msg.as_bytes());
    Ok(2)
}

unsafe fn push_owned(l: *mut lua_State, v: &Owned) {
    match v {
        Owned::Bool(b) => ffi::lua_pushboolean(l, *b as c_int),
        Owned::Num(n) => ffi::lua_pushnumber(l, *n),
        Owned::Str(s) => push_bytes(l, s),
    }
}

/// An optional number argument; `None` for nil/none, `Err(type)` otherwise.
unsafe fn opt_number(l: *mut lua_State, idx: c_int) -> Result<Option<f64>, String> {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TNIL | ffi::LUA_TNONE => Ok(None),
        ffi::LUA_TNUMBER => Ok(Some(ffi::lua_tonumber(l, idx))),
        ffi::LUA_TSTRING if ffi::lua_isnumber(l, idx) != 0 => Ok(Some(ffi::lua_tonumber(l, idx))),
        _ => Err(type_name(l, idx)),
    }
}

/// Seconds (float) to whole milliseconds, as lua-resty-core's `exptime * 1000`
/// passed to a C `long`; 0 (no expiry) unless positive, so NaN, infinity
/// and other values out of the `long` range never expire, as there.
fn to_ms(secs: f64) -> u64 {
    crate::glue::cconv::int64(secs * 1000.0).max(0) as u64
}

fn get_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { get_common(l, false) }
}

fn get_stale_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { get_common(l, true) }
}

unsafe fn get_common(l: *mut lua_State, stale: bool) -> LuaRet {
    let (_, dict) = zone_arg(l)?;
    let key = match key_arg(l, 2) {
        Ok(k) => k,
        Err(e) => return nil_err(l, e),
    };
    match dict.get(key, stale) {
        Err(e) => nil_err(l, e),
        Ok(None) => {
            ffi::lua_pushnil(l);
            Ok(1)
        }
        Ok(Some((v, flags, is_stale))) => {
            push_owned(l, &v);
            if flags != 0 {
                ffi::lua_pushinteger(l, flags as i32 as ffi::lua_Integer);
            } else if stale {
                ffi::lua_pushnil(l);
            } else {
                return Ok(1);
            }
            if stale {
                ffi::lua_pushboolean(l, is_stale as c_int);
                return Ok(3);
            }
            Ok(2)
        }
    }
}

const SET: StoreOp = StoreOp {
    add: false,
    replace: false,
    safe: false,
};

fn set_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { store_common(l, SET) }
}
fn safe_set_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: as above.
    unsafe { store_common(l, StoreOp { safe: true, ..SET }) }
}
fn add_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: as above.
    unsafe { store_common(l, StoreOp { add: true, ..SET }) }
}
fn safe_add_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: as above.
    unsafe {
        store_common(
            l,
            StoreOp {
                add: true,
                safe: true,
                ..SET
            },
        )
    }
}
fn replace_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: as above.
    unsafe { store_common(l, StoreOp { replace: true, ..SET }) }
}

fn delete_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state; `delete(k)` is `set(k, nil)`.
    unsafe {
        ffi::lua_settop(l, 2);
        ffi::lua_pushnil(l);
        store_common(l, SET)
    }
}

unsafe fn store_common(l: *mut lua_State, op: StoreOp) -> LuaRet {
    let (_, dict) = zone_arg(l)?;
    let exptime = match opt_number(l, 4) {
        Ok(None) => 0.0,
        // NaN passes lua-resty-core's `exptime < 0` check (then means no expiry).
        Ok(Some(e)) if e >= 0.0 || e.is_nan() => e,
        _ => return Err("bad \"exptime\" argument".into()),
    };
    let flags = match opt_number(l, 5) {
        Ok(f) => f.unwrap_or(0.0) as i64 as u32,
        Err(t) => return Err(format!("bad \"flags\" argument: number expected, got {t}")),
    };
    let key = match key_arg(l, 2) {
        Ok(k) => k,
        Err(e) => return nil_err(l, e),
    };
    let value = match ffi::lua_type(l, 3) {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, 3, &mut len);
            Value::Str(std::slice::from_raw_parts(p.cast(), len))
        }
        ffi::LUA_TNUMBER => Value::Num(ffi::lua_tonumber(l, 3)),
        ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, 3) != 0),
        ffi::LUA_TNIL | ffi::LUA_TNONE => Value::Nil,
        _ => return nil_err(l, "bad value type"),
    };
    let (ok, err, forcible) = match dict.store(op, key, value, to_ms(exptime), flags) {
        Ok(f) => (true, None, f),
        Err((e, f)) => (false, Some(e), f),
    };
    ffi::lua_pushboolean(l, ok as c_int);
    match err {
        Some(e) => push_bytes(l, e.as_bytes()),
        None => ffi::lua_pushnil(l),
    }
    ffi::lua_pushboolean(l, forcible as c_int);
    Ok(3)
}

fn incr_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let (_, dict) = zone_arg(l)?;
        let key = match key_arg(l, 2) {
            Ok(k) => k,
            Err(e) => return nil_err(l, e),
        };
        let delta = match opt_number(l, 3) {
            Ok(Some(v)) => v,
            _ => return Err(format!("cannot convert '{}' to 'double'", type_name(l, 3))),
        };
        let init = if ffi::lua_toboolean(l, 4) != 0 {
            match opt_number(l, 4) {
                Ok(v) => v,
                Err(t) => return Err(format!("bad init arg: number expected, got {t}")),
            }
        } else {
            None
        };
        let init_ttl = match opt_number(l, 5) {
            Ok(None) => 0.0,
            Ok(Some(t)) => {
                if t < 0.0 {
                    return Err("bad \"init_ttl\" argument".into());
                }
                if init.is_none() {
                    return Err("must provide \"init\" when providing \"init_ttl\"".into());
                }
                t
            }
            Err(t) => return Err(format!("bad init_ttl arg: number expected, got {t}")),
        };
        match dict.incr(key, delta, init, to_ms(init_ttl)) {
            Err(e) => nil_err(l, e),
            Ok((v, forcible)) => {
                ffi::lua_pushnumber(l, v);
                if init.is_none() {
                    return Ok(1);
                }
                ffi::lua_pushnil(l);
                ffi::lua_pushboolean(l, forcible as c_int);
                Ok(3)
            }
        }
    }
}

unsafe fn expect_args(l: *mut lua_State, n: c_int) -> Result<(), String> {
    let got = ffi::lua_gettop(l);
    if got != n {
        return Err(format!("expecting {n} arguments, but only seen {got}"));
    }
    Ok(())
}

fn lpush_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { push_common(l, true) }
}
fn rpush_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { push_common(l, false) }
}

unsafe fn push_common(l: *mut lua_State, left: bool) -> LuaRet {
    expect_args(l, 3)?;
    let (_, dict) = zone_arg(l)?;
    let key = match key_arg(l, 2) {
        Ok(k) => k,
        Err(e) => return nil_err(l, e),
    };
    let value = match ffi::lua_type(l, 3) {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, 3, &mut len);
            Value::Str(std::slice::from_raw_parts(p.cast(), len))
        }
        ffi::LUA_TNUMBER => Value::Num(ffi::lua_tonumber(l, 3)),
        _ => return nil_err(l, "bad value type"),
    };
    match dict.push(key, left, value) {
        Ok(n) => {
            ffi::lua_pushnumber(l, n as f64);
            Ok(1)
        }
        Err("no memory") => {
            ffi::lua_pushboolean(l, 0);
            push_cstr(l, c"no memory");
            Ok(2)
        }
        Err(e) => nil_err(l, e),
    }
}

fn lpop_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { pop_common(l, true) }
}
fn rpop_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe { pop_common(l, false) }
}

unsafe fn pop_common(l: *mut lua_State, left: bool) -> LuaRet {
    expect_args(l, 2)?;
    let (_, dict) = zone_arg(l)?;
    let key = match key_arg(l, 2) {
        Ok(k) => k,
        Err(e) => return nil_err(l, e),
    };
    match dict.pop(key, left) {
        Ok(Some(v)) => push_owned(l, &v),
        Ok(None) => ffi::lua_pushnil(l),
        Err(e) => return nil_err(l, e),
    }
    Ok(1)
}

fn llen_impl(l: *mut lua_State) -> LuaRet {
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

fn ttl_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let (_, dict) = zone_arg(l)?;
        let key = match key_arg(l, 2) {
            Ok(k) => k,
            Err(e) => return nil_err(l, e),
        };
        match dict.ttl(key) {
            None => nil_err(l, "not found"),
            Some(ms) => {
                ffi::lua_pushnumber(l, ms as f64 / 1000.0);
                Ok(1)
            }
        }
    }
}

fn expire_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let (_, dict) = zone_arg(l)?;
        let exptime = match opt_number(l, 3) {
            Ok(Some(e)) => e,
            _ => return Err("bad \"exptime\" argument".into()),
        };
        let key = match key_arg(l, 2) {
            Ok(k) => k,
            Err(e) => return nil_err(l, e),
        };
        if dict.set_expire(key, to_ms(exptime)) {
            ffi::lua_pushboolean(l, 1);
            Ok(1)
        } else {
            nil_err(l, "not found")
        }
    }
}

fn flush_all_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let (_, dict) = zone_arg(l)?;
        dict.flush_all();
        Ok(0)
    }
}

/// The optional count of flush_expired and get_keys (luaL_checkint).
unsafe fn count_arg(l: *mut lua_State, fname: &str, default: usize) -> Result<usize, String> {
    let n = ffi::lua_gettop(l);
    if n != 1 && n != 2 {
        return Err(format!("expecting 1 or 2 argument(s), but saw {n}"));
    }
    if n == 1 {
        return Ok(default);
    }
    let v = crate::lua::check_number(l, 2, fname)?;
    Ok(if v < 1.0 { 0 } else { v as usize })
}

fn flush_expired_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let max = count_arg(l, "flush_expired", 0)?;
        let (_, dict) = zone_arg(l)?;
        ffi::lua_pushnumber(l, dict.flush_expired(max) as f64);
        Ok(1)
    }
}

fn get_keys_impl(l: *mut lua_State) -> LuaRet {
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

fn capacity_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let (zone, _) = zone_arg(l)?;
        ffi::lua_pushnumber(l, zone.capacity() as f64);
        Ok(1)
    }
}

fn free_space_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: called by Lua with its running state.
    unsafe {
        let (_, dict) = zone_arg(l)?;
        ffi::lua_pushnumber(l, dict.free_space() as f64);
        Ok(1)
    }
}
