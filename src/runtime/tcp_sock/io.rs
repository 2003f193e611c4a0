//! Sending, the receive patterns, keepalive and close.

use super::*;

impl TcpSock {
    // ---- send ----

    pub fn send(&mut self, data: Vec<u8>) -> Step {
        if self.downstream.as_ref().is_some_and(|d| !d.raw) {
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

    pub(super) fn send_more(&mut self) -> Step {
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

    pub(super) fn writable(&mut self, ev: *mut ngx_event_t) {
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

    pub(super) fn recv_more(&mut self) -> Step {
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
                self.take_in(old, n as usize);
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
            let bad = self.downstream.as_ref().is_some_and(|d| d.bad);
            let v = match (&kind, err) {
                _ if bad => vec![
                    Val::Nil,
                    Val::Str(b"bad chunked request body".to_vec()),
                    Val::Str(rest),
                ],
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

    pub(super) fn recv_done(&mut self, v: Vec<Val>) -> Step {
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

    pub(super) fn readable(&mut self, ev: *mut ngx_event_t) {
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
        if socket_pool::worker_exiting() {
            // A pooled connection would hold the exiting worker until its
            // idle timer fires: close it, as if pooled and expired at once.
            self.close_conn();
            return vec![Val::Int(1)];
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
