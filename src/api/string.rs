//! String helpers: ngx.escape_uri, unescape_uri, encode_args, decode_args,
//! encode_base64, decode_base64, decode_base64mime, md5, md5_bin, sha1_bin,
//! hmac_sha1, crc32_short, crc32_long, quote_sql_str, and the `ngx.base64`
//! module.
//!
//! Base64, MD5 and SHA-1 are nginx's own (`ngx_encode_base64*`,
//! `ngx_decode_base64*`, glue::digest); `hmac_sha1` is OpenSSL's libcrypto,
//! which /usr/sbin/nginx already links: the symbols resolve at load time like
//! nginx's own.

use std::ffi::c_int;

use nginx_sys::{
    ngx_decode_base64, ngx_decode_base64url, ngx_encode_base64, ngx_encode_base64url, ngx_str_t,
};

use super::query_args;
use crate::glue::scratch_vec::with_scratch_vec;
use crate::glue::{digest, escape};
use crate::lua::lua_fns;
use crate::lua::{
    LuaRet, arg_error, check_bytes, check_number, ffi, lua_State, push_bytes, set_fn, to_bytes, type_name,
};

unsafe extern "C" {
    fn EVP_sha1() -> *const std::ffi::c_void;
    fn HMAC(
        evp: *const std::ffi::c_void,
        key: *const std::ffi::c_void,
        key_len: c_int,
        d: *const u8,
        n: usize,
        md: *mut u8,
        md_len: *mut u32,
    ) -> *mut u8;
}

lua_fns! {
    escape_uri => escape_uri_impl,
    unescape_uri => unescape_uri_impl,
    encode_args => encode_args_impl,
    decode_args => decode_args_impl,
    encode_base64 => encode_base64_impl,
    decode_base64 => decode_base64_impl,
    decode_base64mime => decode_base64mime_impl,
    md5 => md5_impl,
    md5_bin => md5_bin_impl,
    sha1_bin => sha1_bin_impl,
    hmac_sha1 => hmac_sha1_impl,
    crc32_short => crc32_impl,
    crc32_long => crc32_long_impl,
    quote_sql_str => quote_sql_str_impl,
    encode_base64url => encode_base64url_impl,
    decode_base64url => decode_base64url_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"escape_uri", escape_uri);
        set_fn(l, -1, c"unescape_uri", unescape_uri);
        set_fn(l, -1, c"encode_args", encode_args);
        set_fn(l, -1, c"decode_args", decode_args);
        set_fn(l, -1, c"encode_base64", encode_base64);
        set_fn(l, -1, c"decode_base64", decode_base64);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"decode_base64mime", decode_base64mime);
        set_fn(l, -1, c"md5", md5);
        set_fn(l, -1, c"md5_bin", md5_bin);
        set_fn(l, -1, c"sha1_bin", sha1_bin);
        set_fn(l, -1, c"hmac_sha1", hmac_sha1);
        set_fn(l, -1, c"crc32_short", crc32_short);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"crc32_long", crc32_long);
        set_fn(l, -1, c"quote_sql_str", quote_sql_str);
    }
}

/// `require "ngx.base64"`, registered in package.preload.
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install_base64_module(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
        crate::lua::get_raw(l, -1, c"loaded");
        ffi::lua_createtable(l, 0, 3);
        set_fn(l, -1, c"encode_base64url", encode_base64url);
        set_fn(l, -1, c"decode_base64url", decode_base64url);
        push_bytes(l, b"0.0.1");
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::set_raw(l, -2, c"version");
        crate::lua::set_raw(l, -2, c"ngx.base64");
        ffi::lua_pop(l, 2);
    }
}

/// The number of arguments, or lua-nginx-module's error when it is not
/// within `min..=max`.
///
/// # Safety
/// `l` must be the running state of an API call.
unsafe fn expect_args(l: *mut lua_State, min: c_int, max: c_int, what: &str) -> Result<c_int, String> {
    // SAFETY: l is the running state of the API call (caller's contract).
    let n = unsafe { ffi::lua_gettop(l) };
    if n < min || n > max {
        return Err(format!(
            "expecting {what} argument{}",
            if max > 1 { "s" } else { "" }
        ));
    }
    Ok(n)
}

