//! Connecting: the keepalive pool, the backlog queue of limited pools,
//! name resolution through nginx's resolver, and the connect itself.

use super::*;
use smallvec::smallvec;

impl TcpSock {
    // ---- connect ----

    /// `connect`: `host` is a name or IP literal with `port`, or a unix path
    /// when `unix` is set. Any previous connection is closed first.
    pub fn connect(&mut self, host: &[u8], port: u16, unix: bool, pool: Option<&[u8]>) -> Step {
        if self.connected_before {
            if !self.conn.is_null() {
                self.debug(format_args!(
                    "lua {} socket reconnect without shutting down",
                    self.kind_name()
                ));
            }
            self.debug(format_args!("lua reuse socket upstream ctx"));
        }
        self.connected_before = true;
        self.close_conn();
        self.reused = 0;
        // Written into the buffers the socket (or the collected one whose
        // memory it is) already has: no allocation per connect.
        self.host.clear();
        self.host.extend_from_slice(host);
        self.port = port;
        self.name.clear();
        if unix {
            self.name.extend_from_slice(b"unix:");
            self.name.extend_from_slice(host);
        } else {
            match std::str::from_utf8(host) {
                Ok(_) => self.name.extend_from_slice(host),
                Err(_) => self
                    .name
                    .extend_from_slice(String::from_utf8_lossy(host).as_bytes()),
            }
            self.name.push(b':');
            push_decimal(&mut self.name, port);
        }
        self.pool_key.clear();
        self.pool_key.extend_from_slice(pool.unwrap_or(&self.name));
        self.unix = unix;
        self.open(None)
    }

    /// Connects through the pool of `pool_key`, if there is one (or the
    /// connect options create it): an idle connection of it, or room
    /// (perhaps after waiting in its backlog queue) to open a new one.
    /// `resumed`: the pool of a queued connect whose turn came (it left the
    /// pool's count just before, which keeps the pool).
    pub(super) fn open(&mut self, resumed: Option<socket_pool::PoolRef>) -> Step {
        if !self.dgram {
            let log = self.req_log();
            let pool = match resumed {
                Some(pool) => Some(pool),
                None => match socket_pool::find(&self.pool_key) {
                    Some(pool) => Some(pool),
                    None if self.pool_size.is_some() || self.backlog.is_some() => {
                        let size = self.pool_size.unwrap_or(self.conf().pool_size());
                        Some(socket_pool::create(&self.pool_key, size, self.backlog, log))
                    }
                    None => None,
                },
            };
            if let Some(pool) = pool {
                // SAFETY: the pool was just found or created, or is the one
                // a granted connect left an instant ago (see `resumed`).
                if let Some((c, reused, bufs)) = unsafe { socket_pool::take(pool, log) } {
                    self.adopt_bufs(bufs);
                    // SAFETY: the pool hands out an open connection, ours now
                    unsafe { self.attach(c) };
                    self.reused = reused + 1;
                    self.pool = Some(pool);
                    return Step::Ready(smallvec![Val::Int(1)]);
                }
                let me: *mut TcpSock = self;
                // SAFETY: as for `take`
                match unsafe { socket_pool::admit(pool, me, resumed.is_some(), log) } {
                    socket_pool::Admit::Go => self.pool = Some(pool),
                    socket_pool::Admit::Queued => {
                        self.pool = Some(pool);
                        self.wop = WOp::Queued;
                        self.arm_queue_timer(self.timeout(0));
                        return Step::Wait;
                    }
                    socket_pool::Admit::Full => {
                        return Step::Ready(Val::err("too many waiting connect operations"));
                    }
                }
            }
        }
        let step = self.open_addr();
        if matches!(step, Step::Ready(_)) && self.conn.is_null() {
            self.uncount();
        }
        step
    }

    /// Takes the buffers parked with a pooled connection, giving back the
    /// socket's own (empty) ones if it has any.
    fn adopt_bufs(&mut self, (rbuf, out): socket_pool::Bufs) {
        for (mine, theirs) in [(&mut self.rbuf, rbuf), (&mut self.out, out)] {
            if theirs.capacity() > mine.capacity() {
                give_back(std::mem::replace(mine, theirs));
            } else {
                give_back(theirs);
            }
        }
    }

    /// Gives back this socket's count in its pool.
    pub(super) fn uncount(&mut self) {
        if let Some(pool) = self.pool.take() {
            // SAFETY: the pool exists while this socket counts in it
            unsafe { socket_pool::release(pool) };
        }
    }

