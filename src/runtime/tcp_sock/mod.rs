//! The state machine of one cosocket (TCP, UDP, or the request socket):
//! the state, waiting and the nginx event handlers here; connecting
//! (pool, backlog, resolver) in `connect.rs`; send, the receive patterns,
//! keepalive and close in `io.rs`; the client-connection mode in
//! `downstream.rs`; TLS in `runtime/tcp_tls.rs`.
//!
//! An operation either completes at once (`Step::Ready`, its Lua results)
//! or waits (`Step::Wait`): the API layer then parks a `SockWait` on the
//! request thread and yields. The event handler finishes the operation and
//! wakes that thread with the results. Dropping the `SockWait` of an
//! operation still pending (the request ended, the thread was killed)
//! cancels it (a half-done connect closes the connection).

use smallvec::smallvec;
use std::ffi::c_void;

use nginx_sys::{
    NGX_AGAIN, NGX_LOG_ERR, NGX_OK, ngx_add_timer, ngx_connection_error, ngx_connection_t, ngx_del_timer,
    ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_http_request_t, ngx_msec_t,
    ngx_pool_cleanup_add, ngx_pool_cleanup_t, ngx_resolve_name, ngx_resolve_name_done, ngx_resolve_start,
    ngx_resolver_ctx_t, ngx_resolver_strerror, ngx_str_t,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule, Request};

use super::client_abort;
use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use super::socket_pool;
use crate::conf::socket::SocketConf;
use crate::glue::{log, peer};
use crate::lua::{ffi, lua_State, push_bytes};

mod connect;
mod downstream;
mod io;
mod spare;
mod until;

use spare::{give_back, parkable, spare_buf};
pub use spare::{new_sock, recycle};
pub use until::UntilPat;

/// A Lua result value of a socket operation.
/// A cosocket call's results: at most three values, kept inline.
pub type Vals = smallvec::SmallVec<[Val; 3]>;

pub enum Val {
    Nil,
    Int(i64),
    Str(Vec<u8>),
    True,
    /// An SSL session reference, handed over to Lua.
    Session(*mut nginx_sys::SSL_SESSION),
    /// The value the caller pushed on the stack just before (a result
    /// echoed back from the arguments).
    Arg,
    /// A received string left in the socket's `out` buffer (`received()`):
    /// pushed (`TcpSock::push`) or copied by the FFI caller at once, before
    /// the socket's next operation; no copy into a `Vec` of its own.
    Out,
}

impl Val {
    pub fn err(msg: &str) -> Vals {
        smallvec![Val::Nil, Val::Str(msg.as_bytes().to_vec())]
    }
}

/// Pushes results on `l`, returning how many.
///
/// # Safety
/// `l` must be a valid state with room for the values.
pub unsafe fn push_vals(l: *mut lua_State, vals: &[Val]) -> i32 {
    for v in vals {
        match v {
            // SAFETY: `l` is the running state (callers' duty)
            Val::Nil => unsafe { ffi::lua_pushnil(l) },
            // SAFETY: `l` is the running state (callers' duty)
            Val::Int(n) => unsafe { ffi::lua_pushinteger(l, *n as ffi::lua_Integer) },
            // SAFETY: `l` is the running state (callers' duty)
            Val::Str(s) => unsafe { push_bytes(l, s) },
            // SAFETY: `l` is the running state (callers' duty)
            Val::True => unsafe { ffi::lua_pushboolean(l, 1) },
            // SAFETY: `l` is the running state (callers' duty)
            Val::Session(p) => unsafe { super::tcp_tls::push_session(l, *p) },
            Val::Arg => {}
            // SAFETY: `l` is the running state (callers' duty)
            Val::Out => unsafe { ffi::lua_pushnil(l) },
        }
    }
    vals.len() as i32
}

pub enum Step {
    Ready(Vals),
    Wait,
}

#[derive(Clone)]
pub enum RecvKind {
    Line,
    All,
    Size(usize),
    Any(usize),
    /// One datagram of at most this size (UDP sockets).
    Datagram(usize),
    /// `receiveuntil`: the iterator's matcher, and the size asked for
    /// (0: up to the pattern).
    Until(std::rc::Rc<UntilPat>, usize),
}

