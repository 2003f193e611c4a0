//! Which kind of Lua code is running, as lua-nginx-module's context
//! bitmask (`NGX_HTTP_LUA_CONTEXT_*`), and the one permission check of the
//! API: `check(REWRITE | ACCESS | CONTENT)?`.

use std::cell::Cell;
use std::ops::BitOr;

use crate::glue::loop_local::loop_local;

/// One context bit, or a set of them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Context(u32);

impl Context {
    pub const fn or(self, other: Context) -> Context {
        Context(self.0 | other.0)
    }

    /// Is this context one of `set`?
    pub fn is(self, set: Context) -> bool {
        self.0 & set.0 != 0
    }

    /// The name `ngx.get_phase()` returns.
    pub fn name(self) -> &'static str {
        match self {
            INIT => "init",
            INIT_WORKER => "init_worker",
            SET => "set",
            SERVER_REWRITE => "server_rewrite",
            REWRITE => "rewrite",
            ACCESS => "access",
            CONTENT => "content",
            LOG => "log",
            HEADER_FILTER => "header_filter",
            BODY_FILTER => "body_filter",
            TIMER => "timer",
            EXIT_WORKER => "exit_worker",
            BALANCER => "balancer",
            SSL_CERT => "ssl_cert",
            SSL_SESS_STORE => "ssl_session_store",
            SSL_SESS_FETCH => "ssl_session_fetch",
            SSL_CLIENT_HELLO => "ssl_client_hello",
            PROXY_SSL_VERIFY => "proxy_ssl_verify",
            PROXY_SSL_CERT => "proxy_ssl_cert",
            _ => "unknown",
        }
    }

    /// The context name in lua-nginx-module's "API disabled" errors.
    pub fn context_name(self) -> &'static str {
        match self {
            INIT => "init_by_lua*",
            INIT_WORKER => "init_worker_by_lua*",
            SET => "set_by_lua*",
            SERVER_REWRITE => "server_rewrite_by_lua*",
            REWRITE => "rewrite_by_lua*",
            ACCESS => "access_by_lua*",
            CONTENT => "content_by_lua*",
            LOG => "log_by_lua*",
            HEADER_FILTER => "header_filter_by_lua*",
            BODY_FILTER => "body_filter_by_lua*",
            TIMER => "ngx.timer",
            EXIT_WORKER => "exit_worker_by_lua*",
            BALANCER => "balancer_by_lua*",
            SSL_CERT => "ssl_certificate_by_lua*",
            SSL_SESS_STORE => "ssl_session_store_by_lua*",
            SSL_SESS_FETCH => "ssl_session_fetch_by_lua*",
            SSL_CLIENT_HELLO => "ssl_client_hello_by_lua*",
            PROXY_SSL_VERIFY => "proxy_ssl_verify_by_lua*",
            PROXY_SSL_CERT => "proxy_ssl_certificate_by_lua*",
            _ => "(unknown)",
        }
    }
}

impl BitOr for Context {
    type Output = Context;
    fn bitor(self, other: Context) -> Context {
        self.or(other)
    }
}

/// No Lua code of ours runs.
pub const NONE: Context = Context(0);
pub const SET: Context = Context(0x0001);
pub const REWRITE: Context = Context(0x0002);
pub const ACCESS: Context = Context(0x0004);
pub const CONTENT: Context = Context(0x0008);
pub const LOG: Context = Context(0x0010);
pub const HEADER_FILTER: Context = Context(0x0020);
pub const BODY_FILTER: Context = Context(0x0040);
pub const TIMER: Context = Context(0x0080);
pub const INIT_WORKER: Context = Context(0x0100);
pub const BALANCER: Context = Context(0x0200);
pub const SSL_CERT: Context = Context(0x0400);
pub const SSL_SESS_STORE: Context = Context(0x0800);
pub const SSL_SESS_FETCH: Context = Context(0x1000);
pub const EXIT_WORKER: Context = Context(0x2000);
pub const SSL_CLIENT_HELLO: Context = Context(0x4000);
pub const SERVER_REWRITE: Context = Context(0x8000);
/// lua-nginx-module master's upstream TLS hooks (proxy_ssl_*_by_lua*).
pub const PROXY_SSL_VERIFY: Context = Context(0x1_0000);
pub const PROXY_SSL_CERT: Context = Context(0x4_0000);
/// Code of the upstream handshake (runs on the client request).
pub const PROXY_SSL: Context = PROXY_SSL_VERIFY.or(PROXY_SSL_CERT);
/// init_by_lua*: lua-nginx-module has no bit for it (its code runs with no
/// request ctx at all); ours sits above the bits it uses.
pub const INIT: Context = Context(0x1000_0000);

