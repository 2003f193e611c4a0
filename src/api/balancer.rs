//! `require "ngx.balancer"`: choosing the peer from balancer_by_lua*.
//!
//! Results and errors follow lua-resty-core's ngx.balancer: outside
//! balancer_by_lua* a request phase gets `nil, "API disabled in the current
//! context"`, code without a request gets the error "no request found".

use std::ffi::c_int;

use nginx_sys::{
    ngx_http_upstream_conf_t, ngx_http_upstream_state_t, ngx_palloc, ngx_parse_url, ngx_url_t, NGX_OK,
    NGX_PEER_FAILED, NGX_PEER_KEEPALIVE, NGX_PEER_NEXT,
};

use crate::lua::lua_fns;
use crate::lua::{check_bytes, ffi, lua_State, push_bytes, set_fn, LuaRet};
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
    crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
    crate::lua::get_raw(l, -1, c"loaded");
    ffi::lua_createtable(l, 0, 6);
    set_fn(l, -1, c"set_current_peer", set_current_peer);
    set_fn(l, -1, c"set_more_tries", set_more_tries);
    set_fn(l, -1, c"get_last_failure", get_last_failure);
    set_fn(l, -1, c"set_timeouts", set_timeouts);
    set_fn(l, -1, c"recreate_request", recreate_request);
    push_bytes(l, b"0.1.0");
    crate::lua::set_raw(l, -2, c"version");
    crate::lua::set_raw(l, -2, c"ngx.balancer");
    ffi::lua_pop(l, 2);
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
        Ok(Err("API disabled in the current context"))
    } else {
        Err("no request found".into())
    }
}

unsafe fn fail(l: *mut lua_State, msg: &str) -> LuaRet {
    ffi::lua_pushnil(l);
    push_bytes(l, msg.as_bytes());
    Ok(2)
}

unsafe fn set_current_peer_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => return fail(l, msg),
    };
    let addr = check_bytes(l, 1, "set_current_peer")?;
    let port = match ffi::lua_type(l, 2) {
        ffi::LUA_TNIL | ffi::LUA_TNONE => 0,
        _ => ffi::lua_tonumber(l, 2) as i64,
    };
    if !(0..=65535).contains(&port) {
        return fail(l, "invalid port");
    }
    let r = bp.r;
    let data = ngx_palloc((*r).pool, addr.len().max(1)) as *mut u8;
    if data.is_null() {
        return fail(l, "no memory");
    }
    std::ptr::copy_nonoverlapping(addr.as_ptr(), data, addr.len());
    let mut url: ngx_url_t = std::mem::zeroed();
    url.url.data = data;
    url.url.len = addr.len();
    url.default_port = port as u16;
    url.set_uri_part(0);
    url.set_no_resolve(1);
    if ngx_parse_url((*r).pool, &mut url) != NGX_OK as isize {
        let msg = if url.err.is_null() {
            "failed to parse the address".to_string()
        } else {
            std::ffi::CStr::from_ptr(url.err).to_string_lossy().into_owned()
        };
        return fail(l, &msg);
    }
    if url.addrs.is_null() || (*url.addrs).sockaddr.is_null() {
        return fail(l, "no host allowed");
    }
    bp.sockaddr = (*url.addrs).sockaddr;
    bp.socklen = (*url.addrs).socklen;
    bp.host = &mut (*url.addrs).name;
    ffi::lua_pushboolean(l, 1);
    Ok(1)
}

unsafe fn set_more_tries_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => return fail(l, msg),
    };
    let count = crate::lua::check_number(l, 1, "set_more_tries")?;
    let mut count = if count > 0.0 { count as usize } else { 0 };
    let u = (*bp.r).upstream;
    let max = (*(*u).conf).next_upstream_tries;
    let total = bp.total_tries + (*u).peer.tries - 1;
    let mut warning = None;
    if max > 0 && total + count > max {
        count = max.saturating_sub(total);
        warning = Some("reduced tries due to limit");
    }
    bp.more_tries = count;
    ffi::lua_pushboolean(l, 1);
    match warning {
        Some(w) => {
            push_bytes(l, w.as_bytes());
            Ok(2)
        }
        None => Ok(1),
    }
}

unsafe fn get_last_failure_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => {
            ffi::lua_pushnil(l);
            ffi::lua_pushnil(l);
            push_bytes(l, msg.as_bytes());
            return Ok(3);
        }
    };
    if bp.last_state == 0 {
        ffi::lua_pushnil(l);
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
    let states = (*bp.r).upstream_states;
    let status = if !states.is_null() && (*states).nelts > 1 {
        let s = (*states).elts as *const ngx_http_upstream_state_t;
        (*s.add((*states).nelts - 2)).status
    } else {
        0
    };
    push_bytes(l, name);
    ffi::lua_pushinteger(l, status as ffi::lua_Integer);
    Ok(2)
}

/// A timeout argument in seconds as milliseconds; nil leaves it unchanged (0).
unsafe fn timeout_arg(l: *mut lua_State, idx: c_int, what: &str) -> Result<u64, String> {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TNIL | ffi::LUA_TNONE => Ok(0),
        ffi::LUA_TNUMBER if ffi::lua_tonumber(l, idx) > 0.0 => {
            Ok((ffi::lua_tonumber(l, idx) * 1000.0) as u64)
        }
        _ => Err(format!("bad {what} timeout")),
    }
}

unsafe fn set_timeouts_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => {
            ffi::lua_pushboolean(l, 0);
            push_bytes(l, msg.as_bytes());
            return Ok(2);
        }
    };
    let connect = timeout_arg(l, 1, "connect")?;
    let send = timeout_arg(l, 2, "send")?;
    let read = timeout_arg(l, 3, "read")?;
    let r = bp.r;
    let u = (*r).upstream;
    if !bp.cloned_conf {
        // The upstream conf is shared by every request: give this one a copy.
        let copy = ngx_palloc((*r).pool, std::mem::size_of::<ngx_http_upstream_conf_t>())
            as *mut ngx_http_upstream_conf_t;
        if copy.is_null() {
            ffi::lua_pushboolean(l, 0);
            push_bytes(l, b"no memory");
            return Ok(2);
        }
        std::ptr::copy_nonoverlapping((*u).conf, copy, 1);
        (*u).conf = copy;
        bp.cloned_conf = true;
    }
    let conf = &mut *(*u).conf;
    if connect > 0 {
        conf.connect_timeout = connect as _;
    }
    if send > 0 {
        conf.send_timeout = send as _;
    }
    if read > 0 {
        conf.read_timeout = read as _;
    }
    ffi::lua_pushboolean(l, 1);
    Ok(1)
}

unsafe fn recreate_request_impl(l: *mut lua_State) -> LuaRet {
    let bp = match peer_data()? {
        Ok(bp) => bp,
        Err(msg) => return fail(l, msg),
    };
    let r = bp.r;
    let u = (*r).upstream;
    let Some(create) = (*u).create_request else {
        return fail(l, "no create_request handler");
    };
    // The request built before starts with its own header buffer, then the
    // body: drop that head so create_request builds on the body alone.
    let body = if (*r).request_body.is_null() {
        std::ptr::null_mut()
    } else {
        (*(*r).request_body).bufs
    };
    if !(*u).request_bufs.is_null() && (*u).request_bufs != body {
        (*u).request_bufs = (*(*u).request_bufs).next;
    }
    if create(r) != NGX_OK as isize {
        return fail(l, "failed to recreate the upstream request");
    }
    ffi::lua_pushboolean(l, 1);
    Ok(1)
}