/// The write side's operation (connecting counts as writing).
#[derive(Clone, Copy, PartialEq, Eq)]
enum WOp {
    Idle,
    /// Waiting in the backlog queue of a full pool.
    Queued,
    Resolve,
    Connect,
    Send,
    Handshake,
}

/// A socket reads and writes independently (one thread may wait in
/// receive while another sends): each side has its own waiter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Read,
    Write,
}

type Waiter = (*mut RequestCtx, *mut lua_State);

/// Identifies a request beyond its (reusable) address.
pub type Owner = (usize, usize, i64, usize);

/// The identity of request `r`.
///
/// # Safety
/// `r` must be live.
pub unsafe fn owner_id(r: *mut ngx_http_request_t) -> Owner {
    (
        r as usize,
        // SAFETY: `r` is a live request (callers' duty)
        (unsafe { (*(*r).connection).number }) as usize,
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { (*r).start_sec },
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { (*r).start_msec },
    )
}

pub struct TcpSock {
    /// The request (or timer) that owns the socket; null once it is gone.
    pub r: *mut ngx_http_request_t,
    /// Which request that was: a socket never serves another one.
    pub owner: Option<Owner>,
    cln: *mut ngx_pool_cleanup_t,
    pub conn: *mut ngx_connection_t,
    conf: *const SocketConf,
    /// "host:port" for logs and nginx's connect errors.
    name: Vec<u8>,
    name_str: ngx_str_t,
    host: Vec<u8>,
    port: u16,
    pub pool_key: Vec<u8>,
    pub pool_size: Option<usize>,
    /// connect, send, read; None means the location's default.
    pub timeouts: [Option<ngx_msec_t>; 3],
    /// Bytes received; those from `rpos` on are not consumed yet.
    rbuf: Vec<u8>,
    /// What receives consumed of `rbuf`: taken from the front without
    /// moving the rest (a line at a time would move the rest per line);
    /// the buffer is compacted before the next read into it. Below
    /// `rbuf.len()`, or both are 0 (so `rbuf.is_empty()` says that nothing
    /// is left unread).
    rpos: usize,
    /// What the pending receive consumed so far: its result, or the partial
    /// data it returns when it fails.
    out: Vec<u8>,
    /// Bytes the pending receive still wants (sized reads).
    rest: usize,
    /// The peer closed its side: reads end with what is buffered.
    eof: bool,
    /// A receive failed (not timed out): the read half is done with, the
    /// connection stays open for sending until closed (lua-nginx-module's
    /// finalize_read_part).
    pub read_closed: bool,
    /// A send failed or timed out: the write half is done with.
    pub write_closed: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    rop: Option<RecvKind>,
    wop: WOp,
    rwaiter: Option<Waiter>,
    wwaiter: Option<Waiter>,
    pub reused: u32,
    /// connect() was called before on this object (lua-nginx-module then
    /// reuses its upstream state, and says so in the debug log).
    connected_before: bool,
    rctx: *mut ngx_resolver_ctx_t,
    resolving_sync: bool,
    resolved: Option<Result<peer::Addr, String>>,
    pub local: Option<Box<(peer::Addr, nginx_sys::ngx_addr_t, Vec<u8>)>>,
    pub tls: Option<Box<crate::runtime::tcp_tls::Handshake>>,
    /// `settrustedstore`'s store, taken by the next handshake.
    pub trusted_store: Option<crate::runtime::tcp_tls_peer::TrustedStore>,
    /// A UDP socket (ngx.socket.udp): connected datagrams, no pool.
    pub dgram: bool,
    /// The client connection of `ngx.req.socket()`: not ours to close; its
    /// events reach us through the request's event handlers.
    pub downstream: Option<Downstream>,
    unix: bool,
    /// The `backlog` connect option: see socket_pool.
    pub backlog: Option<usize>,
    /// The pool this socket holds one of the connection counts of (it
    /// connected through it, or waits in its backlog queue): the pool
    /// exists while the socket counts in it.
    pool: Option<socket_pool::PoolRef>,
    /// Timer of a connect waiting in the backlog queue (its timeout, or a
    /// zero delay once granted a slot).
    queue_ev: ngx_event_t,
    granted: bool,
    /// The results of the last FFI call that failed, kept until the Lua
    /// side copied them (it does so before anything else runs).
    pub ffi_last: Vals,
}

