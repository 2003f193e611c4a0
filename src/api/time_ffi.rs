//! `ngx.now`, `time`, `today`, `localtime`, `utctime`, `update_time`,
//! `http_time`, `cookie_time`, `parse_http_time` and lua-resty-core's
//! `monotonic_msec` as C functions for
//! LuaJIT's FFI, with the names and signatures of lua-nginx-module's
//! `ngx_http_lua_ffi_*` time functions: our Lua wrappers (`lua/time.lua`)
//! call them from compiled traces, and Lua code written against
//! lua-nginx-module's ABI (lua-resty-core's `resty.core.time`) runs on them
//! unchanged. They read nginx's cached time and write into the caller's
//! buffer; none allocates, none raises.

use std::ffi::{c_int, c_long};
use std::mem::MaybeUninit;

use nginx_sys::{
    NGX_ERROR, ngx_cached_time, ngx_gmtime, ngx_http_cookie_time, ngx_http_time, ngx_parse_http_time,
    ngx_time_t, ngx_time_update, ngx_tm_t, time_t,
};

use crate::glue::catch;

fn cached() -> ngx_time_t {
    // SAFETY: nginx keeps ngx_cached_time pointing at a valid slot; only
    // the event loop's thread calls these functions.
    unsafe { *ngx_cached_time }
}

fn broken_down(sec: time_t) -> ngx_tm_t {
    let mut tm = MaybeUninit::<ngx_tm_t>::zeroed();
    // SAFETY: ngx_gmtime fills the struct (month 1-12, full year).
    unsafe {
        ngx_gmtime(sec, tm.as_mut_ptr());
        tm.assume_init()
    }
}

fn local_sec() -> time_t {
    let t = cached();
    t.sec + t.gmtoff as time_t * 60
}

/// `v` as `N` decimal digits, zero-padded, at the start of `out`.
fn digits<const N: usize>(out: &mut [u8], mut v: c_int) {
    for d in out[..N].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// "YYYY-MM-DD" into the first 10 bytes of `out`.
fn write_ymd(out: &mut [u8], tm: &ngx_tm_t) {
    digits::<4>(out, tm.tm_year);
    out[4] = b'-';
    digits::<2>(&mut out[5..], tm.tm_mon);
    out[7] = b'-';
    digits::<2>(&mut out[8..], tm.tm_mday);
}

/// "YYYY-MM-DD HH:MM:SS" into the first 19 bytes of `out`.
fn write_ymd_hms(out: &mut [u8], tm: &ngx_tm_t) {
    write_ymd(out, tm);
    out[10] = b' ';
    digits::<2>(&mut out[11..], tm.tm_hour);
    out[13] = b':';
    digits::<2>(&mut out[14..], tm.tm_min);
    out[16] = b':';
    digits::<2>(&mut out[17..], tm.tm_sec);
}

#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_now() -> f64 {
    let t = cached();
    t.sec as f64 + t.msec as f64 / 1000.0
}

#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_time() -> c_long {
    cached().sec as c_long
}

/// nginx's cached monotonic clock in milliseconds (moved by
/// `ngx.update_time()` and each event loop turn): lua-resty-core's
/// `resty.core.time.monotonic_msec`.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_monotonic_msec() -> c_long {
    // SAFETY: nginx's clock globals are only written by the event loop's
    // thread, the one Lua code runs on
    unsafe { nginx_sys::ngx_current_msec as c_long }
}

#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_update_time() {
    // SAFETY: nginx's time cache is updated by the event loop's thread only,
    // the one Lua code runs on.
    unsafe { ngx_time_update() }
}

/// # Safety
/// `buf` has room for 10 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_today(buf: *mut u8) {
    // SAFETY: the caller gives 10 writable bytes
    let out = unsafe { std::slice::from_raw_parts_mut(buf, 10) };
    catch((), || write_ymd(out, &broken_down(local_sec())));
}

/// # Safety
/// `buf` has room for 19 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_localtime(buf: *mut u8) {
    // SAFETY: the caller gives 19 writable bytes
    let out = unsafe { std::slice::from_raw_parts_mut(buf, 19) };
    catch((), || write_ymd_hms(out, &broken_down(local_sec())));
}

/// # Safety
/// `buf` has room for 19 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_utctime(buf: *mut u8) {
    // SAFETY: the caller gives 19 writable bytes
    let out = unsafe { std::slice::from_raw_parts_mut(buf, 19) };
    catch((), || write_ymd_hms(out, &broken_down(cached().sec)));
}

/// The cookie date of `t`; its length.
///
/// # Safety
/// `buf` has room for the longest cookie date (a 4-digit year: 29 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_cookie_time(buf: *mut u8, t: c_long) -> c_int {
    // SAFETY: the caller gives room for nginx's cookie date
    let end = unsafe { ngx_http_cookie_time(buf, t as time_t) };
    // SAFETY: `end` points into `buf`, past the text just written
    (unsafe { end.offset_from(buf) }) as c_int
}

/// # Safety
/// `buf` has room for an HTTP date (29 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_http_time(buf: *mut u8, t: c_long) {
    // SAFETY: the caller gives room for nginx's HTTP date
    unsafe { ngx_http_time(buf, t as time_t) };
}

/// The seconds of an HTTP date, or `NGX_ERROR` (-1) in `*time` when
/// `str` is not one.
///
/// # Safety
/// `str` is readable for `len` bytes; `time` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_parse_http_time(str: *const u8, len: usize, time: *mut c_long) {
    // SAFETY: ngx_parse_http_time only reads the `len` bytes at `str`
    let t = unsafe { ngx_parse_http_time(str.cast_mut(), len) };
    // SAFETY: the caller gives a writable long
    unsafe {
        *time = if t == NGX_ERROR as time_t {
            NGX_ERROR as c_long
        } else {
            t as c_long
        }
    };
}
