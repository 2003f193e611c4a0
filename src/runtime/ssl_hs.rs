//! Lua code that runs inside a TLS handshake (ssl_client_hello_by_lua*,
//! ssl_certificate_by_lua*, ssl_session_fetch_by_lua*,
//! ssl_session_store_by_lua*): the per-connection state OpenSSL's callbacks
//! share, the fake request each run gets, and how a run that waited ends.
//!
//! As in lua-nginx-module, a callback whose code waits returns OpenSSL's
//! "retry" value; nginx (with the ssl_cert_cb_yield patch Debian ships)
//! comes back to SSL_do_handshake when we post the connection's write event,
//! and OpenSSL calls the callback again, which then reports how the code
//! ended.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use nginx_sys::{
    CRYPTO_get_ex_new_index, NGX_ERROR, NGX_HTTP_SPECIAL_RESPONSE, SSL, SSL_SESSION, SSL_get_ex_data,
    SSL_set_ex_data, ngx_connection_t, ngx_http_connection_t, ngx_http_request_t, ngx_int_t, ngx_log_t,
    ngx_pool_cleanup_add, ngx_post_event, ngx_posted_events,
};
use ngx::http::Request;

use super::context::Context;
use super::ctx::{Outcome, RequestCtx};
use crate::glue::fake_request::{self, ConfRef};

/// What the handshake's Lua code shares with OpenSSL's callbacks and the
/// `ngx.ssl*` functions, one per TLS connection (lua-nginx-module's
/// `ngx_http_lua_ssl_ctx_t`). Freed by a cleanup of the connection's pool.
pub struct HsCtx {
    pub c: *mut ngx_connection_t,
    /// The fake request of the code running now (or waiting), else null.
    pub r: *mut ngx_http_request_t,
    /// What the callback returns once the code ended: 1 success, 0 failure.
    pub exit_code: c_int,
    pub done: bool,
    pub entered_client_hello: bool,
    pub entered_cert: bool,
    pub entered_fetch: bool,
    /// ssl_session_fetch_by_lua*: the session id the client offered, and the
    /// session `set_serialized_session` gave (a reference we own).
    pub session_id: Vec<u8>,
    pub session: *mut SSL_SESSION,
    /// ssl_session_store_by_lua*: the new session (borrowed during the run).
    pub new_session: *mut SSL_SESSION,
    /// The handshake code's `ngx.ctx` (runtime/ssl_ctx.rs): a registry
    /// reference in the main state `ctx_vm`, or LUA_NOREF.
    pub ctx_ref: c_int,
    pub ctx_vm: *mut crate::lua::lua_State,
}

static EX_INDEX: AtomicI32 = AtomicI32::new(-1);

/// Our SSL ex_data slot, taken once per process.
fn ex_index() -> c_int {
    let i = EX_INDEX.load(Ordering::Relaxed);
    if i >= 0 {
        return i;
    }
    // SAFETY: CRYPTO_EX_INDEX_SSL (0) with no callbacks: a plain slot.
    let i = unsafe { CRYPTO_get_ex_new_index(0, 0, ptr::null_mut(), None, None, None) };
    EX_INDEX.store(i, Ordering::Relaxed);
    i
}

/// Takes the ex_data slot at configuration time, before any worker forks.
pub fn init() -> bool {
    ex_index() >= 0
}

/// The state of the TLS connection `ssl`, if a callback created it.
///
/// # Safety
/// `ssl` must be a live SSL object of a connection.
pub unsafe fn get(ssl: *const SSL) -> Option<&'static mut HsCtx> {
    // SAFETY: the slot holds null or our HsCtx, live with the connection.
    unsafe { (SSL_get_ex_data(ssl, ex_index()) as *mut HsCtx).as_mut() }
}