/// How a request socket reads the client connection.
pub struct Downstream {
    /// Bytes of request body still unread; None for a raw socket or a
    /// chunked body.
    pub rest: Option<u64>,
    /// The decoder of a chunked request body.
    pub chunked: Option<crate::runtime::chunked::Chunked>,
    pub raw: bool,
    /// The chunked body was malformed: reads fail.
    pub bad: bool,
    /// The request's keepalive, suspended until the body is all read.
    pub keepalive: bool,
}

impl TcpSock {
    pub fn new() -> TcpSock {
        TcpSock {
            r: std::ptr::null_mut(),
            owner: None,
            cln: std::ptr::null_mut(),
            conn: std::ptr::null_mut(),
            conf: std::ptr::null(),
            name: Vec::new(),
            name_str: ngx_str_t::empty(),
            host: Vec::new(),
            port: 0,
            pool_key: Vec::new(),
            pool_size: None,
            timeouts: [None; 3],
            rbuf: Vec::new(),
            rpos: 0,
            out: Vec::new(),
            rest: 0,
            eof: false,
            read_closed: false,
            write_closed: false,
            wbuf: Vec::new(),
            wpos: 0,
            rop: None,
            wop: WOp::Idle,
            rwaiter: None,
            wwaiter: None,
            reused: 0,
            connected_before: false,
            rctx: std::ptr::null_mut(),
            resolving_sync: false,
            resolved: None,
            local: None,
            tls: None,
            trusted_store: None,
            dgram: false,
            downstream: None,
            unix: false,
            backlog: None,
            pool: None,
            // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
            queue_ev: unsafe { std::mem::MaybeUninit::zeroed().assume_init() },
            granted: false,
            ffi_last: Vals::new(),
        }
    }