/// A string argument where nil stands for "" (lua-nginx-module's C API).
unsafe fn bytes_or_empty<'a>(l: *mut lua_State, idx: c_int, fname: &str) -> Result<&'a [u8], String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_isnil(l, idx) } != 0 {
        Ok(b"")
    } else {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { check_bytes(l, idx, fname) }
    }
}

unsafe fn escape_uri_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 2, "one or two") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { bytes_or_empty(l, 1, "escape_uri") }?;
    // lua-resty-core's checks and texts (raised at its level 3); nil is the
    // default type.
    // SAFETY: `l` is the running state Lua called this API function with
    let kind = match unsafe { ffi::lua_type(l, 2) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => 2,
        ffi::LUA_TNUMBER => {
            // SAFETY: `l` is the running state Lua called this API function with
            let v = unsafe { ffi::lua_tonumber(l, 2) };
            if !(0.0..=6.0).contains(&v) {
                // The number as Lua writes it (a converted copy).
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { ffi::lua_pushvalue(l, 2) };
                let text =
                    // SAFETY: `l` is the running state Lua called this API function with
                    String::from_utf8_lossy(unsafe { crate::lua::to_bytes(l, -1) }.unwrap_or_default()).into_owned();
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { ffi::lua_pop(l, 1) };
                let msg = format!("\"type\" {text} out of range");
                // SAFETY: `l` is the running state Lua called this API function with
                return Err(unsafe { crate::lua::error_at_level(l, 2, &msg) });
            }
            v as i64
        }
        // SAFETY: `l` is the running state Lua called this API function with
        _ => return Err(unsafe { crate::lua::error_at_level(l, 2, "\"type\" is not a number") }),
    };
    let out = escape::escape_uri_kind(s, kind).ok_or("bad escape type")?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &out) };
    Ok(1)
}

unsafe fn unescape_uri_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { bytes_or_empty(l, 1, "unescape_uri") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &escape::unescape_uri(s)) };
    Ok(1)
}

unsafe fn encode_args_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TTABLE {
        return Err(arg_error(
            1,
            // SAFETY: `l` is the running state Lua called this API function with
            &format!("table expected, got {}", unsafe { type_name(l, 1) }),
        ));
    }
    with_scratch_vec(|out| {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { query_args::encode_into(l, 1, &query_args::ENCODE_ARGS, out) }?;
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { push_bytes(l, out) };
        Ok(1)
    })
}

/// Pushes the table at `reuse` emptied, or a new one sized for `hint`
/// pairs, for [`add_arg`]: `get_uri_args(max, tab)` and
/// `get_post_args(max, tab)` reuse `tab`.
///
/// # Safety
/// `l` must be a valid state; `reuse`, when given, a table's index.
pub unsafe fn begin_args_table(l: *mut lua_State, reuse: Option<c_int>, hint: usize) {
    let Some(t) = reuse else {
        // SAFETY: `l` is the running state (callers' duty)
        return unsafe { ffi::lua_createtable(l, 0, hint.min(c_int::MAX as usize) as c_int) };
    };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pushvalue(l, t);
        ffi::lua_pushnil(l);
    }
    // SAFETY: `l` is the running state (callers' duty)
    while unsafe { ffi::lua_next(l, -2) } != 0 {
        // Clearing a field that exists is allowed during the traversal.
        // SAFETY: `l` is the running state (callers' duty)
        unsafe {
            ffi::lua_pop(l, 1);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, -4);
        }
    }
}

/// Adds a pair to the args table on top: a repeated key becomes an array;
/// a bare key's value is `true`.
///
/// # Safety
/// `l` must be a valid state with the args table on top.
pub unsafe fn add_arg(l: *mut lua_State, k: &[u8], v: Option<&[u8]>) {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        push_bytes(l, k);
        ffi::lua_rawget(l, -2);
    }
    // SAFETY: `l` is the running state (callers' duty)
    let prev = unsafe { ffi::lua_type(l, -1) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pop(l, 1);
        push_bytes(l, k);
    }
    match prev {
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TNIL => unsafe { push_value(l, v) },
        ffi::LUA_TTABLE => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_rawget(l, -2) };
            // SAFETY: `l` is the running state (callers' duty)
            let n = unsafe { ffi::lua_objlen(l, -1) };
            // SAFETY: `l` is the running state (callers' duty)
            unsafe {
                push_value(l, v);
                ffi::lua_rawseti(l, -2, (n + 1) as _);
                ffi::lua_pop(l, 1);
            }
            return;
        }
        _ => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe {
                ffi::lua_createtable(l, 4, 0);
                push_bytes(l, k);
                ffi::lua_rawget(l, -4);
                ffi::lua_rawseti(l, -2, 1);
                push_value(l, v);
                ffi::lua_rawseti(l, -2, 2);
            }
        }
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_rawset(l, -3) };
}

