//! `lua_check_client_abort`: while Lua code of a request waits, a client
//! that closes its connection runs the `ngx.on_abort` handler as a light
//! thread or, without one, ends the request with 499 (cancelling every
//! pending wait).

use nginx_sys::{
    NGX_EAGAIN, NGX_HTTP_CLIENT_CLOSED_REQUEST, ngx_http_finalize_request, ngx_http_request_t, ngx_int_t,
};
use ngx::http::Request;

use super::ctx::RequestCtx;
use super::scheduler;
use crate::conf::loc_conf;

/// Watches the client connection while the request's Lua code runs.
///
/// # Safety
/// `r` must be live.
pub unsafe fn watch(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { loc_conf(r) }.check_client_abort() && r == unsafe { (*r).main } {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe {
            (*r).read_event_handler = Some(on_readable);
        }
    }
}

unsafe extern "C" fn on_readable(r: *mut ngx_http_request_t) {
    crate::glue::catch((), || {
        // SAFETY: nginx calls the read handler with the live request.
        unsafe { readable(r) }
    })
}

/// Peeks at the socket: a client that closed reads as end of file.
///
/// # Safety
/// `r` must be live.
pub unsafe fn client_closed(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (callers' duty)
    let c = unsafe { (*r).connection };
    let mut buf = [0u8; 1];
    // SAFETY: `c` is the live request's connection; `buf` has room for the 1 byte asked
    let n = unsafe { libc::recv((*c).fd, buf.as_mut_ptr().cast(), 1, libc::MSG_PEEK) };
    let err = if n == -1 { nginx_sys::ngx_errno() } else { 0 };
    let closed = n == 0 || (n == -1 && err != NGX_EAGAIN as i32);
    if closed {
        // Not yet `c->error`: with an on_abort handler the request goes on
        // (its subrequests too), as in lua-nginx-module.
        // SAFETY: `c` is the live request's connection and its read event
        unsafe { (*(*c).read).set_eof(1) };
        // SAFETY: `c` is the live request's connection
        let log = unsafe { (*c).log };
        crate::glue::log::log_error_errno!(
            log,
            nginx_sys::NGX_LOG_INFO,
            err,
            "client prematurely closed connection"
        );
    }
    closed
}

/// The client connection became readable while no Lua code reads it (the
/// request socket has no receive pending): with lua_check_client_abort, see
/// whether the client left.
///
/// # Safety
/// `r` must be live.
pub unsafe fn idle_readable(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { loc_conf(r) }.check_client_abort() && r == unsafe { (*r).main } {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { readable(r) };
    }
}

unsafe fn readable(r: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (callers' duty)
    let c = unsafe { (*r).connection };
    // Seen already: the handler ran, or the request is ending.
    // SAFETY: `c` is the live request's connection; `r` is live (callers' duty)
    if unsafe { (*c).error() } != 0 || unsafe { (*(*c).read).eof() } != 0 || !unsafe { client_closed(r) } {
        return;
    }
    // SAFETY: `r` is a live request (callers' duty)
    let Some(ctx) = RequestCtx::get(unsafe { Request::from_ngx_http_request(r) }) else {
        // SAFETY: `c` is the live request's connection
        unsafe { (*c).set_error(1) };
        return;
    };
    match ctx.on_abort.take() {
        Some(t) => {
            let co = t.co;
            ctx.threads.push(t);
            let ctx_ptr: *mut RequestCtx = ctx;
            // SAFETY: `ctx_ptr` is the live context and `co` its on_abort thread, just queued
            unsafe { scheduler::wake(ctx_ptr, co, 0) };
        }
        None => {
            // SAFETY: `c` is the live request's connection
            unsafe { (*c).set_error(1) };
            ctx.clear_threads();
            // SAFETY: `r` is a live request (callers' duty)
            unsafe { ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST as ngx_int_t) };
        }
    }
}
