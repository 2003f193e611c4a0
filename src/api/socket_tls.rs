//! The TLS methods of `ngx.socket.tcp()` objects: `sslhandshake`,
//! `setclientcert`, `settrustedstore`, `getsslpointer`, `getsslctx`,
//! `getsslsession`, and `getfd` (also on `ngx.req.socket()` objects), with
//! lua-nginx-module master's checks and texts. The methods that take or
//! return cdata are Lua (`lua/socket_tls.lua`) over the functions here.

use std::ffi::{c_int, c_void};

use super::socket_tcp::{busy, finish_step, method, never_connected, owned_by, sock_at};
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, ffi, lua_State, set_fn};
use crate::runtime::ctx;
use crate::runtime::tcp_sock::{TcpSock, Val, push_vals};
use crate::runtime::tcp_tls_peer::{self as peer, TrustedStore};

lua_fns! {
    sslhandshake => sslhandshake_impl,
    settrustedstore => settrustedstore_impl,
    getsslpointer => getsslpointer_impl,
    getsslctx => getsslctx_impl,
    getsslsession => getsslsession_impl,
    getfd => getfd_impl,
}

/// Sets the TLS methods of socket objects in the table at `idx`.
///
/// # Safety
/// `l` must be the main state, not running; `idx` a table.
pub unsafe fn install(l: *mut lua_State, idx: c_int) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    let idx = unsafe { crate::lua::abs_index(l, idx) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, idx, c"getfd", getfd) };
    let code = lua_source!("lua/socket_tls.lua");
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), c"=socket_tls".as_ptr()) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_createtable(l, 0, 6) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"sslhandshake", sslhandshake) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"settrustedstore", settrustedstore) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"getsslpointer", getsslpointer) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"getsslctx", getsslctx) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"getsslsession", getsslsession) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::runtime::tcp_tls::push_session_free(l) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_pcall(l, 2, 1, 0) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // Copy the wrappers into the method table.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushnil(l) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    while unsafe { ffi::lua_next(l, -2) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pushvalue(l, -2) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_insert(l, -2) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_rawset(l, idx) };
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pop(l, 1) };
    Ok(())
}

/// Sets `getfd` on request socket objects (the table at `idx`).
///
/// # Safety
/// `l` must be valid; `idx` a table.
pub unsafe fn install_req(l: *mut lua_State, idx: c_int) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, idx, c"getfd", getfd) };
}

/// An address the Lua side made of a cdata argument, else null.
unsafe fn address(l: *mut lua_State, idx: c_int) -> *mut c_void {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, idx) } != ffi::LUA_TNUMBER {
        return std::ptr::null_mut();
    }
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { ffi::lua_tonumber(l, idx) }) as usize as *mut c_void
}

/// `raw(self, cert, pkey, reused_session, server_name, ssl_verify,
/// send_status_req)`: the Lua wrapper adds the client certificate and key
/// of `setclientcert` (addresses, or nil) after `self`.
unsafe fn sslhandshake_impl(l: *mut lua_State) -> LuaRet {
    let (mut cert, mut pkey) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } >= 3 {
        // SAFETY: `l` is the running state Lua called this API function with
        cert = unsafe { address(l, 2) };
        // SAFETY: `l` is the running state Lua called this API function with
        pkey = unsafe { address(l, 3) };
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_remove(l, 2) };
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_remove(l, 2) };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, 1, "sslhandshake") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, true) } {
        return Ok(n);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let step = unsafe { crate::runtime::tcp_tls::start(l, s, cert, pkey) }?;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

/// The checks lua-resty-core makes before each `get*` method: an object,
/// a request, and socket state (made by a first `connect`).
unsafe fn peer_sock<'a>(l: *mut lua_State, fname: &str) -> Result<&'a mut TcpSock, String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_toboolean(l, 1) } == 0 {
        // lua-resty-core's text for all of these methods
        return Err("ngx.socket getfd: expecting the cosocket object, but seen none".into());
    }
    ctx::request()?;
    // SAFETY: `l` is the running state (callers' duty)
    let s = unsafe { sock_at(l, 1, fname) }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    never_connected(s)?;
    Ok(s)
}

unsafe fn settrustedstore_impl(l: *mut lua_State) -> LuaRet {
    let rctx = ctx::request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "settrustedstore") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if !s.was_connected() {
        return Err("socket is never created nor connected".into());
    }
    if s.conn.is_null() || s.read_closed || s.write_closed {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("closed")) });
    }
    if !owned_by(s, rctx) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("bad request")) });
    }
    let c = s.conn;
    // SAFETY: `c` is the socket's live connection (checked non-null, not closed)
    if !unsafe { (*c).ssl.is_null() } && unsafe { (*(*c).ssl).handshaked() } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe {
            push_vals(
                l,
                &Val::err(
                    "ssl handshake already done; trusted store cannot be changed on an established TLS connection",
                ),
            )
        });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let store = unsafe { address(l, 2) };
    s.trusted_store = None;
    if !store.is_null() {
        // SAFETY: the caller hands an X509_STORE, as lua-nginx-module requires (it cannot be checked)
        match unsafe { TrustedStore::new(store) } {
            Ok(t) => s.trusted_store = Some(t),
            // SAFETY: `l` is the running state Lua called this API function with
            Err(e) => return Ok(unsafe { push_vals(l, &Val::err(e)) }),
        }
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

/// Pushes `p` (a light userdata the Lua side makes a `void *`) or the error.
unsafe fn pointer_or_err<T>(l: *mut lua_State, p: Result<*mut T, &'static str>) -> c_int {
    match p {
        Ok(p) => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushlightuserdata(l, p.cast()) };
            1
        }
        // SAFETY: `l` is the running state (callers' duty)
        Err(e) => unsafe { push_vals(l, &Val::err(e)) },
    }
}

unsafe fn getsslpointer_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { peer_sock(l, "getsslpointer") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { pointer_or_err(l, peer::ssl_pointer(s)) })
}

unsafe fn getsslctx_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { peer_sock(l, "getsslctx") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { pointer_or_err(l, peer::ssl_ctx(s)) })
}

unsafe fn getsslsession_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { peer_sock(l, "getsslsession") }?;
    Ok(match peer::ssl_session(s) {
        // counted as a reference Lua holds (freed by its cdata's finalizer)
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(sess) => unsafe { push_vals(l, &[Val::Session(sess)]) },
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { push_vals(l, &Val::err(e)) },
    })
}

unsafe fn getfd_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { peer_sock(l, "getfd") }?;
    Ok(match peer::fd(s) {
        // SAFETY: `l` is the running state Lua called this API function with
        Ok(fd) => unsafe { push_vals(l, &[Val::Int(fd as i64)]) },
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => unsafe { push_vals(l, &Val::err(e)) },
    })
}
