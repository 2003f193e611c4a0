//! A wait for the response to drain to the client (`ngx.flush(true)`).
//!
//! While it waits, the request's write event handler is ours: each time the
//! socket is writable we push the pending output again, and resume the
//! thread once nothing is buffered (or the send timeout hits).

use nginx_sys::{
    NGX_ERROR, NGX_HTTP_LOWLEVEL_BUFFERED, ngx_add_timer, ngx_del_timer, ngx_handle_write_event,
    ngx_http_output_filter, ngx_http_request_empty_handler, ngx_http_request_t,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};

use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use crate::lua::{ffi, lua_State, push_cstr};

pub struct WriteWait {
    r: *mut ngx_http_request_t,
}

impl Wait for WriteWait {}

impl Drop for WriteWait {
    fn drop(&mut self) {
        // SAFETY: r outlives its waits (they are dropped at the latest by the
        // request pool cleanup, before the request memory goes). Whoever
        // resumes the request next installs its own handler.
        unsafe { (*self.r).write_event_handler = Some(ngx_http_request_empty_handler) };
    }
}

/// True when output of `ctx`'s request is still held below the filters
/// (in the socket path).
pub fn pending(ctx: &RequestCtx) -> bool {
    let r = ctx.r;
    // SAFETY: ctx.r and its connection are live (RequestCtx's invariant).
    unsafe { (*(*r).connection).buffered() & NGX_HTTP_LOWLEVEL_BUFFERED != 0 || !(*r).out.is_null() }
}

/// Starts waiting for the output of `ctx`'s request to drain.
pub fn arm(ctx: &mut RequestCtx, co: *mut lua_State) -> Box<WriteWait> {
    let r = ctx.r;
    ctx.write_waiter = co;
    // SAFETY: r is live; the handler stays ours until the wait drops.
    unsafe {
        (*r).write_event_handler = Some(on_writable);
        arm_event(r);
    }
    Box::new(WriteWait { r })
}

unsafe fn arm_event(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    let c = unsafe { (*r).connection };
    // SAFETY: a live request's connection is live
    let wev = unsafe { (*c).write };
    // SAFETY: `r` is a live request (callers' duty)
    let clcf = NgxHttpCoreModule::location_conf(unsafe { &*r }).expect("core loc conf");
    // SAFETY: `wev` is the live connection's write event
    if unsafe { (*wev).active() } == 0 || unsafe { (*wev).ready() } != 0 {
        // SAFETY: `wev` is the live connection's write event
        unsafe { ngx_handle_write_event(wev, clcf.send_lowat) };
    }
    // SAFETY: `wev` is the live connection's write event
    if unsafe { (*wev).timer_set() } == 0 {
        // SAFETY: `wev` is the live connection's write event
        unsafe { ngx_add_timer(wev, clcf.send_timeout) };
    }
}

unsafe extern "C" fn on_writable(r: *mut ngx_http_request_t) {
    crate::glue::catch((), || {
        // SAFETY: nginx calls the write handler with the live request.
        unsafe { writable(r) }
    })
}

unsafe fn writable(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    let Some(ctx) = RequestCtx::get(unsafe { Request::from_ngx_http_request(r) }) else {
        return;
    };
    let co = ctx.write_waiter;
    if co.is_null() {
        return;
    }
    // SAFETY: `r` is a live request (callers' duty)
    let wev = unsafe { (*(*r).connection).write };
    // SAFETY: `wev` is the live connection's write event
    let err: Option<&std::ffi::CStr> = if unsafe { (*wev).timedout() } != 0 {
        // SAFETY: `wev` is the live connection's write event
        unsafe { (*wev).set_timedout(0) };
        Some(c"timeout")
    // SAFETY: `r` is a live request (callers' duty)
    } else if unsafe { ngx_http_output_filter(r, std::ptr::null_mut()) } == NGX_ERROR as isize {
        // A failed write marks the connection broken: the client went
        // away (lua-nginx-module's text for it).
        // SAFETY: `r` is a live request (callers' duty), its connection too
        if unsafe { (*(*r).connection).error() } != 0 {
            Some(c"client aborted")
        } else {
            Some(c"nginx output filter error")
        }
    } else if pending(ctx) {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { arm_event(r) };
        return;
    } else {
        None
    };
    // Our send timeout goes; a limit_rate delay timer stays (the write
    // filter set it with `delayed`, and only its expiry clears `delayed`:
    // without it the rest of the response would never be sent).
    // SAFETY: `wev` is the live connection's write event
    if unsafe { (*wev).timer_set() } != 0 && unsafe { (*wev).delayed() } == 0 {
        // SAFETY: `wev` is the live connection's write event, whose timer is set
        unsafe { ngx_del_timer(wev) };
    }
    ctx.write_waiter = std::ptr::null_mut();
    let ctx_ptr: *mut RequestCtx = ctx;
    let mine = ctx.take_wait(co);
    drop(mine);
    let n = match err {
        Some(e) => {
            // SAFETY: `co` is the live thread waiting on this request
            unsafe {
                ffi::lua_pushnil(co);
                push_cstr(co, e);
            }
            2
        }
        None => {
            // SAFETY: `co` is the live thread waiting on this request
            unsafe { ffi::lua_pushinteger(co, 1) };
            1
        }
    };
    // SAFETY: `ctx_ptr` is the request's live context and `co` its waiting writer
    unsafe { wake(ctx_ptr, co, n) };
}
