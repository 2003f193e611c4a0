//! `ngx.ctx` across a TLS connection, as lua-nginx-module has it: the
//! handshake code (ssl_client_hello_by_lua*, ssl_certificate_by_lua*,
//! ssl_session_fetch_by_lua*, ssl_session_store_by_lua*) shares one table
//! per connection, and each request on that connection starts with an
//! `ngx.ctx` that reads through to it (its metatable), so that what the
//! handshake noted is seen by every request while what a request sets stays
//! its own. The table lives until the connection's pool goes.

use nginx_sys::ngx_http_request_t;

use super::context::{self, Context};
use super::ssl_hs::{self, HsCtx};
use crate::lua::{ffi, lua_State, vm};

/// The handshake state of the TLS connection `r` runs on, if any.
///
/// # Safety
/// `r` is a live (possibly fake) request.
unsafe fn handshake_state(r: *mut ngx_http_request_t) -> Option<&'static mut HsCtx> {
    // SAFETY: a live request has a live connection; a fake request of
    // handshake code carries the real connection's `ssl` (ssl_hs).
    unsafe {
        let ssl = (*(*r).connection).ssl;
        if ssl.is_null() || (*ssl).connection.is_null() {
            return None;
        }
        ssl_hs::get((*ssl).connection)
    }
}

/// The table a request's first `ngx.ctx` is: see [`push_new`].
enum NewCtx {
    /// In handshake code: the connection's own table.
    Connection(&'static mut HsCtx),
    /// A table that reads through to the connection's (at this reference).
    ReadThrough(std::ffi::c_int),
    /// An empty table.
    Plain,
}

/// Which table [`push_new`] makes for `r`, running in `context` on the VM
/// whose main state is `main`.
///
/// # Safety
/// `r` is the live request of the running context.
unsafe fn new_ctx(r: *mut ngx_http_request_t, main: *mut lua_State, context: Context) -> NewCtx {
    // SAFETY: per the contract.
    match unsafe { handshake_state(r) } {
        Some(hs) if context.is(context::SSL_ANY) => NewCtx::Connection(hs),
        Some(hs) if hs.ctx_ref != ffi::LUA_NOREF && hs.ctx_vm == main => NewCtx::ReadThrough(hs.ctx_ref),
        _ => NewCtx::Plain,
    }
}

/// Whether [`push_new`] would push a plain empty table for `r`: then the
/// FFI face of `ngx.ctx` may make the table itself (api/lua/ngx_fields.lua).
///
/// # Safety
/// `r` is the live request of the running context.
pub unsafe fn makes_plain(r: *mut ngx_http_request_t, main: *mut lua_State, context: Context) -> bool {
    // SAFETY: per the contract.
    matches!(unsafe { new_ctx(r, main, context) }, NewCtx::Plain)
}

/// Pushes a new `ngx.ctx` table for `r`, running in `context` on the VM
/// whose main state is `main`: in handshake code the connection's table
/// (made on first use, its own `__index` so that it can serve as a
/// metatable); in a request on a connection whose handshake code made
/// one, a table that reads through to it; else an empty table.
///
/// # Safety
/// `l` is the running state of that VM, with room for two values; `r` is
/// the live request of the running context.
pub unsafe fn push_new(
    l: *mut lua_State,
    main: *mut lua_State,
    r: *mut ngx_http_request_t,
    context: Context,
) {
    // SAFETY: per the contract.
    let kind = unsafe { new_ctx(r, main, context) };
    // SAFETY: `l` is the running state with room for two values (contract).
    unsafe {
        match kind {
            NewCtx::Connection(hs) => {
                if hs.ctx_ref == ffi::LUA_NOREF || hs.ctx_vm != main {
                    release(hs);
                    ffi::lua_createtable(l, 0, 4);
                    ffi::lua_pushvalue(l, -1);
                    crate::lua::set_raw(l, -2, c"__index");
                    ffi::lua_pushvalue(l, -1);
                    hs.ctx_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
                    hs.ctx_vm = main;
                } else {
                    ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, hs.ctx_ref as _);
                }
            }
            NewCtx::ReadThrough(conn_ref) => {
                ffi::lua_createtable(l, 0, 4);
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, conn_ref as _);
                ffi::lua_setmetatable(l, -2);
            }
            NewCtx::Plain => ffi::lua_createtable(l, 0, 4),
        }
    }
}

/// `ngx.ctx = t` in handshake code: `t` (on top of `l`) becomes the
/// connection's table too.
///
/// # Safety
/// As for [`push_new`]; the table is on top of `l`.
pub unsafe fn replace(l: *mut lua_State, main: *mut lua_State, r: *mut ngx_http_request_t, context: Context) {
    if !context.is(context::SSL_ANY) {
        return;
    }
    // SAFETY: per the contract.
    if let Some(hs) = unsafe { handshake_state(r) } {
        release(hs);
        // SAFETY: the table is on top of the running state `l`.
        unsafe {
            ffi::lua_pushvalue(l, -1);
            hs.ctx_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        }
        hs.ctx_vm = main;
    }
}

/// Drops the connection's table, if it has one and its VM is still the
/// cycle's (a table of a VM that is gone went with it).
pub fn release(hs: &HsCtx) {
    if hs.ctx_ref == ffi::LUA_NOREF {
        return;
    }
    if let Some(v) = vm::cycle()
        && v.main() == hs.ctx_vm
    {
        // SAFETY: the connection's pool and its log outlive this cleanup.
        unsafe {
            crate::glue::log::log_debug_http!((*hs.c).log, "lua release ngx.ctx at ref {}", hs.ctx_ref);
        }
        v.unref(hs.ctx_ref);
    }
}
