//! Sending, the receive patterns, keepalive and close.

use super::*;
use smallvec::smallvec;

/// What a receive pattern made of the buffered bytes.
enum Filt {
    Done,
    Again,
    /// Nothing buffered and the peer closed.
    Closed,
}

impl TcpSock {
    // ---- send ----

    pub fn send(&mut self, data: Vec<u8>) -> Step {
        if let Some(v) = self.send_start() {
            return Step::Ready(v);
        }
        self.wbuf = data;
        self.wpos = 0;
        self.send_more()
    }

    /// `send` of bytes borrowed for this call only (a Lua string, from the
    /// FFI fast path): written straight from `data`; only what the
    /// connection does not take at once makes it copy the data and wait.
    pub fn send_slice(&mut self, data: &[u8]) -> Step {
        if let Some(v) = self.send_start() {
            return Step::Ready(v);
        }
        // SAFETY: conn is live (send_start checked it).
        let (n, last, err) = unsafe { write_some(self.conn, data) };
        if n == data.len() {
            return self.sent(n);
        }
        if last == NGX_AGAIN as isize || last == 0 {
            // All of it, as the count returned is the whole send's.
            self.wbuf.clear();
            self.wbuf.extend_from_slice(data);
            self.wpos = n;
            return self.send_more();
        }
        self.send_failed(err)
    }

    /// What every send does first; the results when it cannot start.
    fn send_start(&mut self) -> Option<Vals> {
        if self.downstream.as_ref().is_some_and(|d| !d.raw) {
            return Some(Val::err("not supported by the request body socket"));
        }
        if let Some(v) = self.send_closed() {
            return Some(v);
        }
        self.debug(format_args!("lua tcp socket send timeout: {}", self.timeout(1)));
        if !self.dgram {
            self.set_nodelay();
        }
        self.wop = WOp::Send;
        None
    }

    /// The results of a send on a socket whose write half is finalized
    /// (logged as lua-nginx-module does), or None when it can send.
    pub fn send_closed(&self) -> Option<Vals> {
        if !self.conn.is_null() && !self.write_closed {
            return None;
        }
        self.log_closed("send");
        Some(Val::err("closed"))
    }

    /// As `send_closed`, for receiving.
    pub fn recv_closed(&self) -> Option<Vals> {
        if !self.conn.is_null() && !self.read_closed {
            return None;
        }
        self.log_closed("receive");
        Some(Val::err("closed"))
    }

    pub(super) fn send_more(&mut self) -> Step {
        let c = self.conn;
        // SAFETY: c is our live connection.
        let (n, last, err) = unsafe { write_some(c, &self.wbuf[self.wpos..]) };
        self.wpos += n;
        if self.wpos == self.wbuf.len() {
            let total = self.wbuf.len();
            self.wbuf = Vec::new();
            return self.sent(total);
        }
        if last == NGX_AGAIN as isize || last == 0 {
            // SAFETY: c is live. The timeout runs from the last progress.
            unsafe {
                let wev = (*c).write;
                ngx_add_timer(wev, self.timeout(1));
                ngx_handle_write_event(wev, self.conf().send_lowat());
            }
            return Step::Wait;
        }
        self.wbuf = Vec::new();
        self.send_failed(err)
    }

    /// A send wrote all its `n` bytes.
    fn sent(&mut self, n: usize) -> Step {
        // SAFETY: conn is live.
        unsafe {
            let wev = (*self.conn).write;
            if (*wev).timer_set() != 0 {
                ngx_del_timer(wev);
            }
        }
        self.wop = WOp::Idle;
        let n = if self.dgram { 1 } else { n };
        Step::Ready(smallvec![Val::Int(n as i64)])
    }

    /// A send failed with errno `err`: the write half is finalized.
    fn send_failed(&mut self, err: i32) -> Step {
        self.wop = WOp::Idle;
        self.finalize_write();
        Step::Ready(Val::err(&peer::errno_text(err)))
    }