unsafe fn push_value(l: *mut lua_State, v: Option<&[u8]>) {
    match v {
        // SAFETY: `l` is the running state (callers' duty)
        Some(v) => unsafe { push_bytes(l, v) },
        // SAFETY: `l` is the running state (callers' duty)
        None => unsafe { ffi::lua_pushboolean(l, 1) },
    }
}

/// The `max` argument of the args/headers getters: default 100, 0 or less
/// means no limit.
///
/// # Safety
/// `l` must be a running state.
pub unsafe fn max_arg(l: *mut lua_State, idx: c_int, fname: &str) -> Result<usize, String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_isnoneornil(l, idx) } != 0 {
        return Ok(100);
    }
    // SAFETY: `l` is the running state (callers' duty)
    let n = unsafe { check_number(l, idx, fname) }?;
    Ok(if n <= 0.0 { 0 } else { n as usize })
}

unsafe fn decode_args_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 2, "one or two") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let t = unsafe { ffi::lua_type(l, 1) };
    if !matches!(t, ffi::LUA_TSTRING | ffi::LUA_TNUMBER) {
        return Err(arg_error(
            1,
            // SAFETY: `l` is the running state Lua called this API function with
            &format!("string expected, got {}", unsafe { type_name(l, 1) }),
        ));
    }
    // SAFETY: a string or a number, checked above: lua_tolstring gives its
    // bytes, alive while the argument stays on the stack
    let s = unsafe { to_bytes(l, 1) }.unwrap_or_default();
    // SAFETY: `l` is the running state Lua called this API function with
    let max = unsafe { max_arg(l, 2, "decode_args") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { begin_args_table(l, None, escape::arg_count_hint(s, max)) };
    // The pairs are unescaped in place, in a copy (the Lua string stays).
    let truncated = with_scratch_vec(|buf| {
        buf.extend_from_slice(s);
        // SAFETY: `l` is the running state with the args table on top
        escape::for_each_arg(buf, max, |k, v| unsafe { add_arg(l, k, v) })
    });
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { super::req_args::push_truncated(l, truncated, max) })
}

fn nstr(b: &[u8]) -> ngx_str_t {
    ngx_str_t {
        len: b.len(),
        data: b.as_ptr() as *mut u8,
    }
}

fn base64_encode(s: &[u8], url: bool) -> Vec<u8> {
    let mut out = vec![0u8; s.len().div_ceil(3) * 4];
    let mut dst = ngx_str_t {
        len: 0,
        data: out.as_mut_ptr(),
    };
    // SAFETY: dst has room for the encoded length of src.
    unsafe {
        if url {
            ngx_encode_base64url(&mut dst, &mut nstr(s));
        } else {
            ngx_encode_base64(&mut dst, &mut nstr(s));
        }
    }
    out.truncate(dst.len);
    out
}

fn base64_decode(s: &[u8], url: bool) -> Option<Vec<u8>> {
    let mut out = vec![0u8; s.len().div_ceil(4) * 3 + 3];
    let mut dst = ngx_str_t {
        len: 0,
        data: out.as_mut_ptr(),
    };
    // SAFETY: dst has room for the decoded length of src.
    let rc = unsafe {
        if url {
            ngx_decode_base64url(&mut dst, &mut nstr(s))
        } else {
            ngx_decode_base64(&mut dst, &mut nstr(s))
        }
    };
    if rc != nginx_sys::NGX_OK as isize {
        return None;
    }
    out.truncate(dst.len);
    Some(out)
}

unsafe fn encode_base64_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = (unsafe { expect_args(l, 1, 2, "one or two") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { bytes_or_empty(l, 1, "encode_base64") }?;
    let no_padding = if n == 2 {
        // SAFETY: `l` is the running state Lua called this API function with
        if unsafe { ffi::lua_type(l, 2) } != ffi::LUA_TBOOLEAN {
            return Err(format!(
                "bad argument #2 to 'encode_base64' (boolean expected, got {})",
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { type_name(l, 2) }
            ));
        }
        // SAFETY: `l` is the running state Lua called this API function with
        (unsafe { ffi::lua_toboolean(l, 2) }) != 0
    } else {
        false
    };
    let mut out = base64_encode(s, false);
    if no_padding {
        while out.last() == Some(&b'=') {
            out.pop();
        }
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &out) };
    Ok(1)
}

