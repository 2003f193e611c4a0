//! `ngx.req.socket()`: the request body as a stream, and
//! `ngx.req.socket(true)`: the raw, full-duplex client connection.
//!
//! Both are cosockets over the client connection (`TcpSock` in downstream
//! mode); nginx's request event handlers forward its events to them.

use std::ffi::CStr;

use nginx_sys::{ngx_http_request_body_t, ngx_http_request_t, ngx_pcalloc};
use ngx::http::Request;

use super::socket_tcp::{
    new_object, receive_impl, receiveany_impl, receiveuntil_impl, send_impl, settimeout_impl,
    settimeouts_impl, sock_at,
};
use crate::lua::lua_fns;
use crate::lua::{LuaRet, ffi, lua_State, set_fn};
use crate::runtime::chunked::Chunked;
use crate::runtime::context::{self, REQUEST_YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::tcp_sock::{Downstream, Val, push_vals};
use crate::runtime::write_wait;

const OBJ_MT: &CStr = c"ngx_lua_req_socket";
/// The raw request socket also sends.
const RAW_MT: &CStr = c"ngx_lua_raw_req_socket";

lua_fns! {
    socket => socket_impl,
    receive => receive_impl,
    receiveuntil => receiveuntil_impl,
    receiveany => receiveany_impl,
    settimeout => settimeout_impl,
    settimeouts => settimeouts_impl,
    send => send_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l` (the main state, not running).
pub unsafe fn install(l: *mut lua_State) {
    for (mt, raw) in [(OBJ_MT, false), (RAW_MT, true)] {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { crate::lua::new_metatable(l, mt) };
        // Methods in the metatable, its own __index (see socket_tcp.rs).
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pushvalue(l, -1) };
        for (name, f) in [
            (c"receive", receive),
            (c"receiveuntil", receiveuntil),
            (c"receiveany", receiveany),
            (c"settimeout", settimeout),
            (c"settimeouts", settimeouts),
        ] {
            // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
            unsafe { set_fn(l, -1, name, f) };
        }
        if raw {
            // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
            unsafe { set_fn(l, -1, c"send", send) };
        }
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { super::socket_tls::install_req(l, -1) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { crate::lua::set_raw(l, -2, c"__index") };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pop(l, 1) };
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::get_raw(l, -1, c"req") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TTABLE {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_createtable(l, 0, 32) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pushvalue(l, -1) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { crate::lua::set_raw(l, -3, c"req") };
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"socket", socket) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pop(l, 1) };
}

unsafe fn socket_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n > 1 {
        return Err(format!("expecting zero or one arguments, but got {n}"));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let raw = unsafe { ffi::lua_toboolean(l, 1) } != 0;
    let ctx = ctx::request()?;
    context::check(REQUEST_YIELDABLE)?;
    let r = ctx.r;
    // SAFETY: `r` is the live request of the running context
    if r != unsafe { (*r).main } {
        return Err("attempt to read the request body in a subrequest".into());
    }
    // SAFETY: `r` is the live request of the running context
    if !unsafe { (*r).stream.is_null() } {
        return Err("http v2 not supported yet".into());
    }
    // As lua-nginx-module: a body reader over the socket (lua-resty-http's)
    // parses the chunked framing itself, so the socket must not.
    // SAFETY: `r` is the live request of the running context
    if !raw && unsafe { (*r).headers_in.chunked() } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("chunked request bodies not supported yet")) });
    }
    // SAFETY: `ctx.r` is the live request of the running context
    if let Some(prev) = unsafe { ctx.req_sock.as_ref() } {
        let e = match (raw, prev.downstream.as_ref().is_some_and(|d| d.raw)) {
            (false, _) => Some("request body already exists"),
            (true, true) => Some("duplicate call"),
            (true, false) if prev.body_pending() => Some("pending request body reading in some other thread"),
            // The body was all read: the raw socket takes over.
            (true, false) => None,
        };
        if let Some(e) = e {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err(e)) });
        }
    }
    let how = if raw {
        // A write the Lua code made just before goes out before the code
        // writes to the connection itself.
        if crate::runtime::output::send_held(ctx).is_err() {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err("nginx output filter error")) });
        }
        if write_wait::pending(ctx) {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err("pending data to write")) });
        }
        if ctx.buffering {
            // Output held back for an HTTP/1.0 client (lua_http10_buffering)
            // would be lost.
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err("http 1.0 buffering")) });
        }
        // SAFETY: `r` is the live request of the running context
        if let Some(e) = unsafe { claim_body(r, true) } {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err(e)) });
        }
        // SAFETY: `r` is the live request of the running context
        unsafe { (*r).set_keepalive(0) };
        // SAFETY: `r` is the live request of the running context
        unsafe { (*r).set_lingering_close(1) };
        // From now on the Lua code writes the response itself.
        // SAFETY: `r` is the live request of the running context
        unsafe { (*r).set_header_sent(1) };
        Downstream {
            rest: None,
            chunked: None,
            raw: true,
            bad: false,
            keepalive: false,
        }
    } else {
        // SAFETY: `r` is the live request of the running context
        let chunked = unsafe { (*r).headers_in.chunked() } != 0;
        // SAFETY: `r` is the live request of the running context
        if !chunked && unsafe { (*r).headers_in.content_length_n } <= 0 {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err("no body")) });
        }
        // SAFETY: `r` is the live request of the running context
        if !unsafe { test_expect(r) } {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err("test expect failed")) });
        }
        // SAFETY: `r` is the live request of the running context
        if let Some(e) = unsafe { claim_body(r, false) } {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err(e)) });
        }
        // A partly read body cannot be skipped before a next request: no
        // keepalive until all of it is read.
        // SAFETY: `r` is the live request of the running context
        let keepalive = unsafe { (*r).keepalive() } != 0;
        // SAFETY: `r` is the live request of the running context
        unsafe { (*r).set_keepalive(0) };
        Downstream {
            // SAFETY: `r` is the live request of the running context
            rest: (!chunked).then_some(unsafe { (*r).headers_in.content_length_n } as u64),
            chunked: chunked.then(Chunked::default),
            raw: false,
            bad: false,
            keepalive,
        }
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { new_object(l, if raw { RAW_MT } else { OBJ_MT }, false) };
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, -1, "socket") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `r` is the live request of the running context
    (unsafe { s.bind_request(r) })?;
    // SAFETY: `r` is the live request of the running context
    unsafe { s.attach_downstream(r, how) };
    ctx.req_sock = s;
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).read_event_handler = Some(on_read);
    }
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).write_event_handler = Some(on_write);
    }
    Ok(1)
}

/// Whether the request's raw socket is taken: the Lua code writes the
/// response itself, ngx.say/print/flush/eof refuse.
pub(crate) fn raw_acquired(ctx: &RequestCtx) -> bool {
    // SAFETY: req_sock is cleared when the socket object goes.
    unsafe { ctx.req_sock.as_ref() }.is_some_and(|s| s.downstream.as_ref().is_some_and(|d| d.raw))
}

/// Answers "Expect: 100-continue" (HTTP/1.1) before the body is read, as
/// nginx's own body readers do; false if that could not be sent.
unsafe fn test_expect(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (callers' duty)
    let expect = unsafe { (*r).headers_in.expect };
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { (*r).expect_tested() } != 0
        || expect.is_null()
        // SAFETY: `r` is a live request (callers' duty)
        || unsafe { (*r).http_version } < nginx_sys::NGX_HTTP_VERSION_11 as usize
    {
        return true;
    }
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { (*r).set_expect_tested(1) };
    // SAFETY: a non-null Expect pointer is a live header element of the request
    let v = unsafe { (*expect).value };
    if v.data.is_null()
        // SAFETY: the header value is `len` bytes of the request's pool (data checked non-null)
        || !unsafe { std::slice::from_raw_parts(v.data, v.len) }.eq_ignore_ascii_case(b"100-continue")
    {
        return true;
    }
    let mut msg = *b"HTTP/1.1 100 Continue\r\n\r\n";
    // SAFETY: `r` is a live request (callers' duty)
    let c = unsafe { (*r).connection };
    // SAFETY: a live request's connection is live
    let Some(send_fn) = (unsafe { (*c).send }) else {
        return false;
    };
    // SAFETY: `c` is the live connection; `msg` has msg.len() bytes
    (unsafe { send_fn(c, msg.as_mut_ptr(), msg.len()) }) == msg.len() as isize
}

/// Marks the body as ours so nginx neither reads nor discards it.
unsafe fn claim_body(r: *mut ngx_http_request_t, raw: bool) -> Option<&'static str> {
    // SAFETY: `r` is a live request (callers' duty)
    if !unsafe { (*r).request_body.is_null() } {
        if !raw {
            return Some("request body already exists");
        }
        // nginx's own reader (ngx.req.read_body in another thread) is busy.
        // SAFETY: `r` is a live request (callers' duty)
        return (unsafe { (*(*r).request_body).rest } > 0)
            .then_some("pending request body reading in some other thread");
    }
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { (*r).discard_body() } != 0 {
        return (!raw).then_some("request body discarded");
    }
    // SAFETY: `r` is a live request (callers' duty)
    let rb = unsafe { ngx_pcalloc((*r).pool, std::mem::size_of::<ngx_http_request_body_t>()) };
    if rb.is_null() {
        return Some("no memory");
    }
    // SAFETY: `r` is a live request (callers' duty)
    unsafe {
        (*r).request_body = rb.cast();
    }
    None
}

unsafe extern "C" fn on_read(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { forward(r, false) }
}

unsafe extern "C" fn on_write(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { forward(r, true) }
}

unsafe fn forward(r: *mut ngx_http_request_t, write: bool) {
    crate::glue::catch((), || {
        // SAFETY: nginx calls the request's handlers with the live request;
        // req_sock is cleared when the socket object goes.
        unsafe {
            let Some(ctx) = RequestCtx::get(Request::from_ngx_http_request(r)) else {
                return;
            };
            match ctx.req_sock.as_mut() {
                Some(s) if write || s.reading() => s.downstream_event(write),
                _ if !write => crate::runtime::client_abort::idle_readable(r),
                _ => {}
            }
        }
    })
}