    /// Back to a new socket's state, keeping the memory of the name
    /// buffers (see `spare::recycle`). The socket must be released.
    pub(super) fn reset(&mut self) {
        let mut bufs = [
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.host),
            std::mem::take(&mut self.pool_key),
        ];
        *self = TcpSock::new();
        for b in &mut bufs {
            b.clear();
        }
        let [name, host, pool_key] = bufs;
        (self.name, self.host, self.pool_key) = (name, host, pool_key);
    }

    /// Pushes `vals` on `l` (`Val::Out` from this socket's `out`),
    /// returning how many.
    ///
    /// # Safety
    /// `l` must be a valid state with room for the values.
    pub unsafe fn push(&self, l: *mut lua_State, vals: &[Val]) -> i32 {
        if let [Val::Out] = vals {
            // SAFETY: `l` is a valid state with room (callers' duty)
            unsafe { push_bytes(l, &self.out) };
            return 1;
        }
        // SAFETY: as above
        unsafe { push_vals(l, vals) }
    }

    /// Consumes the first `n` unread bytes of `rbuf`.
    fn consume(&mut self, n: usize) {
        self.rpos += n;
        if self.rpos >= self.rbuf.len() {
            self.clear_rbuf();
        }
    }

    /// Drops whatever `rbuf` holds.
    fn clear_rbuf(&mut self) {
        self.rbuf.clear();
        self.rpos = 0;
    }

    /// Moves the unread bytes of `rbuf` to its front, before more are read
    /// in after them.
    fn compact(&mut self) {
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
    }

    fn kind_name(&self) -> &'static str {
        if self.dgram { "udp" } else { "tcp" }
    }

    /// lua-nginx-module's "socket busy ..." error when an operation on the
    /// `read` and/or `write` side cannot start now.
    pub fn busy_for(&self, read: bool, write: bool) -> Option<&'static str> {
        match self.wop {
            WOp::Queued | WOp::Resolve | WOp::Connect | WOp::Handshake => {
                return Some("socket busy connecting");
            }
            WOp::Send if write => return Some("socket busy writing"),
            _ => {}
        }
        (read && self.rop.is_some()).then_some("socket busy reading")
    }

    fn conf(&self) -> &SocketConf {
        // SAFETY: conf points into the location configuration, which lives
        // as long as the cycle (set at connect).
        unsafe { self.conf.as_ref() }.unwrap_or(&SocketConf::EMPTY)
    }

    pub fn timeout(&self, i: usize) -> ngx_msec_t {
        let c = self.conf();
        self.timeouts[i].unwrap_or(match i {
            0 => c.connect_timeout(),
            1 => c.send_timeout(),
            _ => c.read_timeout(),
        })
    }

    /// The log of the owning request (or of the request running now).
    pub(super) fn req_log(&self) -> *mut nginx_sys::ngx_log_t {
        let r = if self.r.is_null() {
            super::ctx::current().map_or(std::ptr::null_mut(), |c| c.r)
        } else {
            self.r
        };
        if r.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: r is live while it owns the socket (cleared by the
        // cleanup), or it is the request running now.
        unsafe { (*(*r).connection).log }
    }

    /// An error line in the request's log, unless lua_socket_log_errors
    /// is off; formatted only when the log takes it.
    pub fn log_err(&self, args: std::fmt::Arguments<'_>) {
        if !self.conf().log_errors() {
            return;
        }
        let l = self.req_log();
        if !l.is_null() {
            log::log_error!(l, NGX_LOG_ERR, "{args}");
        }
    }

    /// lua-nginx-module's error for using a finalized socket, with the state
    /// it prints ("attempt to receive data on a closed socket: u:..., c:...,
    /// ft:0 eof:1").
    pub fn log_closed(&self, what: &str) {
        let (u, c) = (self as *const TcpSock as usize, self.conn as usize);
        if self.dgram {
            self.log_err(format_args!(
                "attempt to {what} data on a closed socket: u:{u:016X}, c:{c:016X}"
            ));
        } else {
            self.log_err(format_args!(
                "attempt to {what} data on a closed socket: u:{u:016X}, c:{c:016X}, ft:0 eof:{}",
                self.eof as u8
            ));
        }
    }

    /// An http debug line in the request's log, as lua-nginx-module writes
    /// them (tests and operators grep for these); formatted only when the
    /// log takes it.
    pub fn debug(&self, args: std::fmt::Arguments<'_>) {
        let l = self.req_log();
        if !l.is_null() {
            log::log_debug_http!(l, "{args}");
        }
    }

    /// Whether `debug` writes anything (to skip working out what it
    /// would say).
    pub(super) fn debug_on(&self) -> bool {
        let l = self.req_log();
        !l.is_null() && log::debug_http_enabled(l)
    }

    /// Ties the socket to request `r`: a pool cleanup closes it when the
    /// request goes away.
    ///
    /// # Safety
    /// `r` must be live; `self` must stay at this address (it is boxed).
    pub unsafe fn bind_request(&mut self, r: *mut ngx_http_request_t) -> Result<(), String> {
        if self.r == r && !r.is_null() {
            return Ok(());
        }
        // SAFETY: `r` is a live request (callers' duty)
        let cln = unsafe { ngx_pool_cleanup_add((*r).pool, 0) };
        if cln.is_null() {
            return Err("no memory".into());
        }
        // SAFETY: `cln` was added to the live request's pool; release() unhooks it before the socket is freed
        unsafe {
            (*cln).handler = Some(request_cleanup);
            (*cln).data = (self as *mut TcpSock).cast();
        }
        self.r = r;
        // SAFETY: `r` is a live request (callers' duty)
        self.owner = Some(unsafe { owner_id(r) });
        self.cln = cln;
        // SAFETY: `r` is a live request (callers' duty)
        self.conf = &unsafe { crate::conf::loc_conf(r) }.socket;
        Ok(())
    }

    /// Called when the Lua object is collected: nothing may point at us.
    pub fn release(&mut self) {
        if !self.conn.is_null() {
            self.debug(format_args!("lua finalize socket"));
        }
        self.abort();
        if self.downstream.is_some() && !self.cln.is_null() {
            // SAFETY: a non-null cln means the request is still alive.
            if let Some(ctx) = RequestCtx::get(unsafe { Request::from_ngx_http_request(self.r) })
                && std::ptr::eq(ctx.req_sock, self)
            {
                ctx.req_sock = std::ptr::null_mut();
            }
        }
        if !self.cln.is_null() {
            // SAFETY: a non-null cln means the request pool (and the cleanup
            // entry in it) is still alive.
            unsafe { (*self.cln).handler = None };
            self.cln = std::ptr::null_mut();
        }
        self.r = std::ptr::null_mut();
        self.rpos = 0;
        give_back(std::mem::take(&mut self.rbuf));
        give_back(std::mem::take(&mut self.out));
    }

    /// Cancels whatever is pending and closes the connection.
    /// The thread waiting on `side` went away (its request ended or it was
    /// killed): stop that operation. A half-done connect cannot be resumed
    /// later, so it closes the connection.
    pub fn cancel(&mut self, side: Side) {
        match side {
            Side::Read => {
                self.rwaiter = None;
                self.rop = None;
                self.out.clear();
                self.del_timer(false);
            }
            Side::Write => {
                if self.wop != WOp::Send {
                    return self.abort();
                }
                self.wwaiter = None;
                self.wop = WOp::Idle;
                self.del_timer(true);
            }
        }
    }

    fn del_timer(&mut self, write: bool) {
        if self.conn.is_null() {
            return;
        }
        // SAFETY: conn is live.
        unsafe {
            let ev = if write {
                (*self.conn).write
            } else {
                (*self.conn).read
            };
            if (*ev).timer_set() != 0 {
                ngx_del_timer(ev);
            }
        }
    }

    pub fn abort(&mut self) {
        if self.wop == WOp::Queued {
            let me: *mut TcpSock = self;
            self.debug(format_args!(
                "lua tcp socket abort queueing, u: {:016x}",
                me as usize
            ));
            if let Some(pool) = self.pool.take() {
                // SAFETY: the pool exists while this socket counts in it
                unsafe { socket_pool::dequeue(pool, me, false) };
            }
        }
        if self.queue_ev.timer_set() != 0 {
            // SAFETY: the event is in nginx's timer tree; it leaves it now.
            unsafe { ngx_del_timer(&mut self.queue_ev) };
        }
        self.granted = false;
        self.rwaiter = None;
        self.wwaiter = None;
        self.rop = None;
        self.wop = WOp::Idle;
        if !self.rctx.is_null() {
            self.debug(format_args!("lua tcp socket abort resolver"));
            // SAFETY: rctx is the live resolution we started.
            unsafe { ngx_resolve_name_done(self.rctx) };
            self.rctx = std::ptr::null_mut();
        }
        self.close_conn();
    }

    fn close_conn(&mut self) {
        if self.downstream.is_some() {
            self.release_downstream();
            return;
        }
        if !self.conn.is_null() {
            // SAFETY: conn is our open connection; nothing refers to it after.
            unsafe { peer::close(self.conn) };
            self.conn = std::ptr::null_mut();
        }
        self.uncount();
        self.tls = None;
        self.clear_rbuf();
        self.out.clear();
    }

    // ---- waiting ----

    /// The side whose operation just started waiting (no waiter yet).
    pub fn unclaimed_side(&self) -> Side {
        if self.rop.is_some() && self.rwaiter.is_none() {
            Side::Read
        } else {
            Side::Write
        }
    }

    /// An operation started and waits with nobody parked on it yet (what
    /// `unclaimed_side` then names).
    pub fn has_unclaimed(&self) -> bool {
        (self.rop.is_some() && self.rwaiter.is_none()) || (self.wop != WOp::Idle && self.wwaiter.is_none())
    }

    /// The result a receive left in `out` (`Val::Out`).
    pub fn received(&self) -> &[u8] {
        &self.out
    }

    /// Records who waits on the pending operation of `side`.
    pub fn set_waiter(&mut self, side: Side, ctx: *mut RequestCtx, co: *mut lua_State) {
        let w = Some((ctx, co));
        match side {
            Side::Read => self.rwaiter = w,
            Side::Write => self.wwaiter = w,
        }
    }

    /// Marks a TLS handshake as the pending (write side) operation.
    pub fn set_handshaking(&mut self, on: bool) {
        self.wop = if on { WOp::Handshake } else { WOp::Idle };
    }

    /// connect() was called on this object at least once (lua-nginx-module
    /// has no socket state before that).
    pub fn was_connected(&self) -> bool {
        self.connected_before
    }

    pub fn conf_ptr(&self) -> *const SocketConf {
        self.conf
    }

    /// Closes the connection now (a failed handshake).
    pub fn close_now(&mut self) {
        self.close_conn();
    }

    /// Our event handlers again, after nginx's TLS handshake used its own.
    pub fn restore_handlers(&mut self) {
        if !self.conn.is_null() {
            // SAFETY: conn is our live connection.
            unsafe {
                (*(*self.conn).read).handler = Some(on_read);
                (*(*self.conn).write).handler = Some(on_write);
            }
        }
    }

    /// Ends the pending operation of `side`: wakes its waiting thread with
    /// `vals`. The socket may be gone when this returns.
    pub fn finish(&mut self, side: Side, vals: Vals) {
        let waiter = match side {
            Side::Read => {
                self.rop = None;
                self.rwaiter.take()
            }
            Side::Write => {
                self.wop = WOp::Idle;
                self.wwaiter.take()
            }
        };
        let Some((ctx, co)) = waiter else {
            return;
        };
        // SAFETY: the waiter's ctx is live: its cleanup would have dropped
        // the SockWait, clearing `waiter`, before the ctx went.
        unsafe {
            let mine = (*ctx).take_wait(co);
            drop(mine);
            let n = self.push(co, &vals);
            wake(ctx, co, n);
        }
    }

    /// Dispatches an event of the connection to the pending operation.
    ///
    /// # Safety
    /// `ev` must be the read (`write` false) or write event of this socket's
    /// live connection.
    unsafe fn on_event(&mut self, ev: *mut ngx_event_t, write: bool) {
        if self.wop == WOp::Connect {
            // SAFETY: `ev` is an event of our connection (caller's contract).
            unsafe { self.connect_ready(ev) }
        } else if write && self.wop == WOp::Send {
            // SAFETY: `ev` is our connection's write event (caller's contract).
            unsafe { self.writable(ev) }
        } else if !write && self.rop.is_some() {
            // SAFETY: `ev` is our connection's read event (caller's contract).
            unsafe { self.readable(ev) }
        }
    }
}