    pub(super) fn arm_queue_timer(&mut self, ms: ngx_msec_t) {
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

    pub(super) fn queue_timer(&mut self) {
        let me: *mut TcpSock = self;
        self.wop = WOp::Idle;
        let pool = self.pool.take();
        if !self.granted {
            if let Some(pool) = pool {
                // SAFETY: the pool exists while this socket counts in it
                unsafe { socket_pool::dequeue(pool, me, false) };
            }
            self.log_err(format_args!(
                "lua tcp socket queued connect timed out, when trying to connect to {}:{}",
                crate::glue::log::Lossy(&self.host),
                self.port
            ));
            return self.finish(Side::Write, Val::err("timeout"));
        }
        self.granted = false;
        if let Some(pool) = pool {
            // SAFETY: the pool exists while this socket counts in it; it
            // stays after a granted dequeue (see `open`).
            unsafe { socket_pool::dequeue(pool, me, true) };
        }
        if let Step::Ready(v) = self.open(pool) {
            self.finish(Side::Write, v);
        }
    }

    pub(super) fn open_addr(&mut self) -> Step {
        if !self.dgram {
            self.debug(format_args!(
                "lua tcp socket connect timeout: {}",
                self.timeout(0)
            ));
        }
        let host = self.host.clone();
        let port = self.port;
        if self.unix {
            return match peer::Addr::unix(&host) {
                Some(a) => self.connect_addr(a),
                None => Step::Ready(Val::err("bad unix path")),
            };
        }
        if host.is_empty() {
            return Step::Ready(Val::err("failed to parse host name \"\": no host"));
        }
        let text = String::from_utf8_lossy(&host);
        let literal = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
            return self.connect_addr(peer::Addr::ip(ip, port));
        }
        self.resolve()
    }

    pub(super) fn connect_addr(&mut self, mut addr: peer::Addr) -> Step {
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
                if self.dgram && self.unix {
                    // A datagram unix socket needs a name of its own for
                    // replies to reach it: the kernel picks an abstract one.
                    self.debug(format_args!("datagram unix domain socket autobind"));
                    // SAFETY: c is the connection just opened; the address
                    // is a bare family, as autobind wants.
                    let rc = unsafe {
                        let mut a: libc::sockaddr_un = std::mem::zeroed();
                        a.sun_family = libc::AF_UNIX as libc::sa_family_t;
                        libc::bind(
                            (*c).fd,
                            (&a as *const libc::sockaddr_un).cast(),
                            std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
                        )
                    };
                    if rc != 0 {
                        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                        // SAFETY: c is ours and not attached yet.
                        unsafe { peer::close(c) };
                        return Step::Ready(Val::err(&peer::errno_text(err)));
                    }
                }
                // SAFETY: the connection just opened for us
                unsafe { self.attach(c) };
                Step::Ready(smallvec![Val::Int(1)])
            }
            peer::Connect::InProgress(c) => {
                // SAFETY: the connection nginx just opened for us
                unsafe { self.attach(c) };
                self.wop = WOp::Connect;
                // SAFETY: c is our live connection.
                unsafe { ngx_add_timer((*c).write, self.timeout(0)) };
                Step::Wait
            }
            peer::Connect::Failed(err) => Step::Ready(Val::err(&peer::errno_text(err))),
        }
    }

    /// Makes `c` this socket's connection, with our handlers and log.
    ///
    /// # Safety
    /// `c` must be a live connection that nothing else owns now.
    pub(super) unsafe fn attach(&mut self, c: *mut ngx_connection_t) {
        self.conn = c;
        self.clear_rbuf();
        self.out.clear();
        self.eof = false;
        self.read_closed = false;
        self.write_closed = false;
        // SAFETY: c is a live connection now owned by this socket (caller's
        // contract), which is boxed (stable address) and detaches before it
        // goes; r is live while not null (the request cleanup clears it).
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

    /// The connect being waited for completed, failed or timed out.
    ///
    /// # Safety
    /// `ev` must be an event (read or write) of this socket's live connection.
    pub(super) unsafe fn connect_ready(&mut self, ev: *mut ngx_event_t) {
        let c = self.conn;
        // SAFETY: the event belongs to our live connection (caller's contract).
        unsafe {
            if (*ev).timedout() != 0 {
                self.log_err(format_args!(
                    "lua {} socket connect timed out, when connecting to {}",
                    self.kind_name(),
                    crate::glue::log::Lossy(&self.name)
                ));
                self.close_conn();
                return self.finish(Side::Write, Val::err("timeout"));
            }
            let err = peer::connect_error(c);
            if err != 0 {
                if self.conf().log_errors() {
                    ngx_connection_error(c, err, c"connect() failed".as_ptr() as *mut _);
                }
                self.close_conn();
                return self.finish(Side::Write, Val::err(&peer::errno_text(err)));
            }
            if (*(*c).write).timer_set() != 0 {
                ngx_del_timer((*c).write);
            }
        }
        self.finish(Side::Write, smallvec![Val::Int(1)]);
    }

    // ---- resolver ----

    pub(super) fn resolve(&mut self) -> Step {
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

    /// The resolver answered.
    ///
    /// # Safety
    /// `rctx` must be this socket's live resolver context (`self.rctx`),
    /// which this ends with ngx_resolve_name_done.
    pub(super) unsafe fn resolved(&mut self, rctx: *mut ngx_resolver_ctx_t) {
        // SAFETY: nginx calls the handler with our live context (caller's contract).
        let res = unsafe {
            let st = (*rctx).state;
            let r = if st != 0 {
                let why = std::ffi::CStr::from_ptr(ngx_resolver_strerror(st)).to_string_lossy();
                Err(format!(
                    "{} could not be resolved ({}: {})",
                    crate::glue::log::Lossy(&self.host),
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
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
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