/// The state of connection `c`, created (with its pool cleanup) on first use.
///
/// # Safety
/// `c` must be a live connection with `c->ssl` set.
pub unsafe fn get_or_create(c: *mut ngx_connection_t) -> Option<&'static mut HsCtx> {
    // SAFETY: per the contract; the box is freed by the pool cleanup only.
    unsafe {
        let ssl = (*(*c).ssl).connection;
        if let Some(hs) = get(ssl) {
            return Some(hs);
        }
        let cln = ngx_pool_cleanup_add((*c).pool, 0);
        if cln.is_null() {
            return None;
        }
        let hs = Box::into_raw(Box::new(HsCtx {
            c,
            r: ptr::null_mut(),
            // Zeroed as lua-nginx-module's ctx: the phases that report a
            // result set 1 when their code starts.
            exit_code: 0,
            done: false,
            entered_client_hello: false,
            entered_cert: false,
            entered_fetch: false,
            session_id: Vec::new(),
            session: ptr::null_mut(),
            new_session: ptr::null_mut(),
            ctx_ref: crate::lua::ffi::LUA_NOREF,
            ctx_vm: ptr::null_mut(),
        }));
        if SSL_set_ex_data(ssl, ex_index(), hs.cast()) == 0 {
            drop(Box::from_raw(hs));
            return None;
        }
        (*cln).handler = Some(connection_closed);
        (*cln).data = hs.cast();
        Some(&mut *hs)
    }
}

/// The connection's pool goes: a run still waiting is aborted (its waits
/// are cancelled with its fake request), and the state is freed. The SSL
/// object is already freed here, so nothing touches it.
unsafe extern "C" fn connection_closed(data: *mut c_void) {
    crate::glue::catch((), || {
        // SAFETY: data is the HsCtx boxed by get_or_create, freed only here.
        unsafe {
            let hs = Box::from_raw(data as *mut HsCtx);
            if !hs.r.is_null() {
                crate::glue::log::log_debug_http!((*hs.c).log, "lua ssl handshake code aborted");
                (*(*hs.r).connection).ssl = ptr::null_mut();
                fake_request::destroy(hs.r);
            }
            if !hs.session.is_null() {
                nginx_sys::SSL_SESSION_free(hs.session);
            }
            super::ssl_ctx::release(&hs);
        }
    })
}

/// The log text lua-nginx-module appends in handshake code:
/// `, context: <phase>, client: <addr>, server: <listener>`.
unsafe extern "C" fn log_context(log: *mut ngx_log_t, buf: *mut u8, len: usize) -> *mut u8 {
    // SAFETY: log->data is the fake connection (set in start), whose
    // request carries the ctx naming the phase; nginx gives `len` bytes.
    unsafe {
        let fc = (*log).data as *mut ngx_connection_t;
        let mut out = Vec::with_capacity(96);
        if !(*log).action.is_null() {
            out.extend_from_slice(b" while ");
            out.extend_from_slice(std::ffi::CStr::from_ptr((*log).action).to_bytes());
        }
        out.extend_from_slice(b", context: ");
        let r = if fc.is_null() {
            ptr::null_mut()
        } else {
            (*fc).data as *mut ngx_http_request_t
        };
        let name = match RequestCtx::get(Request::from_ngx_http_request(r)) {
            Some(ctx) if !r.is_null() => ctx.context.context_name(),
            _ => "ssl_certificate_by_lua*",
        };
        out.extend_from_slice(name.as_bytes());
        crate::glue::fake_request::client_server(fc, &mut out);
        let n = out.len().min(len);
        ptr::copy_nonoverlapping(out.as_ptr(), buf, n);
        buf.add(n)
    }
}

/// A fake request for handshake code on connection `c`, with the
/// configuration of the virtual server the handshake has chosen so far.
///
/// # Safety
/// `c` must be a live HTTP connection in its TLS handshake.
pub unsafe fn fake_request(c: *mut ngx_connection_t) -> Option<*mut ngx_http_request_t> {
    // SAFETY: during the handshake c->data is the ngx_http_connection_t.
    unsafe {
        let hc = (*c).data as *mut ngx_http_connection_t;
        let cc = (*hc).conf_ctx;
        let r = fake_request::create(ConfRef {
            main_conf: (*cc).main_conf,
            srv_conf: (*cc).srv_conf,
            loc_conf: (*cc).loc_conf,
        })?;
        let fc = (*r).connection;
        (*fc).ssl = (*c).ssl;
        (*fc).addr_text = (*c).addr_text;
        (*fc).listening = (*c).listening;
        (*fc).sockaddr = (*c).sockaddr;
        (*fc).socklen = (*c).socklen;
        (*fc).local_sockaddr = (*c).local_sockaddr;
        (*fc).local_socklen = (*c).local_socklen;
        // The connection's log (its file, or syslog writer, and level),
        // with our context text.
        let log = (*fc).log;
        *log = *(*c).log;
        (*log).handler = Some(log_context);
        (*log).data = fc.cast();
        (*log).action = ptr::null_mut();
        Some(r)
    }
}

