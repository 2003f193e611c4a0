//! ngx.say, ngx.print, ngx.flush, ngx.eof, ngx.send_headers.

use std::ffi::c_int;
use std::mem::MaybeUninit;

use crate::lua::lua_fns;
use crate::lua::{LuaRet, ffi, lua_State, push_cstr, raw_error, set_fn, string_bytes, to_bytes, type_name};
use crate::runtime::context::{self, REQUEST_YIELDABLE};
use crate::runtime::ctx;
use crate::runtime::output;
use crate::runtime::scheduler::yield_wait;
use crate::runtime::write_wait;

lua_fns! {
    say => say_impl,
    print => print_impl,
    flush => flush_impl,
    eof => eof_impl,
    send_headers => send_headers_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"say", say) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"print", print) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"flush", flush) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"eof", eof) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"send_headers", send_headers) };
}

/// Appends the printable form of the value at `idx` to `out`, as ngx.print
/// accepts it: strings, numbers, booleans, nil, ngx.null and array tables.
///
/// # Safety
/// `idx` must be a valid absolute index of `l`.
pub unsafe fn append_value(
    l: *mut lua_State,
    idx: c_int,
    arg: c_int,
    fname: &str,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { append_nested(l, idx, arg, fname, out, 0) }
}

/// Nesting deeper than this fails as the C module fails when the Lua
/// stack cannot grow (a table that contains itself); it also bounds our
/// own recursion on the C stack.
const MAX_DEPTH: usize = 1000;

unsafe fn append_nested(
    l: *mut lua_State,
    idx: c_int,
    arg: c_int,
    fname: &str,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING => out.extend_from_slice(unsafe { to_bytes(l, idx) }.unwrap_or_default()),
        ffi::LUA_TNUMBER => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushvalue(l, idx) };
            // SAFETY: `l` is the running state (callers' duty)
            out.extend_from_slice(unsafe { to_bytes(l, -1) }.unwrap_or_default());
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 1) };
        }
        ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
        ffi::LUA_TBOOLEAN => {
            // SAFETY: `l` is the running state (callers' duty)
            out.extend_from_slice(if unsafe { ffi::lua_toboolean(l, idx) } != 0 {
                b"true"
            } else {
                b"false"
            })
        }
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TLIGHTUSERDATA if unsafe { ffi::lua_touserdata(l, idx) }.is_null() => {
            out.extend_from_slice(b"null")
        }
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TTABLE => unsafe { append_table(l, idx, arg, fname, out, depth) }?,
        _ => {
            return Err(format!(
                "bad argument #{arg} to '{fname}' (string, number, boolean, nil, ngx.null, or array table expected, got {})",
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { type_name(l, idx) }
            ));
        }
    }
    Ok(())
}

unsafe fn append_table(
    l: *mut lua_State,
    idx: c_int,
    arg: c_int,
    fname: &str,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    if depth >= MAX_DEPTH || unsafe { ffi::lua_checkstack(l, 3) } == 0 {
        // LuaJIT's own text, without a position, as the C module raises it.
        // SAFETY: `l` is the running state (callers' duty)
        return Err(unsafe { raw_error(l, "stack overflow") });
    }
    // SAFETY: `l` is the running state (callers' duty)
    let n = unsafe { ffi::lua_objlen(l, idx) };
    // Only array tables: every key must be an integer in 1..=n.
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushnil(l) };
    // SAFETY: `l` is the running state (callers' duty)
    while unsafe { ffi::lua_next(l, idx) } != 0 {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the running state (callers' duty)
        let is_index = unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TNUMBER && {
            // SAFETY: `l` is the running state (callers' duty)
            let k = unsafe { ffi::lua_tonumber(l, -1) };
            k >= 1.0 && k <= n as f64 && k.fract() == 0.0
        };
        if !is_index {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 1) };
            return Err(format!(
                "bad argument #{arg} to '{fname}' (non-array table found)"
            ));
        }
    }
    for i in 1..=n {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_rawgeti(l, idx, i as _) };
        // SAFETY: `l` is the running state (callers' duty)
        let r = unsafe { append_nested(l, ffi::lua_gettop(l), arg, fname, out, depth + 1) };
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pop(l, 1) };
        r?;
    }
    Ok(())
}

unsafe fn collect(l: *mut lua_State, fname: &str) -> Result<Vec<u8>, String> {
    // SAFETY: `l` is the running state (callers' duty)
    let n = unsafe { ffi::lua_gettop(l) };
    let mut out = Vec::new();
    for i in 1..=n {
        // SAFETY: `l` is the running state (callers' duty)
        (unsafe { append_value(l, i, i, fname, &mut out) })?;
    }
    Ok(out)
}

/// Pushes `1` or `nil, err` as the output functions return.
unsafe fn push_result(l: *mut lua_State, r: Result<(), &'static str>) -> c_int {
    match r {
        Ok(()) => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushinteger(l, 1) };
            1
        }
        Err(e) => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushnil(l) };
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { push_cstr(l, &std::ffi::CString::new(e).unwrap_or_default()) };
            2
        }
    }
}