impl Default for TcpSock {
    fn default() -> Self {
        Self::new()
    }
}

/// The wait a thread holds while its socket operation is pending.
pub struct SockWait(pub *mut TcpSock, pub Side);

impl Wait for SockWait {}

impl Drop for SockWait {
    fn drop(&mut self) {
        // SAFETY: the socket outlives its pending operation (the Lua object
        // is on the waiting thread's stack, which this wait is dropped
        // before).
        unsafe {
            let s = &mut *self.0;
            let pending = match self.1 {
                Side::Read => s.rwaiter.is_some(),
                Side::Write => s.wwaiter.is_some(),
            };
            if pending {
                s.cancel(self.1);
            }
        }
    }
}

unsafe extern "C" fn on_read(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data of our connections' events is the connection, whose
        // data is the owning socket (set in attach).
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let s = (*c).data as *mut TcpSock;
            (*s).on_event(ev, false);
        }
    })
}

unsafe extern "C" fn on_write(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: as in on_read.
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let s = (*c).data as *mut TcpSock;
            (*s).on_event(ev, true);
        }
    })
}

unsafe extern "C" fn request_cleanup(data: *mut c_void) {
    crate::glue::catch((), || {
        // SAFETY: data is the socket registered in bind_request; release()
        // unhooks this cleanup before the socket is freed.
        unsafe {
            let s = data as *mut TcpSock;
            (*s).cln = std::ptr::null_mut();
            (*s).abort();
            (*s).r = std::ptr::null_mut();
        }
    })
}