/// 1 (go on) or 0 (fail the handshake) for how the code ended.
pub fn exit_code(outcome: Outcome) -> c_int {
    match outcome {
        Outcome::Done | Outcome::Wait | Outcome::Exec => 1,
        Outcome::Exit(code) => {
            (code != NGX_ERROR as ngx_int_t && code < NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t) as c_int
        }
        Outcome::Error => 0,
    }
}

/// Starts `func` (a registry reference) as the entry thread of the fake
/// request `r` for `hs`. Ended at once: the exit code is set and the fake
/// request freed. Waiting: the run goes on through `on_finish`.
///
/// # Safety
/// `r` must come from `fake_request` for `hs.c`.
pub unsafe fn start(hs: &mut HsCtx, r: *mut ngx_http_request_t, phase: Context, func: c_int) -> Outcome {
    // SAFETY: `r` is a live request (callers' duty)
    let Some(ctx) = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }) else {
        // SAFETY: r is ours and unused.
        unsafe { fake_request::destroy(r) };
        hs.exit_code = 0;
        hs.done = true;
        return Outcome::Error;
    };
    ctx.context = phase;
    ctx.on_finish = Some(finished_after_wait);
    hs.r = r;
    hs.done = false;
    let outcome = super::scheduler::start(ctx, func);
    if outcome != Outcome::Wait {
        hs.exit_code = exit_code(outcome);
        hs.done = true;
        hs.r = ptr::null_mut();
        // SAFETY: the code ended; nothing refers to its fake request.
        unsafe { fake_request::destroy(r) };
    }
    outcome
}

/// Runs `func` to its end as a plain call on the fake request `r` (code
/// that may not wait: ssl_session_store_by_lua*), then frees `r`.
///
/// # Safety
/// `r` must come from `fake_request` for `hs.c`.
pub unsafe fn run_plain(
    hs: &mut HsCtx,
    r: *mut ngx_http_request_t,
    phase: Context,
    func: c_int,
) -> Result<(), String> {
    // SAFETY: `r` is a live request (callers' duty)
    let res = match RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }) {
        Some(ctx) => {
            ctx.context = phase;
            hs.r = r;
            // SAFETY: the worker's VM is set while nginx runs handlers.
            let res = unsafe { super::run_sync::in_request(ctx, phase, func, 0, 0) };
            hs.r = ptr::null_mut();
            res.map(|_| ())
        }
        None => Err("no memory".into()),
    };
    // SAFETY: the call ended; nothing refers to its fake request.
    unsafe { fake_request::destroy(r) };
    res
}

/// Abandons a run still waiting (a phase that may not wait); the fake
/// request goes with its waits.
pub fn abandon(hs: &mut HsCtx) {
    if hs.r.is_null() {
        return;
    }
    let r = std::mem::replace(&mut hs.r, ptr::null_mut());
    // SAFETY: r is the fake request of this run; its connection's ssl is
    // the real connection's, which must not be touched by the teardown.
    unsafe {
        (*(*r).connection).ssl = ptr::null_mut();
        fake_request::destroy(r);
    }
    hs.exit_code = 0;
    hs.done = true;
}

/// The code ended after waiting: record how, free its fake request, and
/// let nginx go back into SSL_do_handshake.
fn finished_after_wait(ctx: &mut RequestCtx, outcome: Outcome) {
    let r = ctx.r;
    // SAFETY: r is a live fake request whose connection shares the real
    // connection's ssl; the HsCtx lives as long as that connection.
    unsafe {
        let fc = (*r).connection;
        let ssl = if (*fc).ssl.is_null() {
            ptr::null_mut()
        } else {
            (*(*fc).ssl).connection
        };
        let hs = if ssl.is_null() { None } else { get(ssl) };
        let Some(hs) = hs else {
            fake_request::destroy(r);
            return;
        };
        hs.exit_code = exit_code(outcome);
        hs.done = true;
        hs.r = ptr::null_mut();
        fake_request::destroy(r);
        let c = hs.c;
        crate::glue::log::log_debug_http!((*c).log, "lua ssl handshake code done after waiting");
        ngx_post_event((*c).write, ptr::addr_of_mut!(ngx_posted_events));
    }
}
