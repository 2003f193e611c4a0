//! `require "ngx.balancer"`: choosing the peer from balancer_by_lua*.
//!
//! Results and errors follow lua-resty-core's ngx.balancer: outside
//! balancer_by_lua* a request phase gets `nil, "API disabled in the current
//! context"`, code without a request gets the error "no request found".

use std::ffi::c_int;

use nginx_sys::{
    NGX_OK, NGX_PEER_FAILED, NGX_PEER_KEEPALIVE, NGX_PEER_NEXT, ngx_http_upstream_conf_t,
    ngx_http_upstream_state_t, ngx_palloc, ngx_parse_url, ngx_url_t,
};

use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, ffi, lua_State, push_bytes, set_fn};
use crate::runtime::balancer::PeerData;
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    set_current_peer => set_current_peer_impl,
    set_more_tries => set_more_tries_impl,
    get_last_failure => get_last_failure_impl,
    set_timeouts => set_timeouts_impl,
    recreate_request => recreate_request_impl,
}

/// Registers the module in `package.loaded`.
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, -1, c"loaded") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_createtable(l, 0, 6) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"set_current_peer", set_current_peer) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"set_more_tries", set_more_tries) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"get_last_failure", get_last_failure) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"set_timeouts", set_timeouts) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"recreate_request", recreate_request) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { push_bytes(l, b"0.1.0") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"version") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"ngx.balancer") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pop(l, 2) };
}

/// The running balancer's peer data, or why there is none: `Ok(Err(msg))`
/// is a `(nil, msg)` result, `Err` a Lua error.
fn peer_data() -> Result<Result<&'static mut PeerData, &'static str>, String> {
    let bp = ctx::current().map_or(std::ptr::null_mut(), |c| c.balancer_peer);
    if !bp.is_null() && context::current() == context::BALANCER {
        // SAFETY: set by the running get_peer for its request, which lives
        // until the code returns.
        return Ok(Ok(unsafe { &mut *bp }));
    }
    if context::current().is(context::ANY_REQUEST) {
        // lua-nginx-module looks for the upstream before the phase.
        let r = ctx::current().map_or(std::ptr::null_mut(), |c| c.r);
        // SAFETY: a non-null `r` is the live request of the running context
        if r.is_null() || unsafe { (*r).upstream }.is_null() {
            return Ok(Err("no upstream found"));
        }
        Ok(Err("API disabled in the current context"))
    } else {
        Err("no request found".into())
    }
}

unsafe fn fail(l: *mut lua_State, msg: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushnil(l) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { push_bytes(l, msg.as_bytes()) };
    Ok(2)
}

unsafe fn set_current_peer_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(msg) => return unsafe { fail(l, msg) },
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let addr = unsafe { check_bytes(l, 1, "set_current_peer") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let port = match unsafe { ffi::lua_type(l, 2) } {
        ffi::LUA_TNIL | ffi::LUA_TNONE => 0,
        // SAFETY: `l` is the running state Lua called this API function with
        _ => (unsafe { ffi::lua_tonumber(l, 2) }) as i64,
    };
    if !(0..=65535).contains(&port) {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "invalid port") };
    }
    let r = bp.r;
    // SAFETY: `r` is the live request of the running context
    let data = unsafe { ngx_palloc((*r).pool, addr.len().max(1)) } as *mut u8;
    if data.is_null() {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "no memory") };
    }
    // SAFETY: `data` has addr.len() fresh bytes, apart from `addr`
    unsafe { std::ptr::copy_nonoverlapping(addr.as_ptr(), data, addr.len()) };
    // SAFETY: ngx_url_t is plain C data; all-zero is nginx's initial state
    let mut url: ngx_url_t = unsafe { std::mem::zeroed() };
    url.url.data = data;
    url.url.len = addr.len();
    url.default_port = port as u16;
    url.set_uri_part(0);
    url.set_no_resolve(1);
    // SAFETY: `r` is the live request of the running context
    if unsafe { ngx_parse_url((*r).pool, &mut url) } != NGX_OK as isize {
        let msg = if url.err.is_null() {
            "failed to parse the address".to_string()
        } else {
            // SAFETY: ngx_parse_url sets `err` to a static NUL-terminated message
            (unsafe { std::ffi::CStr::from_ptr(url.err) })
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, &msg) };
    }
    // SAFETY: ngx_parse_url succeeded: a non-null `addrs` is a live array in the pool
    if url.addrs.is_null() || unsafe { (*url.addrs).sockaddr.is_null() } {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "no host allowed") };
    }
    // SAFETY: `addrs` is a live, non-null address array
    bp.sockaddr = unsafe { (*url.addrs).sockaddr };
    // SAFETY: `addrs` is a live, non-null address array
    bp.socklen = unsafe { (*url.addrs).socklen };
    // SAFETY: `addrs` is a live, non-null address array in the request's pool
    bp.host = unsafe { &mut (*url.addrs).name };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