/// Request phases that may wait.
pub const REQUEST_YIELDABLE: Context = SERVER_REWRITE.or(REWRITE).or(ACCESS).or(CONTENT);
/// Handshake code that may wait (lua-nginx-module's yieldable TLS phases).
pub const SSL_YIELDABLE: Context = SSL_CERT.or(SSL_CLIENT_HELLO).or(SSL_SESS_FETCH);
/// Code of the TLS handshake.
pub const SSL_ANY: Context = SSL_YIELDABLE.or(SSL_SESS_STORE);
/// Every context that may wait.
pub const YIELDABLE: Context = REQUEST_YIELDABLE.or(TIMER).or(SSL_YIELDABLE);
/// Code that runs on a fake request of ours (no client request behind it).
pub const ON_FAKE_REQUEST: Context = TIMER.or(SSL_ANY);
/// Request phases before the response body goes out (filters included).
pub const REQUEST_NO_LOG: Context = SET
    .or(SERVER_REWRITE)
    .or(REWRITE)
    .or(ACCESS)
    .or(CONTENT)
    .or(HEADER_FILTER)
    .or(BODY_FILTER);
/// Every request phase, log included.
pub const REQUEST_ALL: Context = REQUEST_NO_LOG.or(LOG);
/// Contexts that run on behalf of a client request (balancer included).
pub const ANY_REQUEST: Context = REQUEST_ALL.or(BALANCER).or(PROXY_SSL);

// Per thread, without a thread-local access on the event loop's (see
// loop_local): a pool thread of ngx.run_worker_thread runs in NONE.
loop_local! {
    // The context of the code running now: which Lua code runs is a
    // property of the call stack (a header filter runs inside content
    // code's ngx.say), not of the VM or the cycle.
    static CURRENT: Cell<Context> = const { Cell::new(NONE) };
}

pub fn current() -> Context {
    CURRENT.get()
}

/// Sets the running context until the guard drops (contexts nest: a header
/// filter can run inside content code's ngx.say).
pub struct ContextGuard(Context);

impl ContextGuard {
    pub fn enter(c: Context) -> ContextGuard {
        ContextGuard(CURRENT.replace(c))
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CURRENT.set(self.0);
    }
}

/// `check` for the APIs that read or change the request itself (its
/// variables, status, headers, URI, arguments, body): a timer runs on a
/// fake request, where lua-nginx-module refuses them with its own text.
pub fn check_request_data(allowed: Context) -> Result<Context, String> {
    let c = current();
    if c.is(TIMER) {
        return Err("API disabled in the current context".to_string());
    }
    check_in(c, allowed)
}

/// lua-nginx-module's error for an API call outside the contexts `allowed`;
/// the running context when allowed.
pub fn check(allowed: Context) -> Result<Context, String> {
    check_in(current(), allowed)
}

/// `check` for the running context `c`.
#[inline]
fn check_in(c: Context, allowed: Context) -> Result<Context, String> {
    if c.is(allowed) { Ok(c) } else { Err(disabled(c)) }
}

/// `check`'s error, out of line: only the refusal formats a message.
#[cold]
#[inline(never)]
fn disabled(c: Context) -> String {
    format!("API disabled in the context of {}", c.context_name())
}