unsafe fn decode_base64_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { base64_input(l) }?;
    match base64_decode(s, false) {
        // SAFETY: `l` is the running state Lua called this API function with
        Some(v) => unsafe { push_bytes(l, &v) },
        // SAFETY: `l` is the running state Lua called this API function with
        None => unsafe { ffi::lua_pushnil(l) },
    }
    Ok(1)
}

unsafe fn decode_base64mime_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { base64_input(l) }?;
    match base64_decode(&escape::base64_mime_filter(s), false) {
        // SAFETY: `l` is the running state Lua called this API function with
        Some(v) => unsafe { push_bytes(l, &v) },
        // SAFETY: `l` is the running state Lua called this API function with
        None => unsafe { ffi::lua_pushnil(l) },
    }
    Ok(1)
}

/// The argument of the base64 decoders: as lua-resty-core's, a string
/// only (a number is not converted; extra arguments are ignored).
unsafe fn base64_input<'a>(l: *mut lua_State) -> Result<&'a [u8], String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TSTRING {
        return Err("string argument only".into());
    }
    // SAFETY: as above; argument 1 is a string
    Ok(unsafe { crate::lua::to_bytes(l, 1) }.unwrap_or_default())
}

unsafe fn string_only<'a>(l: *mut lua_State) -> Result<&'a [u8], String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TSTRING {
        return Err("must provide a string".into());
    }
    // SAFETY: `l` is the running state (callers' duty)
    Ok(unsafe { crate::lua::to_bytes(l, 1) }.unwrap_or_default())
}

unsafe fn encode_base64url_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { string_only(l) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &base64_encode(s, true)) };
    Ok(1)
}

unsafe fn decode_base64url_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { string_only(l) }?;
    match base64_decode(s, true) {
        Some(v) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { push_bytes(l, &v) };
            Ok(1)
        }
        None => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe {
                ffi::lua_pushnil(l);
                push_bytes(l, b"invalid input");
            }
            Ok(2)
        }
    }
}

unsafe fn md5_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { bytes_or_empty(l, 1, "md5") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &digest::hex16(&digest::md5(s))) };
    Ok(1)
}

unsafe fn md5_bin_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { bytes_or_empty(l, 1, "md5_bin") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &digest::md5(s)) };
    Ok(1)
}

unsafe fn sha1_bin_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { bytes_or_empty(l, 1, "sha1_bin") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &digest::sha1(s)) };
    Ok(1)
}

unsafe fn hmac_sha1_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 2, 2, "two") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let key = unsafe { check_bytes(l, 1, "hmac_sha1") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { check_bytes(l, 2, "hmac_sha1") }?;
    let key_len = c_int::try_from(key.len()).map_err(|_| "key too long".to_string())?;
    let mut md = [0u8; 64];
    let mut len = 0u32;
    // SAFETY: `key` and `s` are live slices of the lengths given; `md` has room for any digest (64 bytes)
    let out = unsafe {
        HMAC(
            EVP_sha1(),
            key.as_ptr().cast(),
            key_len,
            s.as_ptr(),
            s.len(),
            md.as_mut_ptr(),
            &mut len,
        )
    };
    if out.is_null() {
        return Err("hmac_sha1 failed".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &md[..len as usize]) };
    Ok(1)
}

unsafe fn crc32_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { crc32_of(l, "crc32_short") }
}

unsafe fn crc32_long_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { crc32_of(l, "crc32_long") }
}

unsafe fn crc32_of(l: *mut lua_State, fname: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state (callers' duty)
    let s = unsafe { check_bytes(l, 1, fname) }?;
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushnumber(l, escape::crc32(s) as f64) };
    Ok(1)
}

unsafe fn quote_sql_str_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { expect_args(l, 1, 1, "one") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { check_bytes(l, 1, "quote_sql_str") }?;
    with_scratch_vec(|out| {
        escape::quote_sql_append(s, out);
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { push_bytes(l, out) };
    });
    Ok(1)
}