unsafe fn set_more_tries_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(msg) => return unsafe { fail(l, msg) },
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let count = unsafe { crate::lua::check_number(l, 1, "set_more_tries") }?;
    let mut count = if count > 0.0 { count as usize } else { 0 };
    // SAFETY: `r` is the live request of the running context
    let u = unsafe { (*bp.r).upstream };
    // SAFETY: a balancer runs with the request's live upstream and its conf
    let max = unsafe { (*(*u).conf).next_upstream_tries };
    // SAFETY: a balancer runs with the request's live upstream
    let total = bp.total_tries + unsafe { (*u).peer.tries } - 1;
    let mut warning = None;
    if max > 0 && total + count > max {
        count = max.saturating_sub(total);
        warning = Some("reduced tries due to limit");
    }
    bp.more_tries = count;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    match warning {
        Some(w) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { push_bytes(l, w.as_bytes()) };
            Ok(2)
        }
        None => Ok(1),
    }
}

unsafe fn get_last_failure_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushnil(l) };
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushnil(l) };
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { push_bytes(l, msg.as_bytes()) };
            return Ok(3);
        }
    };
    if bp.last_state == 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    }
    let name: &[u8] = match bp.last_state as u32 {
        NGX_PEER_FAILED => b"failed",
        NGX_PEER_NEXT => b"next",
        NGX_PEER_KEEPALIVE => b"keepalive",
        _ => b"unknown",
    };
    // The state pushed for the attempt now being chosen is the last one;
    // the one before it belongs to the failed attempt.
    // SAFETY: `r` is the live request of the running context
    let states = unsafe { (*bp.r).upstream_states };
    // SAFETY: a non-null `upstream_states` is the request's live array
    let status = if !states.is_null() && unsafe { (*states).nelts } > 1 {
        // SAFETY: `states` is the request's live array with more than one entry
        let s = unsafe { (*states).elts } as *const ngx_http_upstream_state_t;
        // SAFETY: nelts > 1, so entry nelts - 2 is inside the array
        unsafe { (*s.add((*states).nelts - 2)).status }
    } else {
        0
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, name) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushinteger(l, status as ffi::lua_Integer) };
    Ok(2)
}

/// A timeout argument in seconds as milliseconds; nil leaves it unchanged (0).
unsafe fn timeout_arg(l: *mut lua_State, idx: c_int, what: &str) -> Result<u64, String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNIL | ffi::LUA_TNONE => Ok(0),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TNUMBER if unsafe { ffi::lua_tonumber(l, idx) } > 0.0 => {
            // SAFETY: `l` is the running state (callers' duty)
            Ok((unsafe { ffi::lua_tonumber(l, idx) } * 1000.0) as u64)
        }
        _ => Err(format!("bad {what} timeout")),
    }
}

unsafe fn set_timeouts_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushboolean(l, 0) };
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { push_bytes(l, msg.as_bytes()) };
            return Ok(2);
        }
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let connect = unsafe { timeout_arg(l, 1, "connect") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let send = unsafe { timeout_arg(l, 2, "send") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let read = unsafe { timeout_arg(l, 3, "read") }?;
    let r = bp.r;
    // SAFETY: `r` is the live request of the running context
    let u = unsafe { (*r).upstream };
    if !bp.cloned_conf {
        // The upstream conf is shared by every request: give this one a copy.
        // SAFETY: `r` is the live request of the running context
        let copy = unsafe { ngx_palloc((*r).pool, std::mem::size_of::<ngx_http_upstream_conf_t>()) }
            as *mut ngx_http_upstream_conf_t;
        if copy.is_null() {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushboolean(l, 0) };
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { push_bytes(l, b"no memory") };
            return Ok(2);
        }
        // SAFETY: `copy` has room for one conf; `u.conf` is the live shared conf
        unsafe { std::ptr::copy_nonoverlapping((*u).conf, copy, 1) };
        // SAFETY: `u` is the request's live upstream
        unsafe {
            (*u).conf = copy;
        }
        bp.cloned_conf = true;
    }
    // SAFETY: `u.conf` is now this request's own copy
    let conf = unsafe { &mut *(*u).conf };
    if connect > 0 {
        conf.connect_timeout = connect as _;
    }
    if send > 0 {
        conf.send_timeout = send as _;
    }
    if read > 0 {
        conf.read_timeout = read as _;
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

unsafe fn recreate_request_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(msg) => return unsafe { fail(l, msg) },
    };
    let r = bp.r;
    // SAFETY: `r` is the live request of the running context
    let u = unsafe { (*r).upstream };
    // SAFETY: a balancer runs with the request's live upstream
    let Some(create) = (unsafe { (*u).create_request }) else {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "no create_request handler") };
    };
    // The request built before starts with its own header buffer, then the
    // body: drop that head so create_request builds on the body alone.
    // SAFETY: `r` is the live request of the running context
    let body = if unsafe { (*r).request_body.is_null() } {
        std::ptr::null_mut()
    } else {
        // SAFETY: `r` is the live request of the running context
        unsafe { (*(*r).request_body).bufs }
    };
    // SAFETY: a balancer runs with the request's live upstream
    if !unsafe { (*u).request_bufs.is_null() } && unsafe { (*u).request_bufs } != body {
        // SAFETY: `u.request_bufs` is a live, non-null chain
        unsafe {
            (*u).request_bufs = (*(*u).request_bufs).next;
        }
    }
    // SAFETY: `r` is the live request of the running context
    if unsafe { create(r) } != NGX_OK as isize {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { fail(l, "failed to recreate the upstream request") };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}
