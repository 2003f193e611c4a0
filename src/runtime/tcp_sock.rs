//! The state machine of one TCP cosocket: connect (with name resolution and
//! the keepalive pool), send, the receive patterns, TLS handshake, and the
//! nginx event handlers that carry a waiting operation on.
//!
//! An operation either completes at once (`Step::Ready`, its Lua results)
//! or waits (`Step::Wait`): the API layer then parks a `SockWait` on the
//! request thread and yields. The event handler finishes the operation and
//! wakes that thread with the results. Dropping the `SockWait` of an
//! operation still pending (the request ended, the thread was killed)
//! aborts it and closes the connection.

use std::ffi::c_void;

use nginx_sys::{
    ngx_add_timer, ngx_connection_error, ngx_connection_t, ngx_del_timer, ngx_event_t, ngx_handle_read_event,
    ngx_handle_write_event, ngx_http_request_t, ngx_msec_t, ngx_pool_cleanup_add, ngx_pool_cleanup_t,
    ngx_resolve_name, ngx_resolve_name_done, ngx_resolve_start, ngx_resolver_ctx_t, ngx_resolver_strerror,
    ngx_str_t, NGX_AGAIN, NGX_LOG_ERR, NGX_OK,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use super::ctx::RequestCtx;
use super::lua::{ffi, lua_State, push_bytes};
use super::scheduler::{wake, Wait};
use super::socket_pool;
use crate::conf::socket::SocketConf;
use crate::glue::{log, peer};

/// A Lua result value of a socket operation.
pub enum Val {
    Nil,
    Int(i64),
    Str(Vec<u8>),
    True,
    /// An SSL session reference, handed over to Lua.
    Session(*mut nginx_sys::SSL_SESSION),
}

impl Val {
    pub fn err(msg: &str) -> Vec<Val> {
        vec![Val::Nil, Val::Str(msg.as_bytes().to_vec())]
    }
}

/// Pushes results on `l`, returning how many.
///
/// # Safety
/// `l` must be a valid state with room for the values.
pub unsafe fn push_vals(l: *mut lua_State, vals: &[Val]) -> i32 {
    for v in vals {
        match v {
            Val::Nil => ffi::lua_pushnil(l),
            Val::Int(n) => ffi::lua_pushinteger(l, *n as ffi::lua_Integer),
            Val::Str(s) => push_bytes(l, s),
            Val::True => ffi::lua_pushboolean(l, 1),
            Val::Session(p) => super::tcp_tls::push_session(l, *p),
        }
    }
    vals.len() as i32
}

pub enum Step {
    Ready(Vec<Val>),
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
    Until {
        pat: Vec<u8>,
        inclusive: bool,
        size: Option<usize>,
    },
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
        (*(*r).connection).number as usize,
        (*r).start_sec,
        (*r).start_msec,
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
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    rop: Option<RecvKind>,
    wop: WOp,
    rwaiter: Option<Waiter>,
    wwaiter: Option<Waiter>,
    /// One side failed the connection while the other side waits: that
    /// side reports "closed" on its next event, then the connection goes.
    broken: bool,
    pub reused: u32,
    rctx: *mut ngx_resolver_ctx_t,
    resolving_sync: bool,
    resolved: Option<Result<peer::Addr, String>>,
    pub local: Option<Box<(peer::Addr, nginx_sys::ngx_addr_t, Vec<u8>)>>,
    pub tls: Option<Box<crate::runtime::tcp_tls::Handshake>>,
    /// A UDP socket (ngx.socket.udp): connected datagrams, no pool.
    pub dgram: bool,
    /// The client connection of `ngx.req.socket()`: not ours to close; its
    /// events reach us through the request's event handlers.
    pub downstream: Option<Downstream>,
    unix: bool,
    /// The `backlog` connect option: see socket_pool.
    pub backlog: Option<usize>,
    /// The connection counts against its pool's open-connection limit.
    counted: bool,
    /// Timer of a connect waiting in the backlog queue (its timeout, or a
    /// zero delay once granted a slot).
    queue_ev: ngx_event_t,
    granted: bool,
}

/// How a request socket reads the client connection.
pub struct Downstream {
    /// Bytes of request body still unread; None for a raw socket.
    pub rest: Option<u64>,
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
            wbuf: Vec::new(),
            wpos: 0,
            rop: None,
            wop: WOp::Idle,
            rwaiter: None,
            wwaiter: None,
            broken: false,
            reused: 0,
            rctx: std::ptr::null_mut(),
            resolving_sync: false,
            resolved: None,
            local: None,
            tls: None,
            dgram: false,
            downstream: None,
            unix: false,
            backlog: None,
            counted: false,
            // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
            queue_ev: unsafe { std::mem::MaybeUninit::zeroed().assume_init() },
            granted: false,
        }
    }

    fn kind_name(&self) -> &'static str {
        if self.dgram {
            "udp"
        } else {
            "tcp"
        }
    }

    /// lua-nginx-module's "socket busy ..." error when an operation on the
    /// `read` and/or `write` side cannot start now.
    pub fn busy_for(&self, read: bool, write: bool) -> Option<&'static str> {
        match self.wop {
            WOp::Queued | WOp::Resolve | WOp::Connect | WOp::Handshake => {
                return Some("socket busy connecting")
            }
            WOp::Send if write => return Some("socket busy writing"),
            _ => {}
        }
        (read && self.rop.is_some()).then_some("socket busy reading")
    }

    fn usable(&self) -> bool {
        !self.conn.is_null() && !self.broken
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

    pub fn log_err(&self, msg: &str) {
        if !self.conf().log_errors() {
            return;
        }
        let r = if self.r.is_null() {
            super::ctx::current().map_or(std::ptr::null_mut(), |c| c.r)
        } else {
            self.r
        };
        if r.is_null() {
            return;
        }
        // SAFETY: r is live while it owns the socket (cleared by the
        // cleanup), or it is the request running now.
        let l = unsafe { (*(*r).connection).log };
        log::error(l, NGX_LOG_ERR, msg.as_bytes());
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
        let cln = ngx_pool_cleanup_add((*r).pool, 0);
        if cln.is_null() {
            return Err("no memory".into());
        }
        (*cln).handler = Some(request_cleanup);
        (*cln).data = (self as *mut TcpSock).cast();
        self.r = r;
        self.owner = Some(owner_id(r));
        self.cln = cln;
        self.conf = &crate::module::loc_conf(r).socket;
        Ok(())
    }

    /// Called when the Lua object is collected: nothing may point at us.
    pub fn release(&mut self) {
        self.abort();
        if self.downstream.is_some() && !self.cln.is_null() {
            // SAFETY: a non-null cln means the request is still alive.
            if let Some(ctx) = unsafe { RequestCtx::get(self.r) } {
                if std::ptr::eq(ctx.req_sock, self) {
                    ctx.req_sock = std::ptr::null_mut();
                }
            }
        }
        if !self.cln.is_null() {
            // SAFETY: a non-null cln means the request pool (and the cleanup
            // entry in it) is still alive.
            unsafe { (*self.cln).handler = None };
            self.cln = std::ptr::null_mut();
        }
        self.r = std::ptr::null_mut();
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

    /// An error on one side: close, unless the other side has a thread
    /// waiting, which must hear about it first (see `broken`).
    fn fail_conn(&mut self, failed: Side) {
        let other_waits = match failed {
            Side::Read => self.wop == WOp::Send && self.wwaiter.is_some(),
            Side::Write => self.rop.is_some() && self.rwaiter.is_some(),
        };
        if !other_waits {
            return self.close_conn();
        }
        self.broken = true;
        // SAFETY: conn is live (not closed while broken).
        unsafe {
            let ev = if failed == Side::Read {
                (*self.conn).write
            } else {
                (*self.conn).read
            };
            if (*ev).timer_set() != 0 {
                ngx_del_timer(ev);
            }
            ngx_add_timer(ev, 1);
        }
    }

    pub fn abort(&mut self) {
        if self.wop == WOp::Queued {
            let me: *mut TcpSock = self;
            socket_pool::dequeue(&self.pool_key, me);
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
        self.broken = false;
        if !self.rctx.is_null() {
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
        self.rbuf.clear();
    }

    /// Becomes the request socket of `r`'s client connection, starting with
    /// the bytes nginx already read past the request header.
    ///
    /// # Safety
    /// `r` must be live and bound (see bind_request).
    pub unsafe fn attach_downstream(&mut self, r: *mut ngx_http_request_t, rest: Option<u64>) {
        self.conn = (*r).connection;
        self.downstream = Some(Downstream { rest });
        let b = (*r).header_in;
        if !b.is_null() && (*b).pos < (*b).last {
            let avail = (*b).last.offset_from((*b).pos) as u64;
            let take = rest.map_or(avail, |n| n.min(avail)) as usize;
            self.rbuf
                .extend_from_slice(std::slice::from_raw_parts((*b).pos, take));
            (*b).pos = (*b).pos.add(take);
            self.consumed(take);
        }
    }

    fn consumed(&mut self, n: usize) {
        if let Some(Downstream { rest: Some(r) }) = self.downstream.as_mut() {
            *r = r.saturating_sub(n as u64);
        }
    }

    /// Body bytes this read may take (None: no limit).
    fn read_limit(&self) -> Option<u64> {
        self.downstream.as_ref().and_then(|d| d.rest)
    }

    /// Lets go of the client connection: only our timers go.
    fn release_downstream(&mut self) {
        if !self.conn.is_null() {
            // SAFETY: the client connection lives as long as its request,
            // which still owns this socket.
            unsafe {
                for ev in [(*self.conn).read, (*self.conn).write] {
                    if (*ev).timer_set() != 0 {
                        ngx_del_timer(ev);
                    }
                }
            }
        }
        self.conn = std::ptr::null_mut();
        self.rbuf.clear();
    }

    /// A client connection event for the request socket.
    pub fn downstream_event(&mut self, write: bool) {
        if self.conn.is_null() {
            return;
        }
        // SAFETY: conn is the live client connection.
        let ev = unsafe {
            if write {
                (*self.conn).write
            } else {
                (*self.conn).read
            }
        };
        self.on_event(ev, write);
    }

    // ---- connect ----

    /// `connect`: `host` is a name or IP literal with `port`, or a unix path
    /// when `unix` is set. Any previous connection is closed first.
    pub fn connect(&mut self, host: &[u8], port: u16, unix: bool, pool: Option<Vec<u8>>) -> Step {
        self.close_conn();
        self.reused = 0;
        self.host = host.to_vec();
        self.port = port;
        self.name = if unix {
            [b"unix:", host].concat()
        } else {
            format!("{}:{}", String::from_utf8_lossy(host), port).into_bytes()
        };
        self.pool_key = pool.unwrap_or_else(|| self.name.clone());
        self.unix = unix;
        self.open()
    }

    /// Connects through the pool: an idle connection, or room (perhaps
    /// after waiting in the backlog queue) to open a new one.
    fn open(&mut self) -> Step {
        if !self.dgram {
            if let Some((c, reused, counted)) = socket_pool::take(&self.pool_key) {
                self.attach(c);
                self.reused = reused + 1;
                self.counted = counted;
                return Step::Ready(vec![Val::Int(1)]);
            }
            let size = self.pool_size.unwrap_or(self.conf().pool_size());
            let me: *mut TcpSock = self;
            match socket_pool::admit(&self.pool_key, size, self.backlog, me) {
                None => {}
                Some(socket_pool::Admit::Go) => self.counted = true,
                Some(socket_pool::Admit::Queued) => {
                    self.wop = WOp::Queued;
                    self.arm_queue_timer(self.timeout(0));
                    return Step::Wait;
                }
                Some(socket_pool::Admit::Full) => {
                    return Step::Ready(Val::err("too many waiting connect operations"))
                }
            }
        }
        let step = self.open_addr();
        if matches!(step, Step::Ready(_)) && self.conn.is_null() {
            self.uncount();
        }
        step
    }

    /// Gives back this socket's slot in a limited pool.
    fn uncount(&mut self) {
        if self.counted {
            self.counted = false;
            socket_pool::release(&self.pool_key);
        }
    }

    fn arm_queue_timer(&mut self, ms: ngx_msec_t) {
        let me: *mut TcpSock = self;
        self.queue_ev.data = me.cast();
        self.queue_ev.handler = Some(on_queue_timer);
        if !self.r.is_null() {
            // SAFETY: r is live while it owns the socket.
            self.queue_ev.log = unsafe { (*(*self.r).connection).log };
        }
        // SAFETY: the event lives in this boxed socket, whose abort()
        // deletes the timer before the socket goes.
        unsafe {
            if self.queue_ev.timer_set() != 0 {
                ngx_del_timer(&mut self.queue_ev);
            }
            ngx_add_timer(&mut self.queue_ev, ms);
        }
    }

    /// The pool has room for this queued connect: carry on from the event
    /// loop (not from inside whoever freed the slot).
    pub fn grant(&mut self) {
        self.granted = true;
        self.arm_queue_timer(0);
    }

    fn queue_timer(&mut self) {
        if !self.granted {
            let me: *mut TcpSock = self;
            socket_pool::dequeue(&self.pool_key, me);
            return self.finish(Side::Write, Val::err("timeout"));
        }
        self.granted = false;
        self.wop = WOp::Idle;
        if let Step::Ready(v) = self.open() {
            self.finish(Side::Write, v);
        }
    }

    fn open_addr(&mut self) -> Step {
        let host = self.host.clone();
        let port = self.port;
        if self.unix {
            return match peer::Addr::unix(&host) {
                Some(a) => self.connect_addr(a),
                None => Step::Ready(Val::err("bad unix path")),
            };
        }
        let text = String::from_utf8_lossy(&host);
        let literal = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
            return self.connect_addr(peer::Addr::ip(ip, port));
        }
        self.resolve()
    }

    fn connect_addr(&mut self, mut addr: peer::Addr) -> Step {
        self.name_str = ngx_str_t {
            len: self.name.len(),
            data: self.name.as_mut_ptr(),
        };
        // SAFETY: r is live (connect runs in its Lua code or its resolver
        // handler); the name outlives the connect call, which is where nginx
        // uses it; `local` is kept in self.
        let res = unsafe {
            let log = (*(*self.r).connection).log;
            let local = match self.local.as_mut() {
                Some(b) => &mut b.1 as *mut _,
                None => std::ptr::null_mut(),
            };
            let ty = if self.dgram {
                libc::SOCK_DGRAM
            } else {
                libc::SOCK_STREAM
            };
            peer::connect(&mut addr, &mut self.name_str, log, ty, local)
        };
        match res {
            peer::Connect::Done(c) => {
                self.attach(c);
                Step::Ready(vec![Val::Int(1)])
            }
            peer::Connect::InProgress(c) => {
                self.attach(c);
                self.wop = WOp::Connect;
                // SAFETY: c is our live connection.
                unsafe { ngx_add_timer((*c).write, self.timeout(0)) };
                Step::Wait
            }
            peer::Connect::Failed(err) => Step::Ready(Val::err(&peer::errno_text(err))),
        }
    }

    fn attach(&mut self, c: *mut ngx_connection_t) {
        self.conn = c;
        self.rbuf.clear();
        // SAFETY: c is a live connection now owned by this socket, which is
        // boxed (stable address) and detaches before it goes.
        unsafe {
            (*c).data = (self as *mut TcpSock).cast::<c_void>();
            (*(*c).read).handler = Some(on_read);
            (*(*c).write).handler = Some(on_write);
            if !self.r.is_null() {
                let log = (*(*self.r).connection).log;
                (*c).log = log;
                (*(*c).read).log = log;
                (*(*c).write).log = log;
                if !(*c).pool.is_null() {
                    (*(*c).pool).log = log;
                }
            }
        }
    }

    fn connect_ready(&mut self, ev: *mut ngx_event_t) {
        let c = self.conn;
        // SAFETY: the event belongs to our live connection.
        unsafe {
            if (*ev).timedout() != 0 {
                self.log_err(&format!(
                    "lua {} socket connect timed out, when connecting to {}",
                    self.kind_name(),
                    String::from_utf8_lossy(&self.name)
                ));
                self.close_conn();
                return self.finish(Side::Write, Val::err("timeout"));
            }
            let err = peer::connect_error(c);
            if err != 0 {
                ngx_connection_error(c, err, c"connect() failed".as_ptr() as *mut _);
                self.close_conn();
                return self.finish(Side::Write, Val::err(&peer::errno_text(err)));
            }
            if (*(*c).write).timer_set() != 0 {
                ngx_del_timer((*c).write);
            }
        }
        self.finish(Side::Write, vec![Val::Int(1)]);
    }

    // ---- resolver ----

    fn resolve(&mut self) -> Step {
        let host = String::from_utf8_lossy(&self.host).into_owned();
        // SAFETY: r is live; the resolver context is ours until
        // ngx_resolve_name_done; host bytes live in self.
        unsafe {
            let clcf = NgxHttpCoreModule::location_conf(&*self.r).expect("core loc conf");
            let rctx = ngx_resolve_start(clcf.resolver, std::ptr::null_mut());
            if rctx.is_null() {
                return Step::Ready(Val::err("failed to start the resolver"));
            }
            if rctx as isize == -1 {
                return Step::Ready(Val::err(&format!("no resolver defined to resolve \"{host}\"")));
            }
            (*rctx).name = ngx_str_t {
                len: self.host.len(),
                data: self.host.as_mut_ptr(),
            };
            (*rctx).handler = Some(on_resolved);
            (*rctx).data = (self as *mut TcpSock).cast();
            (*rctx).timeout = clcf.resolver_timeout;
            self.rctx = rctx;
            self.resolved = None;
            self.resolving_sync = true;
            let rc = ngx_resolve_name(rctx);
            self.resolving_sync = false;
            if rc != NGX_OK as isize {
                self.rctx = std::ptr::null_mut();
                return Step::Ready(Val::err("failed to resolve"));
            }
        }
        match self.resolved.take() {
            Some(Ok(addr)) => self.connect_addr(addr),
            Some(Err(e)) => Step::Ready(Val::err(&e)),
            None => {
                self.wop = WOp::Resolve;
                Step::Wait
            }
        }
    }

    fn resolved(&mut self, rctx: *mut ngx_resolver_ctx_t) {
        // SAFETY: nginx calls the handler with our live context.
        let res = unsafe {
            let st = (*rctx).state;
            let r = if st != 0 {
                let why = std::ffi::CStr::from_ptr(ngx_resolver_strerror(st)).to_string_lossy();
                Err(format!(
                    "{} could not be resolved ({}: {})",
                    String::from_utf8_lossy(&self.host),
                    st,
                    why
                ))
            } else if (*rctx).naddrs == 0 {
                Err(format!(
                    "{} could not be resolved",
                    String::from_utf8_lossy(&self.host)
                ))
            } else {
                let a = &*(*rctx).addrs;
                Ok(peer::Addr::from_raw(a.sockaddr, a.socklen, self.port))
            };
            ngx_resolve_name_done(rctx);
            r
        };
        self.rctx = std::ptr::null_mut();
        if self.resolving_sync {
            self.resolved = Some(res);
            return;
        }
        let step = match res {
            Ok(addr) => self.connect_addr(addr),
            Err(e) => Step::Ready(Val::err(&e)),
        };
        if let Step::Ready(v) = step {
            if self.conn.is_null() {
                self.uncount();
            }
            self.finish(Side::Write, v);
        }
    }

    // ---- send ----

    pub fn send(&mut self, data: Vec<u8>) -> Step {
        if let Some(Downstream { rest: Some(_) }) = self.downstream {
            return Step::Ready(Val::err("not supported by the request body socket"));
        }
        if !self.usable() {
            if self.downstream.is_none() {
                self.log_err("attempt to send data on a closed socket");
            }
            return Step::Ready(Val::err("closed"));
        }
        self.wbuf = data;
        self.wpos = 0;
        self.wop = WOp::Send;
        self.send_more()
    }

    fn send_more(&mut self) -> Step {
        let c = self.conn;
        while self.wpos < self.wbuf.len() {
            // SAFETY: c is our live connection; the buffer outlives the call.
            let n = unsafe {
                let send = (*c).send.expect("send");
                send(
                    c,
                    self.wbuf.as_mut_ptr().add(self.wpos),
                    self.wbuf.len() - self.wpos,
                )
            };
            if n > 0 {
                self.wpos += n as usize;
            } else if n == NGX_AGAIN as isize || n == 0 {
                // SAFETY: c is live.
                unsafe {
                    let wev = (*c).write;
                    ngx_handle_write_event(wev, self.conf().send_lowat());
                    if (*wev).timer_set() == 0 {
                        ngx_add_timer(wev, self.timeout(1));
                    }
                }
                return Step::Wait;
            } else {
                let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                self.wop = WOp::Idle;
                self.fail_conn(Side::Write);
                return Step::Ready(Val::err(&peer::errno_text(err)));
            }
        }
        // SAFETY: c is live.
        unsafe {
            if (*(*c).write).timer_set() != 0 {
                ngx_del_timer((*c).write);
            }
        }
        self.wop = WOp::Idle;
        let n = if self.dgram { 1 } else { self.wbuf.len() };
        self.wbuf = Vec::new();
        Step::Ready(vec![Val::Int(n as i64)])
    }

    fn writable(&mut self, ev: *mut ngx_event_t) {
        // SAFETY: the event belongs to our live connection.
        let timedout = unsafe { (*ev).timedout() } != 0;
        // SAFETY: as above.
        unsafe { (*ev).set_timedout(0) };
        if self.broken {
            self.wop = WOp::Idle;
            self.broken = false;
            self.close_conn();
            return self.finish(Side::Write, Val::err("closed"));
        }
        if timedout {
            self.log_err(&format!("lua {} socket write timed out", self.kind_name()));
            self.wop = WOp::Idle;
            return self.finish(Side::Write, Val::err("timeout"));
        }
        if let Step::Ready(v) = self.send_more() {
            self.finish(Side::Write, v);
        }
    }

    // ---- receive ----

    pub fn receive(&mut self, kind: RecvKind) -> Step {
        if !self.usable() {
            if self.downstream.is_none() {
                self.log_err("attempt to receive data on a closed socket");
            }
            return Step::Ready(Val::err("closed"));
        }
        self.rop = Some(kind);
        self.recv_more()
    }

    fn recv_more(&mut self) -> Step {
        let Some(kind) = self.rop.clone() else {
            return Step::Ready(Val::err("closed"));
        };
        if let RecvKind::Datagram(max) = kind {
            return self.recv_datagram(max);
        }
        let size = self.conf().buffer_size();
        loop {
            if let Some(v) = extract(&mut self.rbuf, &kind) {
                return self.recv_done(v);
            }
            let c = self.conn;
            let old = self.rbuf.len();
            let want = self.read_limit().map_or(size, |r| (r as usize).min(size));
            self.rbuf.reserve(want);
            // SAFETY: c is our live connection; the spare capacity is `want`.
            let n = if want == 0 {
                0
            } else {
                unsafe {
                    let recv = (*c).recv.expect("recv");
                    recv(c, self.rbuf.as_mut_ptr().add(old), want)
                }
            };
            if n > 0 {
                // SAFETY: recv initialised n bytes of the spare capacity.
                unsafe { self.rbuf.set_len(old + n as usize) };
                self.consumed(n as usize);
                continue;
            }
            if n == NGX_AGAIN as isize {
                // SAFETY: c is live.
                unsafe {
                    let rev = (*c).read;
                    ngx_handle_read_event(rev, 0);
                    if (*rev).timer_set() == 0 {
                        ngx_add_timer(rev, self.timeout(2));
                    }
                }
                return Step::Wait;
            }
            let err = if n == 0 {
                None
            } else {
                Some(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
            };
            let rest = std::mem::take(&mut self.rbuf);
            let v = match (&kind, err) {
                (RecvKind::All, None) => vec![Val::Str(rest)],
                (_, None) => vec![Val::Nil, Val::Str(b"closed".to_vec()), Val::Str(rest)],
                (_, Some(e)) => vec![
                    Val::Nil,
                    Val::Str(peer::errno_text(e).into_bytes()),
                    Val::Str(rest),
                ],
            };
            self.rop = None;
            self.fail_conn(Side::Read);
            return self.recv_done(v);
        }
    }

    fn recv_datagram(&mut self, max: usize) -> Step {
        let c = self.conn;
        let mut buf = vec![0u8; max];
        // SAFETY: c is our live connection; buf has room for max bytes.
        let n = unsafe {
            let recv = (*c).recv.expect("recv");
            recv(c, buf.as_mut_ptr(), max)
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return self.recv_done(vec![Val::Str(buf)]);
        }
        if n == NGX_AGAIN as isize {
            // SAFETY: c is live.
            unsafe {
                let rev = (*c).read;
                ngx_handle_read_event(rev, 0);
                if (*rev).timer_set() == 0 {
                    ngx_add_timer(rev, self.timeout(2));
                }
            }
            return Step::Wait;
        }
        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        self.recv_done(Val::err(&peer::errno_text(err)))
    }

    fn recv_done(&mut self, v: Vec<Val>) -> Step {
        self.rop = None;
        if !self.conn.is_null() {
            // SAFETY: conn is live.
            unsafe {
                if (*(*self.conn).read).timer_set() != 0 {
                    ngx_del_timer((*self.conn).read);
                }
            }
        }
        Step::Ready(v)
    }

    fn readable(&mut self, ev: *mut ngx_event_t) {
        // SAFETY: the event belongs to our live connection.
        let timedout = unsafe { (*ev).timedout() } != 0;
        // SAFETY: as above.
        unsafe { (*ev).set_timedout(0) };
        if self.broken {
            let rest = std::mem::take(&mut self.rbuf);
            self.rop = None;
            self.broken = false;
            self.close_conn();
            return self.finish(
                Side::Read,
                vec![Val::Nil, Val::Str(b"closed".to_vec()), Val::Str(rest)],
            );
        }
        if timedout {
            self.log_err(&format!("lua {} socket read timed out", self.kind_name()));
            let rest = std::mem::take(&mut self.rbuf);
            self.rop = None;
            return self.finish(
                Side::Read,
                vec![Val::Nil, Val::Str(b"timeout".to_vec()), Val::Str(rest)],
            );
        }
        if let Step::Ready(v) = self.recv_more() {
            self.finish(Side::Read, v);
        }
    }

    // ---- keepalive, close ----

    pub fn setkeepalive(&mut self, timeout: Option<ngx_msec_t>, size: Option<usize>) -> Vec<Val> {
        if self.conn.is_null() {
            return Val::err("closed");
        }
        if let Some(e) = self.busy_for(true, true) {
            return Val::err(e);
        }
        if self.broken {
            return Val::err("closed");
        }
        if !self.rbuf.is_empty() {
            return Val::err("unread data in buffer");
        }
        let c = self.conn;
        // SAFETY: c is live; after put() the pool owns it.
        unsafe {
            if socket_pool::server_closed_or_talked(c) {
                self.close_conn();
                return Val::err("connection in dubious state");
            }
            self.conn = std::ptr::null_mut();
            self.tls = None;
            let conf = self.conf();
            let size = size.or(self.pool_size).unwrap_or(conf.pool_size());
            let timeout = timeout.unwrap_or(conf.keepalive_timeout());
            let counted = std::mem::take(&mut self.counted);
            socket_pool::put(&self.pool_key, c, self.reused, counted, timeout, size);
        }
        vec![Val::Int(1)]
    }

    pub fn close(&mut self) -> Vec<Val> {
        if self.conn.is_null() {
            return Val::err("closed");
        }
        self.close_conn();
        vec![Val::Int(1)]
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
    pub fn finish(&mut self, side: Side, vals: Vec<Val>) {
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
            let mine = (*ctx)
                .threads
                .iter_mut()
                .find(|t| t.co == co)
                .and_then(|t| t.wait.take());
            drop(mine);
            let n = push_vals(co, &vals);
            wake(ctx, co, n);
        }
    }

    fn on_event(&mut self, ev: *mut ngx_event_t, write: bool) {
        if self.wop == WOp::Connect {
            self.connect_ready(ev)
        } else if write && self.wop == WOp::Send {
            self.writable(ev)
        } else if !write && self.rop.is_some() {
            self.readable(ev)
        }
    }
}

impl Default for TcpSock {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes the answer of `kind` from the front of `buf`, if it is there.
fn extract(buf: &mut Vec<u8>, kind: &RecvKind) -> Option<Vec<Val>> {
    match kind {
        RecvKind::Line => {
            let i = buf.iter().position(|&b| b == b'\n')?;
            let mut line: Vec<u8> = buf.drain(..=i).collect();
            line.pop();
            line.retain(|&b| b != b'\r');
            Some(vec![Val::Str(line)])
        }
        RecvKind::All | RecvKind::Datagram(_) => None,
        RecvKind::Size(n) => (buf.len() >= *n).then(|| vec![Val::Str(buf.drain(..*n).collect())]),
        RecvKind::Any(max) => {
            (!buf.is_empty()).then(|| vec![Val::Str(buf.drain(..(*max).min(buf.len())).collect())])
        }
        RecvKind::Until { pat, inclusive, size } => until(buf, pat, *inclusive, *size),
    }
}

fn until(buf: &mut Vec<u8>, pat: &[u8], inclusive: bool, size: Option<usize>) -> Option<Vec<Val>> {
    let found = buf.windows(pat.len()).position(|w| w == pat);
    match (found, size) {
        (Some(i), None) => {
            let mut data: Vec<u8> = buf.drain(..i + pat.len()).collect();
            if !inclusive {
                data.truncate(i);
            }
            Some(vec![Val::Str(data)])
        }
        (Some(0), Some(_)) => {
            buf.drain(..pat.len());
            Some(vec![Val::Nil])
        }
        (Some(i), Some(n)) => Some(vec![Val::Str(buf.drain(..i.min(n)).collect())]),
        (None, Some(n)) => {
            let safe = buf.len().saturating_sub(pat.len() - 1);
            (safe >= n && n > 0).then(|| vec![Val::Str(buf.drain(..n).collect())])
        }
        (None, None) => None,
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

unsafe extern "C" fn on_queue_timer(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data is the socket whose queue_ev this is (set when armed;
        // abort() deletes the timer before the socket goes).
        unsafe { (*((*ev).data as *mut TcpSock)).queue_timer() }
    })
}

unsafe extern "C" fn on_resolved(rctx: *mut ngx_resolver_ctx_t) {
    crate::glue::catch((), || {
        // SAFETY: data is the socket that started this resolution; it calls
        // ngx_resolve_name_done before going away.
        unsafe { (*((*rctx).data as *mut TcpSock)).resolved(rctx) }
    })
}

unsafe extern "C" fn request_cleanup(data: *mut c_void) {
    // SAFETY: data is the socket registered in bind_request; release()
    // unhooks this cleanup before the socket is freed.
    unsafe {
        let s = data as *mut TcpSock;
        (*s).cln = std::ptr::null_mut();
        (*s).abort();
        (*s).r = std::ptr::null_mut();
    }
}