/// The arguments as byte slices when all are strings or numbers (the
/// common case), borrowed from the Lua stack: no copy before the one into
/// the output buffer.
unsafe fn plain_parts<'a, 's>(
    l: *mut lua_State,
    n: c_int,
    newline: bool,
    parts: &'s mut [MaybeUninit<&'a [u8]>; 16],
) -> Option<&'s [&'a [u8]]> {
    if n >= 16 {
        return None;
    }
    // (slots filled as they are used: a say of one string touches two)
    for i in 1..=n {
        // SAFETY: `l` is the running state (callers' duty)
        let t = unsafe { ffi::lua_type(l, i) };
        if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
            return None;
        }
        parts[i as usize - 1].write(if t == ffi::LUA_TSTRING {
            // SAFETY: `l` is the running state (callers' duty), a string at `i`
            unsafe { string_bytes(l, i) }
        } else {
            // Numbers become strings in place: these slots are our arguments.
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { to_bytes(l, i) }.unwrap_or_default()
        });
    }
    let mut k = n as usize;
    if newline {
        parts[k].write(b"\n");
        k += 1;
    }
    // SAFETY: the first k slots were written above; MaybeUninit<T> has T's layout
    Some(unsafe { std::slice::from_raw_parts(parts.as_ptr().cast::<&[u8]>(), k) })
}

unsafe fn write_args(l: *mut lua_State, fname: &str, newline: bool) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    let ctx = ctx::request()?;
    if super::req_socket::raw_acquired(ctx) {
        // SAFETY: `l` is the running state (callers' duty)
        return Ok(unsafe { push_result(l, Err(RAW_ACQUIRED)) });
    }
    // SAFETY: `ctx.r` is the live request of the running context
    if unsafe { (*ctx.r).header_only() } != 0 {
        // SAFETY: `l` is the running state (callers' duty)
        return Ok(unsafe { push_result(l, Err("header only")) });
    }
    // SAFETY: `l` is the running state (callers' duty)
    let mut slots = [const { MaybeUninit::uninit() }; 16];
    // SAFETY: `l` is the running state (callers' duty)
    if let Some(parts) = unsafe { plain_parts(l, ffi::lua_gettop(l), newline, &mut slots) } {
        ctx.seen_body_data |= parts.iter().any(|p| !p.is_empty());
        // SAFETY: `l` is the running state (callers' duty)
        return Ok(unsafe { push_result(l, output::write_parts(ctx, parts, false)) });
    }
    // SAFETY: `l` is the running state (callers' duty)
    let mut data = unsafe { collect(l, fname) }?;
    if newline {
        data.push(b'\n');
    }
    ctx.seen_body_data |= !data.is_empty();
    // SAFETY: `l` is the running state (callers' duty)
    Ok(unsafe { push_result(l, output::write(ctx, &data, false)) })
}

/// The error of the output functions once `ngx.req.socket(true)` is taken.
const RAW_ACQUIRED: &str = "raw request socket acquired";

unsafe fn say_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { write_args(l, "say", true) }
}

unsafe fn print_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { write_args(l, "print", false) }
}

unsafe fn flush_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let wait = unsafe { ffi::lua_gettop(l) } >= 1 && unsafe { ffi::lua_toboolean(l, 1) } != 0;
    let ctx = ctx::request()?;
    if super::req_socket::raw_acquired(ctx) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_result(l, Err(RAW_ACQUIRED)) });
    }
    // SAFETY: `ctx.r` is the live request of the running context
    if let Some(e) = unsafe { nothing_to_flush(ctx, wait) } {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_result(l, Err(e)) });
    }
    if let Err(e) = output::flush(ctx) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_result(l, Err(e)) });
    }
    if !wait || !write_wait::pending(ctx) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_result(l, Ok(())) });
    }
    let Some(co) = ctx.running_thread().map(|t| t.co) else {
        return Err("no request thread to suspend".into());
    };
    // SAFETY: ctx.r is live (RequestCtx's invariant)
    let c = unsafe { (*ctx.r).connection };
    // SAFETY: c is the live request's connection.
    let (buffered, delayed) = unsafe { ((*c).buffered(), (*(*c).write).delayed()) };
    crate::glue::log::log_debug_http!(
        ctx.log(),
        "lua flush requires waiting: buffered {buffered:#x}, delayed:{delayed}"
    );
    // Armed before it is stored: the thread's borrow ends before arm()
    // takes the whole ctx, and starts again after.
    let wait = write_wait::arm(ctx, co);
    let Some(t) = ctx.running_thread() else {
        return Err("no request thread to suspend".into());
    };
    t.wait = Some(wait.into());
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

/// Why ngx.flush has nothing to do, in lua-nginx-module's words.
unsafe fn nothing_to_flush(ctx: &ctx::RequestCtx, wait: bool) -> Option<&'static str> {
    let r = ctx.r;
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { (*r).header_only() } != 0 {
        return Some("header only");
    }
    if ctx.eof_sent {
        return Some("seen eof");
    }
    if ctx.buffering {
        crate::glue::log::log_debug_http!(
            // SAFETY: `r` is a live request (callers' duty)
            unsafe { (*(*r).connection).log },
            "lua http 1.0 buffering makes ngx.flush() a no-op"
        );
        return Some("buffering");
    }
    if !ctx.header_sent() || (!ctx.seen_body_data && !wait) {
        return Some("nothing to flush");
    }
    None
}

unsafe fn eof_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 0 {
        return Err("no argument is expected".into());
    }
    let ctx = ctx::request()?;
    if super::req_socket::raw_acquired(ctx) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_result(l, Err(RAW_ACQUIRED)) });
    }
    if ctx.eof_sent {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_result(l, Err("seen eof")) });
    }
    let rc = output::send_eof(ctx);
    let r = if rc == nginx_sys::NGX_ERROR as isize {
        Err("nginx output filter error")
    } else {
        Ok(())
    };
    // SAFETY: `r` is the live request of the running context
    Ok(unsafe { push_result(l, r) })
}

unsafe fn send_headers_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    let ctx = ctx::request()?;
    let rc = output::send_header_if_needed(ctx);
    let r = if rc == nginx_sys::NGX_ERROR as isize || rc > 0 {
        Err("nginx output filter error")
    } else {
        Ok(())
    };
    // SAFETY: `r` is the live request of the running context
    Ok(unsafe { push_result(l, r) })
}
