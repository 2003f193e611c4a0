//! `ngx.shared.DICT`'s hot methods as C functions for LuaJIT's FFI, with
//! the names and signatures of lua-nginx-module's `ngx_http_lua_ffi_shdict_*`:
//! our own Lua methods (`lua/shdict.lua`) call them from compiled traces,
//! and Lua code written against lua-nginx-module's ABI (lua-resty-core's
//! `resty.core.shdict`) runs on them unchanged.
//!
//! They never raise: each returns a code and, on failure, points `errmsg`
//! at a static message; the Lua side turns that into `(nil, err)` or an
//! error. A zone pointer is the `[1]` of a dictionary table, which only
//! `shdict::register` creates (the Lua side checks the table's metatable).

use std::ffi::{c_char, c_int, c_long, c_void};
use std::ptr;

use nginx_sys::{NGX_DECLINED, NGX_ERROR, NGX_OK, ngx_shm_zone_t};

use crate::conf::shdict::Zone;
use crate::glue::catch;
use crate::glue::shdict_codec::{T_BOOLEAN, T_NUMBER, T_STRING, decode_num};
use crate::glue::shdict_store::{Dict, StoreOp, Value};

const OK: c_int = NGX_OK as c_int;
const ERROR: c_int = NGX_ERROR as c_int;
const DECLINED: c_int = NGX_DECLINED as c_int;

/// Op bits of `ngx_http_lua_ffi_shdict_store`, as lua-nginx-module has them.
const OP_ADD: c_int = 0x0001;
const OP_REPLACE: c_int = 0x0002;
const OP_SAFE: c_int = 0x0004;

/// Lua's type tags, which the value type arguments use.
const LUA_TNIL: c_int = 0;
const LUA_TBOOLEAN: c_int = 1;
const LUA_TNUMBER: c_int = 3;
const LUA_TSTRING: c_int = 4;

/// The message for a zone whose store is not there (every failure sets
/// `errmsg`: the caller reads it as a C string).
const NO_ZONE: &std::ffi::CStr = c"no such shared dict zone";

/// Static NUL-terminated messages for `errmsg`.
fn msg(s: &'static str) -> *mut c_char {
    match s {
        "not found" => c"not found".as_ptr().cast_mut(),
        "exists" => c"exists".as_ptr().cast_mut(),
        "no memory" => c"no memory".as_ptr().cast_mut(),
        "not a number" => c"not a number".as_ptr().cast_mut(),
        "value is a list" => c"value is a list".as_ptr().cast_mut(),
        "attempt to add or replace nil values" => c"attempt to add or replace nil values".as_ptr().cast_mut(),
        "bad lua boolean value size found" => c"bad lua boolean value size found".as_ptr().cast_mut(),
        "bad lua number value size found" => c"bad lua number value size found".as_ptr().cast_mut(),
        "bad value type found" => c"bad value type found".as_ptr().cast_mut(),
        _ => c"internal error".as_ptr().cast_mut(),
    }
}

/// The store of `zone` and the key bytes; None for a zone not initialised.
///
/// # Safety
/// `zone` is null or a `Zone` of the running cycle; `key` points to
/// `key_len` readable bytes.
unsafe fn dict_and_key<'a>(
    zone: *mut c_void,
    key: *const u8,
    key_len: usize,
) -> Option<(&'a Dict, &'a [u8])> {
    // SAFETY: per the contract above.
    let zone = unsafe { zone.cast::<Zone>().as_ref() }?;
    let dict = zone.dict.as_ref()?;
    if key.is_null() {
        return Some((dict, &[]));
    }
    // SAFETY: per the contract above.
    Some((dict, unsafe { std::slice::from_raw_parts(key, key_len) }))
}

/// The zone behind a dictionary's `[1]`. Ours is the Zone pointer itself;
/// it is checked against the cycle's zones, as the argument comes from Lua.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_shdict_udata_to_zone(udata: *mut c_void) -> *mut c_void {
    catch(ptr::null_mut(), || {
        if udata.is_null() {
            return ptr::null_mut();
        }
        let tag = crate::conf::module() as *const nginx_sys::ngx_module_t as *mut c_void;
        // SAFETY: the running cycle's zone list is live.
        unsafe {
            let list = ptr::addr_of!((*nginx_sys::ngx_cycle).shared_memory);
            for z in crate::glue::list::elts::<ngx_shm_zone_t>(list) {
                if (*z).tag == tag && (*z).data == udata {
                    return udata;
                }
            }
        }
        ptr::null_mut()
    })
}

