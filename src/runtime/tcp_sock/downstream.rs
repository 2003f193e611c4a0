//! The request socket mode (`ngx.req.socket`): the client connection,
//! its bytes already read past the header, and the body length limit.

use super::*;

impl TcpSock {
    /// Becomes the request socket of `r`'s client connection, starting with
    /// the bytes nginx already read past the request header.
    ///
    /// # Safety
    /// `r` must be live and bound (see bind_request).
    pub unsafe fn attach_downstream(&mut self, r: *mut ngx_http_request_t, how: Downstream) {
        // SAFETY: `r` is a live request (callers' duty)
        self.conn = unsafe { (*r).connection };
        let rest = how.rest;
        self.downstream = Some(how);
        // SAFETY: `r` is a live request (callers' duty)
        let b = unsafe { (*r).header_in };
        // SAFETY: `b` is a live buffer (callers' duty)
        if !b.is_null() && unsafe { (*b).pos } < unsafe { (*b).last } {
            // SAFETY: `b` is a live buffer (callers' duty)
            let avail = unsafe { (*b).last.offset_from((*b).pos) } as u64;
            let take = rest.map_or(avail, |n| n.min(avail)) as usize;
            self.compact();
            let old = self.rbuf.len();
            self.rbuf
                // SAFETY: `b` is a live buffer (callers' duty)
                .extend_from_slice(unsafe { std::slice::from_raw_parts((*b).pos, take) });
            // SAFETY: `b` is a live buffer (callers' duty)
            unsafe {
                (*b).pos = (*b).pos.add(take);
            }
            // A malformed chunked body shows at the first receive.
            let _ = self.take_in(old, take);
        }
        self.body_read_check();
    }

    /// A request body socket with body bytes still to read.
    pub fn body_pending(&self) -> bool {
        self.downstream.as_ref().is_some_and(|d| !d.raw && !d.bad)
            && (self.read_limit() != Some(0) || !self.rbuf.is_empty())
    }

    /// Once the whole body is read the request may be kept alive again.
    pub(super) fn body_read_check(&mut self) {
        if self.read_limit() != Some(0) || self.downstream.as_ref().is_some_and(|d| d.bad) {
            return;
        }
        let Some(d) = self.downstream.as_mut() else {
            return;
        };
        // A chunked body's decoder may have read into what follows it.
        if d.chunked.is_none() && std::mem::take(&mut d.keepalive) && !self.r.is_null() {
            // SAFETY: r is live while it owns the socket.
            unsafe { (*self.r).set_keepalive(1) };
        }
    }

    /// Accounts for `n` raw bytes just appended to rbuf at `old`: counts
    /// them against the body length, or decodes them in place when the body
    /// is chunked. False on a malformed chunked body.
    pub(super) fn take_in(&mut self, old: usize, n: usize) -> bool {
        let Some(d) = self.downstream.as_mut() else {
            return true;
        };
        if let Some(ch) = d.chunked.as_mut() {
            let raw: Vec<u8> = self.rbuf.drain(old..old + n).collect();
            return match ch.feed(&raw, &mut self.rbuf) {
                Ok(()) => true,
                Err(()) => {
                    d.chunked = None;
                    d.rest = Some(0);
                    d.bad = true;
                    false
                }
            };
        }
        if let Some(r) = d.rest.as_mut() {
            *r = r.saturating_sub(n as u64);
        }
        true
    }

    /// Body bytes this read may take (None: no limit; Some(0): the body
    /// has ended).
    pub(super) fn read_limit(&self) -> Option<u64> {
        let d = self.downstream.as_ref()?;
        match &d.chunked {
            Some(ch) if ch.done() => Some(0),
            Some(_) => None,
            None => d.rest,
        }
    }

    /// The client closed the connection: for the request socket that is an
    /// abort when lua_check_client_abort is on or body bytes are missing
    /// (otherwise, as for any peer, the end of the data).
    pub(super) fn downstream_aborted(&self) -> bool {
        let Some(d) = self.downstream.as_ref() else {
            return false;
        };
        // SAFETY: r is live while it owns the socket.
        if !self.r.is_null() && unsafe { crate::conf::loc_conf(self.r) }.check_client_abort() {
            return true;
        }
        !d.raw && (d.rest.is_some_and(|n| n > 0) || d.chunked.as_ref().is_some_and(|c| !c.done()))
    }

    /// A receive that leaves the request body all read, with
    /// lua_check_client_abort on, looks at the client connection at once, as
    /// lua-nginx-module does: a client whose FIN came with the body's last
    /// bytes was reported by epoll already, and no later read event would
    /// tell the abort check. True (logged) when the client left.
    pub(super) fn body_done_client_gone(&self) -> bool {
        let body_stream = self.downstream.as_ref().is_some_and(|d| !d.raw && !d.bad);
        if !body_stream || self.body_pending() || self.r.is_null() {
            return false;
        }
        // SAFETY: r is live while it owns the socket.
        unsafe { crate::conf::loc_conf(self.r).check_client_abort() && client_abort::client_closed(self.r) }
    }

    /// Lets go of the client connection: only our timers go.
    pub(super) fn release_downstream(&mut self) {
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
        self.clear_rbuf();
    }

    /// A client connection event for the request socket.
    /// A receive is pending on the client connection.
    pub fn reading(&self) -> bool {
        self.rop.is_some()
    }

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
        // SAFETY: `ev` is the client connection's event of that side.
        unsafe { self.on_event(ev, write) };
    }
}