    /// The connection can take more of the pending send (or it timed out).
    ///
    /// # Safety
    /// `ev` must be the write event of this socket's live connection.
    pub(super) unsafe fn writable(&mut self, ev: *mut ngx_event_t) {
        // SAFETY: the event belongs to our live connection (caller's contract).
        let timedout = unsafe { (*ev).timedout() } != 0;
        // SAFETY: as above.
        unsafe { (*ev).set_timedout(0) };
        if timedout {
            self.log_err(format_args!("lua {} socket write timed out", self.kind_name()));
            self.wop = WOp::Idle;
            self.wbuf = Vec::new();
            self.finalize_write();
            return self.finish(Side::Write, Val::err("timeout"));
        }
        if let Step::Ready(v) = self.send_more() {
            self.finish(Side::Write, v);
        }
    }

    /// `tcp_nodelay on` (the location's setting) applies to cosockets too,
    /// set at the first send as nginx's upstream module does.
    fn set_nodelay(&mut self) {
        let c = self.conn;
        if self.r.is_null() {
            return;
        }
        // SAFETY: r is live (it owns the socket); c is our live connection.
        unsafe {
            let Some(clcf) = NgxHttpCoreModule::location_conf(&*self.r) else {
                return;
            };
            if clcf.tcp_nodelay == 0
                || (*c).tcp_nodelay() != nginx_sys::ngx_connection_tcp_nodelay_e_NGX_TCP_NODELAY_UNSET
            {
                return;
            }
            self.debug(format_args!("lua socket tcp_nodelay"));
            let on: libc::c_int = 1;
            if libc::setsockopt(
                (*c).fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
            {
                (*c).set_tcp_nodelay(nginx_sys::ngx_connection_tcp_nodelay_e_NGX_TCP_NODELAY_SET);
            }
        }
    }

    /// A send failed or timed out: no more sending on this connection
    /// (lua-nginx-module's finalize_write_part); it stays open for reading.
    fn finalize_write(&mut self) {
        self.write_closed = true;
        self.del_timer(true);
    }

    /// A receive failed: no more reading (lua-nginx-module's
    /// finalize_read_part); buffered bytes are dropped, the connection stays
    /// open for sending until closed.
    fn finalize_read(&mut self) {
        self.read_closed = true;
        self.clear_rbuf();
        self.out.clear();
        self.del_timer(false);
    }

    // ---- receive ----

    pub fn receive(&mut self, kind: RecvKind) -> Step {
        if let Some(v) = self.recv_closed() {
            return Step::Ready(v);
        }
        self.out.clear();
        if self.out.capacity() == 0 {
            self.out = spare_buf();
        }
        // Checked once: a receive per line is common, and the lines' values
        // (the timeout) would be worked out for nothing.
        if self.debug_on() {
            if let RecvKind::Any(n) = &kind {
                self.debug(format_args!(
                    "lua tcp socket calling receiveany() method to read at most {n} bytes"
                ));
            }
            self.debug(format_args!(
                "lua {} socket read timeout: {}",
                self.kind_name(),
                self.timeout(2)
            ));
            if let RecvKind::Datagram(n) = &kind {
                self.debug(format_args!("lua udp socket receive buffer size: {n}"));
            }
        }
        self.rest = match &kind {
            RecvKind::Size(n) | RecvKind::Any(n) | RecvKind::Until(_, n) => *n,
            _ => 0,
        };
        self.rop = Some(kind);
        self.recv_more()
    }

    /// A line or a size that the read buffer already holds, taken without
    /// the general receive (the common case of the FFI receive: a client
    /// loop reading the lines of a response it has whole). The bytes stay
    /// as they are until the socket's next operation. None wherever the
    /// general receive has more to do: not all there, a CR inside the
    /// line, a closed socket, a request socket, debug logging.
    #[inline]
    pub fn take_buffered(&mut self, kind: &RecvKind) -> Option<(*const u8, usize)> {
        if self.conn.is_null() || self.read_closed || self.rop.is_some() || self.downstream.is_some() {
            return None;
        }
        let unread = &self.rbuf[self.rpos..];
        let (data, used) = match kind {
            RecvKind::Line => match line_of(unread) {
                (body, false, Some(nl)) => (body, nl + 1),
                _ => return None,
            },
            RecvKind::Size(n) if unread.len() >= *n => (&unread[..*n], *n),
            _ => return None,
        };
        if self.debug_on() {
            return None;
        }
        let taken = (data.as_ptr(), data.len());
        // Consuming only moves the read position (or empties the buffer,
        // keeping its memory): the bytes taken stay in place.
        self.consume(used);
        Some(taken)
    }

    pub(super) fn recv_more(&mut self) -> Step {
        let Some(kind) = self.rop.clone() else {
            return Step::Ready(Val::err("closed"));
        };
        if let RecvKind::Datagram(max) = kind {
            return self.recv_datagram(max);
        }
        let size = self.conf().buffer_size();
        loop {
            if !self.rbuf.is_empty() || self.eof {
                match self.filter(&kind) {
                    Filt::Done if self.body_done_client_gone() => return self.recv_fail("client aborted"),
                    Filt::Done => return self.recv_ok(),
                    Filt::Closed => return self.recv_fail("closed"),
                    // Everything buffered was consumed: read more.
                    Filt::Again => continue,
                }
            }
            if self.downstream.as_ref().is_some_and(|d| d.bad) {
                // What was decoded before the malformed chunk is consumed.
                return self.recv_fail("bad chunked request body");
            }
            if self.read_limit() == Some(0) {
                // The request body is all read.
                self.eof = true;
                continue;
            }
            let c = self.conn;
            self.compact();
            let old = self.rbuf.len();
            let want = self.read_limit().map_or(size, |r| (r as usize).min(size));
            if self.rbuf.capacity() == 0 {
                self.rbuf = spare_buf();
            }
            self.rbuf.reserve(want);
            // SAFETY: c is our live connection; the spare capacity is `want`.
            let n = unsafe {
                let recv = (*c).recv.expect("recv");
                recv(c, self.rbuf.as_mut_ptr().add(old), want)
            };
            if n > 0 {
                // SAFETY: recv initialised n bytes of the spare capacity.
                unsafe { self.rbuf.set_len(old + n as usize) };
                self.take_in(old, n as usize);
                self.body_read_check();
                continue;
            }
            if n == NGX_AGAIN as isize {
                // SAFETY: c is live. The timeout runs from the last progress.
                unsafe {
                    let rev = (*c).read;
                    ngx_handle_read_event(rev, 0);
                    ngx_add_timer(rev, self.timeout(2));
                }
                return Step::Wait;
            }
            if n == 0 {
                if self.downstream_aborted() {
                    return self.recv_fail("client aborted");
                }
                self.eof = true;
                continue;
            }
            let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return self.recv_fail(&peer::errno_text(err));
        }
    }

    /// Moves what `kind` takes of the buffered bytes into `out` (nothing
    /// buffered: the peer closed).
    fn filter(&mut self, kind: &RecvKind) -> Filt {
        let unread = &self.rbuf[self.rpos..];
        let avail = unread.len();
        match kind {
            RecvKind::All => {
                if avail == 0 {
                    return Filt::Done;
                }
                self.out.extend_from_slice(unread);
                self.clear_rbuf();
                Filt::Again
            }
            _ if avail == 0 => Filt::Closed,
            RecvKind::Line => {
                // LuaSocket's line pattern drops every CR. Mostly there is
                // one, ending the line: the rest goes in one copy.
                let (body, cr_inside, nl) = line_of(unread);
                if cr_inside {
                    self.out.extend(body.iter().filter(|&&b| b != b'\r'));
                } else {
                    self.out.extend_from_slice(body);
                }
                match nl {
                    Some(i) => {
                        self.consume(i + 1);
                        Filt::Done
                    }
                    None => {
                        self.clear_rbuf();
                        Filt::Again
                    }
                }
            }
            RecvKind::Size(_) => {
                let take = avail.min(self.rest);
                self.out.extend_from_slice(&unread[..take]);
                self.consume(take);
                self.rest -= take;
                if self.rest == 0 { Filt::Done } else { Filt::Again }
            }
            RecvKind::Any(_) => {
                let take = avail.min(self.rest);
                self.out.extend_from_slice(&unread[..take]);
                self.consume(take);
                self.debug(format_args!("lua tcp socket read any"));
                Filt::Done
            }
            RecvKind::Until(p, limit) => match p.scan(unread, &mut self.out, *limit, &mut self.rest) {
                until::Scan::Done(n) => {
                    self.consume(n);
                    Filt::Done
                }
                until::Scan::Again => {
                    self.clear_rbuf();
                    Filt::Again
                }
            },
            RecvKind::Datagram(_) => Filt::Closed,
        }
    }

    fn recv_ok(&mut self) -> Step {
        // Whoever takes the results pushes or copies `out` before anything
        // else touches it; `out` keeps its capacity for the next receive.
        self.recv_done(smallvec![Val::Out])
    }

    /// A failed receive: nil, the error and the partial data; the read half
    /// is finalized.
    fn recv_fail(&mut self, msg: &str) -> Step {
        let partial = std::mem::take(&mut self.out);
        self.finalize_read();
        self.recv_done(smallvec![
            Val::Nil,
            Val::Str(msg.as_bytes().to_vec()),
            Val::Str(partial),
        ])
    }

    pub(super) fn recv_datagram(&mut self, max: usize) -> Step {
        let c = self.conn;
        let mut buf = vec![0u8; max];
        // SAFETY: c is our live connection; buf has room for max bytes.
        let n = unsafe {
            let recv = (*c).recv.expect("recv");
            recv(c, buf.as_mut_ptr(), max)
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return self.recv_done(smallvec![Val::Str(buf)]);
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

    pub(super) fn recv_done(&mut self, v: Vals) -> Step {
        self.rop = None;
        self.del_timer(false);
        Step::Ready(v)
    }

    /// The connection has data for the pending receive (or it timed out).
    ///
    /// # Safety
    /// `ev` must be the read event of this socket's live connection.
    pub(super) unsafe fn readable(&mut self, ev: *mut ngx_event_t) {
        // SAFETY: the event belongs to our live connection (caller's contract).
        let timedout = unsafe { (*ev).timedout() } != 0;
        // SAFETY: as above.
        unsafe { (*ev).set_timedout(0) };
        if timedout {
            // The read half stays usable: a later receive may still succeed.
            self.log_err(format_args!("lua {} socket read timed out", self.kind_name()));
            let partial = std::mem::take(&mut self.out);
            self.rop = None;
            return self.finish(
                Side::Read,
                smallvec![Val::Nil, Val::Str(b"timeout".to_vec()), Val::Str(partial)],
            );
        }
        // Re-armed from now if the read has to wait again (nginx leaves a
        // timer alone when re-added within 300 ms of its old expiry).
        self.del_timer(false);
        if let Step::Ready(v) = self.recv_more() {
            self.finish(Side::Read, v);
        }
    }

    // ---- keepalive, close ----

    pub fn setkeepalive(&mut self, timeout: Option<ngx_msec_t>, size: Option<usize>) -> Vals {
        // A connection the peer closed is "closed" (and stays with the
        // socket until close() or the end of the request).
        if self.conn.is_null()
            || self.read_closed
            || self.write_closed
            // SAFETY: conn is live when not null.
            || unsafe { socket_pool::peer_closed(self.conn) }
        {
            return Val::err("closed");
        }
        if let Some(e) = self.busy_for(true, true) {
            return Val::err(e);
        }
        if !self.rbuf.is_empty() {
            return Val::err("unread data in buffer");
        }
        if crate::glue::signals::worker_exiting() {
            // A pooled connection would hold the exiting worker until its
            // idle timer fires: close it, as if pooled and expired at once.
            self.debug(format_args!(
                "lua tcp socket set keepalive while process exiting, closing connection {:016x}",
                self.conn as usize
            ));
            self.close_conn();
            return smallvec![Val::Int(1)];
        }
        let c = self.conn;
        let conf = self.conf();
        let size = size.unwrap_or(conf.pool_size());
        let timeout = timeout.unwrap_or(conf.keepalive_timeout());
        let log = self.req_log();
        // The pool this socket counts in (its count goes to the idle
        // connection), else the key's, made if need be.
        let counted = self.pool.take();
        let pool = match counted.or_else(|| socket_pool::find(&self.pool_key)) {
            Some(pool) => pool,
            None => socket_pool::create(&self.pool_key, size, None, log),
        };
        match timeout {
            0 => self.debug(format_args!("lua tcp socket keepalive timeout: unlimited")),
            t => self.debug(format_args!("lua tcp socket keepalive timeout: {t} ms")),
        }
        self.conn = std::ptr::null_mut();
        self.tls = None;
        // The buffers go with the connection, for the socket that takes it.
        let bufs = (
            parkable(std::mem::take(&mut self.rbuf)),
            parkable(std::mem::take(&mut self.out)),
        );
        // SAFETY: c is live and idle; put() takes it over. The pool exists:
        // this socket counted in it until now, or it was just found or made.
        match unsafe { socket_pool::put(pool, c, self.reused, counted.is_some(), timeout, bufs) } {
            socket_pool::Put::Pooled => smallvec![Val::Int(1)],
            socket_pool::Put::Dubious => Val::err("connection in dubious state"),
        }
    }

    pub fn close(&mut self) -> Vals {
        // With both halves finalized the connection is only released when
        // the request ends, as in lua-nginx-module.
        if self.conn.is_null() || (self.read_closed && self.write_closed) {
            return Val::err("closed");
        }
        self.debug(format_args!("lua finalize socket"));
        self.close_conn();
        smallvec![Val::Int(1)]
    }
}

/// Writes `data` on `c` until all of it is written or the connection
/// stops taking it: the bytes written, the last return of nginx's `send`
/// (positive when all went) and the errno after a failure (read at once,
/// before anything else can change it).
///
/// # Safety
/// `c` must be a live connection.
unsafe fn write_some(c: *mut ngx_connection_t, data: &[u8]) -> (usize, isize, i32) {
    let mut pos = 0;
    let mut last = 1;
    while pos < data.len() {
        // SAFETY: c is live (the caller's contract); nginx's send only
        // reads the `data.len() - pos` bytes it is given.
        last = unsafe {
            let send = (*c).send.expect("send");
            send(c, data.as_ptr().add(pos).cast_mut(), data.len() - pos)
        };
        if last <= 0 {
            let err = if last == NGX_AGAIN as isize || last == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            };
            return (pos, last, err);
        }
        pos += last as usize;
    }
    (pos, last, 0)
}

/// The line that `unread` starts with (up to its LF, or all of it when
/// there is none yet) without the CR that ends it, whether another CR is
/// left inside it, and where its LF is.
#[inline]
fn line_of(unread: &[u8]) -> (&[u8], bool, Option<usize>) {
    let nl = find_byte(unread, b'\n');
    let line = &unread[..nl.unwrap_or(unread.len())];
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    (body, find_byte(body, b'\r').is_some(), nl)
}

/// The first `b` in `hay` (libc's vectorised memchr: lines are searched
/// byte by byte otherwise).
fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    // SAFETY: memchr reads at most `hay.len()` bytes from its start.
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), b as libc::c_int, hay.len()) };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}
