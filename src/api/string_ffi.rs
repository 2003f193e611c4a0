//! `ngx.md5`, `md5_bin`, `sha1_bin`, `crc32_short`/`long`,
//! `encode_base64`/`decode_base64` and `escape_uri`/`unescape_uri` as C
//! functions for LuaJIT's FFI, with the names and signatures of
//! lua-nginx-module's `ngx_http_lua_ffi_*` functions: our Lua wrappers
//! (`lua/string.lua`) call them from compiled traces, and Lua code written
//! against lua-nginx-module's ABI (lua-resty-core's `resty.core.hash`,
//! `base64` and `uri`) runs on them unchanged. Each reads `len` bytes at
//! `src` and writes into the caller's buffer `dst`, sized as the function
//! says; none allocates, none raises.

use std::ffi::c_int;

use nginx_sys::{NGX_OK, ngx_decode_base64, ngx_encode_base64, ngx_str_t};

use crate::glue::{catch, digest, escape};

/// The `len` bytes at `src` (which may be null when `len` is 0).
///
/// # Safety
/// `src` is readable for `len` bytes and stays so while the slice is used.
unsafe fn input<'a>(src: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract
    unsafe { std::slice::from_raw_parts(src, len) }
}

/// `dst` as a slice of `len` writable bytes.
///
/// # Safety
/// `dst` is writable for `len` bytes, and no other reference to them lives.
unsafe fn output<'a>(dst: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: the caller's contract
    unsafe { std::slice::from_raw_parts_mut(dst, len) }
}

/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for 16.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_md5_bin(src: *const u8, len: usize, dst: *mut u8) {
    // SAFETY: the caller's contract
    let (s, d) = unsafe { (input(src, len), output(dst, 16)) };
    catch((), || d.copy_from_slice(&digest::md5(s)));
}

/// The hex MD5 (32 bytes).
///
/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for 32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_md5(src: *const u8, len: usize, dst: *mut u8) {
    // SAFETY: the caller's contract
    let (s, d) = unsafe { (input(src, len), output(dst, 32)) };
    catch((), || d.copy_from_slice(&digest::hex16(&digest::md5(s))));
}

/// 1: nginx always has SHA-1 here.
///
/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for 20.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_sha1_bin(src: *const u8, len: usize, dst: *mut u8) -> c_int {
    // SAFETY: the caller's contract
    let (s, d) = unsafe { (input(src, len), output(dst, 20)) };
    catch(0, || {
        d.copy_from_slice(&digest::sha1(s));
        1
    })
}

/// # Safety
/// `src` is readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_crc32_short(src: *const u8, len: usize) -> u32 {
    // SAFETY: the caller's contract
    escape::crc32(unsafe { input(src, len) })
}

/// # Safety
/// `src` is readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_crc32_long(src: *const u8, len: usize) -> u32 {
    // SAFETY: the caller's contract
    escape::crc32(unsafe { input(src, len) })
}

/// The base64 of `src` in `dst`, without its `=` padding when
/// `no_padding`; its length.
///
/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for
/// `(len + 2) / 3 * 4` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_encode_base64(
    src: *const u8,
    len: usize,
    dst: *mut u8,
    no_padding: c_int,
) -> usize {
    let mut from = ngx_str_t {
        len,
        data: src.cast_mut(),
    };
    let mut to = ngx_str_t { len: 0, data: dst };
    // SAFETY: nginx reads `len` bytes at `src` and writes the encoded
    // length at `dst`, for which the caller gives room
    unsafe { ngx_encode_base64(&mut to, &mut from) };
    if no_padding != 0 {
        // SAFETY: `to` is the text just written at `dst`
        let out = unsafe { output(dst, to.len) };
        to.len -= out.iter().rev().take_while(|&&c| c == b'=').count();
    }
    to.len
}

/// 1 and the decoded length in `*dlen`, or 0 when `src` is not base64.
///
/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for
/// `(len + 3) / 4 * 3` bytes; `dlen` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_decode_base64(
    src: *const u8,
    len: usize,
    dst: *mut u8,
    dlen: *mut usize,
) -> c_int {
    let mut from = ngx_str_t {
        len,
        data: src.cast_mut(),
    };
    let mut to = ngx_str_t { len: 0, data: dst };
    // SAFETY: nginx reads `len` bytes at `src` and writes at most the
    // decoded length at `dst`, for which the caller gives room
    let rc = unsafe { ngx_decode_base64(&mut to, &mut from) };
    // SAFETY: the caller gives a writable size_t
    unsafe { *dlen = to.len };
    (rc == NGX_OK as isize) as c_int
}

/// The length of `src` escaped as `ngx.escape_uri(s, kind)` does (`len`
/// itself for a kind it does not know).
///
/// # Safety
/// `src` is readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_uri_escaped_length(
    src: *const u8,
    len: usize,
    kind: c_int,
) -> usize {
    // SAFETY: the caller's contract
    let s = unsafe { input(src, len) };
    match escape::escape_kind(kind.into()) {
        Some(must) => escape::escaped_len(s, must),
        None => len,
    }
}

/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for what
/// `ngx_http_lua_ffi_uri_escaped_length` gives for the same arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_escape_uri(src: *const u8, len: usize, dst: *mut u8, kind: c_int) {
    // SAFETY: the caller's contract
    let s = unsafe { input(src, len) };
    let must = escape::escape_kind(kind.into()).unwrap_or(|_| false);
    // SAFETY: the caller gives room for the escaped length
    let d = unsafe { output(dst, escape::escaped_len(s, must)) };
    catch((), || escape::escape_into(s, must, d));
}

/// `src` unescaped into `dst`; its length (never more than `len`).
///
/// # Safety
/// `src` is readable for `len` bytes; `dst` writable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_unescape_uri(src: *const u8, len: usize, dst: *mut u8) -> usize {
    // SAFETY: the caller's contract; `src` and `dst` may be the same
    // memory, which `copy` allows
    unsafe {
        if len > 0 {
            std::ptr::copy(src, dst, len);
        }
    }
    // SAFETY: the caller gives `len` writable bytes, now a copy of `src`
    let d = unsafe { output(dst, len) };
    catch(0, || escape::unescape_in_place(d))
}
