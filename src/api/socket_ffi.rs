//! The cosocket fast paths as C functions for LuaJIT's FFI: `receive` of a
//! line, a size or everything, and `send` of a string, called by our Lua
//! methods (`lua/socket.lua`) from compiled traces instead of leaving the
//! trace for a classic C function (HTTP and redis clients call them in
//! their loops). lua-nginx-module has no FFI functions for these (its
//! methods are classic C functions), hence names of our own.
//!
//! They never raise and never yield. Each returns a code: a result (left
//! where the out-pointers say, valid until the next call), "again" (the
//! operation started and waits: the Lua side yields through
//! `socket_tcp::wait`), or "declined" for anything but the plain case (a
//! wrong phase or request, a busy or closed socket, odd arguments): the Lua
//! side then calls the classic method, which raises or logs as
//! lua-nginx-module does. A declined call changed nothing.

use std::ffi::{c_int, c_void};

use crate::glue::catch;
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx;
use crate::runtime::tcp_sock::{RecvKind, Step, TcpSock, Val, Vals};

/// One string result at `*buf`/`*len`.
const FFI_OK: c_int = 0;
/// nil and the error at `*err`/`*err_len`.
const FFI_ERROR: c_int = -1;
/// The operation waits: yield through `wait`.
const FFI_AGAIN: c_int = -2;
/// nil, the error and the partial data at `*buf`/`*len`.
const FFI_ERROR_PARTIAL: c_int = -3;
/// Not the fast path's case: call the classic method.
const FFI_DECLINED: c_int = -5;

/// The socket of a socket object's `[1]` userdata, when the running
/// request may use it now. The Lua side passed only a userdata whose
/// metatable is our socket userdata's, so `ud` points at its payload.
///
/// # Safety
/// `ud` is null or the payload of a socket userdata (`*mut TcpSock`).
unsafe fn usable<'a>(ud: *mut c_void) -> Option<&'a mut TcpSock> {
    if ud.is_null() {
        return None;
    }
    let c = ctx::current()?;
    if !context::current().is(YIELDABLE) {
        return None;
    }
    // SAFETY: per the contract, the payload is the socket pointer (null
    // once collected).
    let s = unsafe { (*ud.cast::<*mut TcpSock>()).as_mut() }?;
    if s.conn.is_null() || s.dgram || s.downstream.is_some() || !super::socket_tcp::owned_by(s, c) {
        return None;
    }
    Some(s)
}

/// Runs an FFI entry point's body on the socket of `ud`, behind the catch
/// every entry point needs: `FFI_DECLINED` (the classic method then runs)
/// when the socket is not usable here or the body panicked.
///
/// # Safety
/// As for [`usable`].
unsafe fn on_socket(ud: *mut c_void, body: impl FnOnce(&mut TcpSock) -> c_int) -> c_int {
    catch(FFI_DECLINED, || {
        // SAFETY: the caller's contract
        match unsafe { usable(ud) } {
            Some(s) => body(s),
            None => FFI_DECLINED,
        }
    })
}

/// Hands the results of a finished step to the out-pointers.
///
/// # Safety
/// The out-pointers are writable.
unsafe fn results(
    s: &mut TcpSock,
    vals: Vals,
    buf: *mut *const u8,
    len: *mut usize,
    err: *mut *const u8,
    err_len: *mut usize,
) -> c_int {
    let rc = match vals.as_slice() {
        [Val::Out] => {
            let data = s.received();
            // SAFETY: the caller's out-pointers; `out` stays as is until the
            // socket's next operation.
            unsafe {
                *buf = data.as_ptr();
                *len = data.len();
            }
            return FFI_OK;
        }
        [Val::Int(n)] => {
            // SAFETY: the caller's out-pointer.
            unsafe { *len = *n as usize };
            return FFI_OK;
        }
        [Val::Nil, Val::Str(_)] => FFI_ERROR,
        [Val::Nil, Val::Str(_), Val::Str(_)] => FFI_ERROR_PARTIAL,
        // Not a shape the fast paths produce; never reached.
        _ => return FFI_DECLINED,
    };
    // Kept in the socket until the Lua side copied them (before anything
    // else runs).
    s.ffi_last = vals;
    let last = &s.ffi_last;
    // SAFETY: the caller's out-pointers; the socket keeps the bytes until
    // its next failed FFI call.
    unsafe {
        if let Val::Str(e) = &last[1] {
            *err = e.as_ptr();
            *err_len = e.len();
        }
        if let Some(Val::Str(p)) = last.get(2) {
            *buf = p.as_ptr();
            *len = p.len();
        }
    }
    rc
}