/// Reads `key`. The value's type goes to `value_type` (nil when absent);
/// a string is copied into `*str_value_buf` when it fits in
/// `*str_value_len` bytes, else into a `malloc`ed buffer the caller frees;
/// a boolean is one byte in that buffer; a number goes to `num_value`.
///
/// # Safety
/// The pointers are as lua-nginx-module's signature has them: `zone` from
/// `udata_to_zone` (or a dictionary's `[1]`), the out-pointers writable,
/// `*str_value_buf` holding `*str_value_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_get(
    zone: *mut c_void,
    key: *const u8,
    key_len: usize,
    value_type: *mut c_int,
    str_value_buf: *mut *mut u8,
    str_value_len: *mut usize,
    num_value: *mut f64,
    user_flags: *mut c_int,
    get_stale: c_int,
    is_stale: *mut c_int,
    errmsg: *mut *mut c_char,
) -> c_int {
    catch(ERROR, || {
        // SAFETY: per the contract above.
        let Some((dict, key)) = (unsafe { dict_and_key(zone, key, key_len) }) else {
            // SAFETY: the caller's out-pointer.
            unsafe { *errmsg = NO_ZONE.as_ptr().cast_mut() };
            return ERROR;
        };
        let copy = |ty: u8, bytes: &[u8], flags: u32, stale: bool| -> Result<(), &'static str> {
            // SAFETY: the caller's out-pointers and buffer, per the contract.
            unsafe {
                *user_flags = flags as c_int;
                *is_stale = stale as c_int;
                match ty {
                    T_STRING => {
                        let mut dst = *str_value_buf;
                        if bytes.len() > *str_value_len {
                            dst = libc::malloc(bytes.len().max(1)).cast();
                            if dst.is_null() {
                                return Err("no memory");
                            }
                            *str_value_buf = dst;
                        }
                        ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
                        *str_value_len = bytes.len();
                        *value_type = LUA_TSTRING;
                    }
                    T_NUMBER => {
                        *num_value = decode_num(ty, bytes).ok_or("bad lua number value size found")?;
                        *value_type = LUA_TNUMBER;
                    }
                    T_BOOLEAN => {
                        let [b] = bytes else {
                            return Err("bad lua boolean value size found");
                        };
                        **str_value_buf = *b;
                        *value_type = LUA_TBOOLEAN;
                    }
                    _ => return Err("bad value type found"),
                }
            }
            Ok(())
        };
        let found = dict.get_with(key, get_stale != 0, copy);
        // SAFETY: the caller's out-pointers, per the contract.
        unsafe {
            match found {
                Ok(Some(Ok(()))) => OK,
                Ok(None) => {
                    *value_type = LUA_TNIL;
                    OK
                }
                Ok(Some(Err(e))) | Err(e) => {
                    *errmsg = msg(e);
                    ERROR
                }
            }
        }
    })
}

/// set/add/replace and their safe forms (`op`), or delete (a nil value).
///
/// # Safety
/// As lua-nginx-module's signature: `zone` as for `get`, `key` and
/// `str_value_buf` readable for their lengths, the out-pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_store(
    zone: *mut c_void,
    op: c_int,
    key: *const u8,
    key_len: usize,
    value_type: c_int,
    str_value_buf: *const u8,
    str_value_len: usize,
    num_value: f64,
    exptime: c_long,
    user_flags: c_int,
    errmsg: *mut *mut c_char,
    forcible: *mut c_int,
) -> c_int {
    catch(ERROR, || {
        // SAFETY: per the contract above.
        let Some((dict, key)) = (unsafe { dict_and_key(zone, key, key_len) }) else {
            // SAFETY: the caller's out-pointers.
            unsafe {
                *errmsg = NO_ZONE.as_ptr().cast_mut();
                *forcible = 0;
            }
            return ERROR;
        };
        let value = match value_type {
            LUA_TSTRING if str_value_buf.is_null() => Value::Str(&[]),
            // SAFETY: the caller's buffer, per the contract.
            LUA_TSTRING => Value::Str(unsafe { std::slice::from_raw_parts(str_value_buf, str_value_len) }),
            LUA_TNUMBER => Value::Num(num_value),
            LUA_TBOOLEAN => Value::Bool(num_value != 0.0),
            LUA_TNIL => Value::Nil,
            _ => {
                // SAFETY: the caller's out-pointer.
                unsafe { *errmsg = c"unsupported value type".as_ptr().cast_mut() };
                return ERROR;
            }
        };
        let op = StoreOp {
            add: op & OP_ADD != 0,
            replace: op & OP_REPLACE != 0,
            safe: op & OP_SAFE != 0,
        };
        let result = dict.store(op, key, value, exptime.max(0) as u64, user_flags as u32);
        // SAFETY: the caller's out-pointers, per the contract.
        unsafe {
            match result {
                Ok(f) => {
                    *forcible = f as c_int;
                    OK
                }
                Err((e, f)) => {
                    *forcible = f as c_int;
                    *errmsg = msg(e);
                    if e == "no memory" { ERROR } else { DECLINED }
                }
            }
        }
    })
}

