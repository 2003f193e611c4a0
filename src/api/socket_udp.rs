//! `ngx.socket.udp()`: connected datagram sockets on the same state machine
//! as TCP (`runtime::tcp_sock` with `dgram` set).

use std::ffi::CStr;

use super::socket_tcp::{
    bind_impl, busy, close_impl, finish_step, method, new_object, send_impl, sock_at, socket_table,
};
use crate::glue::cconv;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, check_number, ffi, lua_State, set_fn};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::tcp_sock::{RecvKind, Val, push_vals};

const OBJ_MT: &CStr = c"ngx_lua_udp_socket";

/// lua-nginx-module's largest datagram for `receive()`.
const MAX_DATAGRAM: usize = 65536;

lua_fns! {
    udp => udp_impl,
    setpeername => setpeername_impl,
    receive => receive_impl,
    send => send_impl,
    settimeout => udp_settimeout_impl,
    close => close_impl,
    bind => bind_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l` (the main state, not running).
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::new_metatable(l, OBJ_MT);
        // Methods in the metatable, its own __index (see socket_tcp.rs).
        ffi::lua_pushvalue(l, -1);
    }
    for (name, f) in [
        (c"setpeername", setpeername),
        (c"send", send),
        (c"receive", receive),
        (c"settimeout", settimeout),
        (c"close", close),
        (c"bind", bind),
    ] {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { set_fn(l, -1, name, f) };
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::set_raw(l, -2, c"__index");
        ffi::lua_pop(l, 1);
        socket_table(l);
        set_fn(l, -1, c"udp", udp);
        ffi::lua_pop(l, 1);
    }
}

/// lua-nginx-module's UDP `settimeout` has no range check, unlike TCP's:
/// anything not positive (NaN, negative, a non-number) means the
/// configured default.
unsafe fn udp_settimeout_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "settimeout") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 2 {
        return Err(format!(
            "ngx.socket settimeout: expecting at least 2 arguments (including the object) but seen {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let v = cconv::int64(unsafe { ffi::lua_tonumber(l, 2) });
    s.timeouts = [(v > 0).then_some(cconv::timer_delay(v) as nginx_sys::ngx_msec_t); 3];
    Ok(0)
}

unsafe fn udp_impl(l: *mut lua_State) -> LuaRet {
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 0 {
        return Err(format!(
            "expecting zero arguments, but got {}",
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_gettop(l) }
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { new_object(l, OBJ_MT, true) };
    Ok(1)
}

unsafe fn setpeername_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, 1, "setpeername") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(2..=3).contains(&n) {
        return Err(format!(
            "ngx.socket.udp setpeername: expecting 2 or 3 arguments (including the object), but seen {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let host = unsafe { check_bytes(l, 2, "setpeername") }?.to_vec();
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, true) } {
        return Ok(n);
    }
    // SAFETY: `ctx.r` is the live request of the running context
    (unsafe { s.bind_request(ctx.r) })?;
    let step = if let Some(path) = host.strip_prefix(b"unix:") {
        s.connect(path, 0, true, None)
    } else {
        // SAFETY: `l` is the running state Lua called this API function with
        let p = unsafe { check_number(l, 3, "setpeername") }? as i64;
        if !(0..=65535).contains(&p) {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err(&format!("bad port number: {p}"))) });
        }
        s.connect(&host, p as u16, false, None)
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

unsafe fn receive_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, 1, "receive") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=2).contains(&n) {
        return Err(format!(
            "expecting 1 or 2 arguments (including the object), but seen {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let size = match unsafe { ffi::lua_type(l, 2) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => MAX_DATAGRAM,
        _ => {
            // SAFETY: `l` is the running state Lua called this API function with
            let v = unsafe { check_number(l, 2, "receive") }?;
            if v < 0.0 || v as usize > MAX_DATAGRAM {
                return Err(format!("bad size argument: {v}"));
            }
            v as usize
        }
    };
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, false) } {
        return Ok(n);
    }
    let step = s.receive(RecvKind::Datagram(size));
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}