/// `sock:receive()`: `kind` 0 a line, 1 `size` bytes, 2 everything until
/// the peer closes.
///
/// # Safety
/// `ud` as in `usable`; the out-pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_ffi_socket_tcp_receive(
    ud: *mut c_void,
    kind: c_int,
    size: usize,
    buf: *mut *const u8,
    len: *mut usize,
    err: *mut *const u8,
    err_len: *mut usize,
) -> c_int {
    let body = |s: &mut TcpSock| {
        if s.read_closed || s.busy_for(true, false).is_some() {
            return FFI_DECLINED;
        }
        let kind = match kind {
            0 => RecvKind::Line,
            1 if size > 0 => RecvKind::Size(size),
            2 => RecvKind::All,
            _ => return FFI_DECLINED,
        };
        if let Some((data, n)) = s.take_buffered(&kind) {
            // SAFETY: the caller's out-pointers; the bytes stay in the read
            // buffer until the socket's next operation.
            unsafe {
                *buf = data;
                *len = n;
            }
            return FFI_OK;
        }
        match s.receive(kind) {
            Step::Wait => FFI_AGAIN,
            // SAFETY: the caller's out-pointers.
            Step::Ready(v) => unsafe { results(s, v, buf, len, err, err_len) },
        }
    };
    // SAFETY: per the contract above.
    unsafe { on_socket(ud, body) }
}

/// `sock:send(data)` of a string: on success `*len` is the bytes sent.
///
/// # Safety
/// `ud` as in `usable`; `data` holds `data_len` readable bytes; the
/// out-pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_ffi_socket_tcp_send(
    ud: *mut c_void,
    data: *const u8,
    data_len: usize,
    len: *mut usize,
    err: *mut *const u8,
    err_len: *mut usize,
) -> c_int {
    let body = |s: &mut TcpSock| {
        if s.write_closed || s.busy_for(false, true).is_some() || data.is_null() {
            return FFI_DECLINED;
        }
        // SAFETY: per the contract above.
        let bytes = unsafe { std::slice::from_raw_parts(data, data_len) };
        match s.send_slice(bytes) {
            Step::Wait => FFI_AGAIN,
            Step::Ready(v) => {
                let mut buf = std::ptr::null();
                // SAFETY: the caller's out-pointers; `buf` is ours (a send
                // has no partial data).
                unsafe { results(s, v, &mut buf, len, err, err_len) }
            }
        }
    };
    // SAFETY: per the contract above.
    unsafe { on_socket(ud, body) }
}

/// `sock:setkeepalive(timeout?, size?)`: `timeout` a number >= 0 or
/// negative for none, `size` a number >= 1 or negative for none (the Lua
/// side checked them; anything else is the classic method's). On success
/// `*len` is 1.
///
/// # Safety
/// `ud` as in `usable`; the out-pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_ffi_socket_tcp_setkeepalive(
    ud: *mut c_void,
    timeout: f64,
    size: f64,
    len: *mut usize,
    err: *mut *const u8,
    err_len: *mut usize,
) -> c_int {
    let body = |s: &mut TcpSock| {
        // As the classic method converts them.
        let timeout = (timeout >= 0.0).then_some(timeout as nginx_sys::ngx_msec_t);
        let size = (size >= 1.0).then_some((size as i64).max(1) as usize);
        let vals = s.setkeepalive(timeout, size);
        let mut buf = std::ptr::null();
        // SAFETY: the caller's out-pointers; `buf` is ours (no partial data).
        unsafe { results(s, vals, &mut buf, len, err, err_len) }
    };
    // SAFETY: per the contract above.
    unsafe { on_socket(ud, body) }
}