/// `incr`: adds `*value` to the number at `key` (or to `init` when the
/// key is absent and `has_init`), and writes the sum back to `*value`.
///
/// # Safety
/// As lua-nginx-module's signature: `zone` as for `get`, `key` readable
/// for `key_len` bytes, the out-pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_incr(
    zone: *mut c_void,
    key: *const u8,
    key_len: usize,
    value: *mut f64,
    err: *mut *mut c_char,
    has_init: c_int,
    init: f64,
    init_ttl: c_long,
    forcible: *mut c_int,
) -> c_int {
    catch(ERROR, || {
        // SAFETY: per the contract above.
        let Some((dict, key)) = (unsafe { dict_and_key(zone, key, key_len) }) else {
            // SAFETY: the caller's out-pointers.
            unsafe {
                *err = NO_ZONE.as_ptr().cast_mut();
                *forcible = 0;
            }
            return ERROR;
        };
        // SAFETY: the caller's out-pointers, per the contract.
        unsafe {
            let init = (has_init != 0).then_some(init);
            match dict.incr(key, *value, init, init_ttl.max(0) as u64) {
                Ok((v, f)) => {
                    *value = v;
                    *forcible = f as c_int;
                    OK
                }
                Err(e) => {
                    *forcible = 0;
                    *err = msg(e);
                    if e == "not found" { DECLINED } else { ERROR }
                }
            }
        }
    })
}

/// Marks every item expired.
///
/// # Safety
/// `zone` as for `get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_flush_all(zone: *mut c_void) -> c_int {
    catch(ERROR, || {
        // SAFETY: per the contract above.
        match unsafe { dict_and_key(zone, ptr::null(), 0) } {
            Some((dict, _)) => {
                dict.flush_all();
                OK
            }
            None => ERROR,
        }
    })
}

/// Milliseconds left for `key` (0: never expires), NGX_DECLINED when absent.
///
/// # Safety
/// `zone` as for `get`, `key` readable for `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_get_ttl(
    zone: *mut c_void,
    key: *const u8,
    key_len: usize,
) -> c_long {
    catch(DECLINED as c_long, || {
        // SAFETY: per the contract above.
        match unsafe { dict_and_key(zone, key, key_len) } {
            Some((dict, key)) => dict.ttl(key).map_or(DECLINED as c_long, |ms| ms as c_long),
            None => DECLINED as c_long,
        }
    })
}

/// Sets the expiry of `key` to `exptime` ms from now (0: never).
///
/// # Safety
/// `zone` as for `get`, `key` readable for `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_set_expire(
    zone: *mut c_void,
    key: *const u8,
    key_len: usize,
    exptime: c_long,
) -> c_int {
    catch(ERROR, || {
        // SAFETY: per the contract above.
        match unsafe { dict_and_key(zone, key, key_len) } {
            Some((dict, key)) if dict.set_expire(key, exptime.max(0) as u64) => OK,
            Some(_) => DECLINED,
            None => ERROR,
        }
    })
}

/// The zone's size in bytes.
///
/// # Safety
/// `zone` as for `get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_capacity(zone: *mut c_void) -> usize {
    catch(0, || {
        // SAFETY: `zone` is null or a Zone of ours (the contract above).
        unsafe { zone.cast::<Zone>().as_ref() }.map_or(0, |z| z.capacity())
    })
}

/// The zone's free pages, in bytes.
///
/// # Safety
/// `zone` as for `get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_shdict_free_space(zone: *mut c_void) -> usize {
    catch(0, || {
        // SAFETY: per the contract above.
        unsafe { dict_and_key(zone, ptr::null(), 0) }.map_or(0, |(d, _)| d.free_space())
    })
}
