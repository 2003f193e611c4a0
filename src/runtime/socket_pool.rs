//! The per-worker keepalive pool of cosocket connections
//! (`setkeepalive`), keyed by "host:port", "unix:path" or the `pool` option.
//!
//! An idle connection belongs to the pool, not to any request: its log is
//! the cycle's, its read event watches for the server closing it (or sending
//! anything unexpected), and its timer expires it after the keepalive
//! timeout.
//!
//! A pool created by a connect with the `backlog` option also limits the
//! connections it has open (in use or idle) to its size; further connects
//! queue (up to `backlog`) and are granted a slot, in order, as connections
//! of the pool close or come back idle.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use nginx_sys::{
    ngx_add_timer, ngx_connection_t, ngx_cycle, ngx_del_timer, ngx_event_t, ngx_exiting,
    ngx_handle_read_event, ngx_msec_t, ngx_terminate,
};

use super::tcp_sock::TcpSock;
use crate::glue::peer;

struct Idle {
    conn: *mut ngx_connection_t,
    reused: u32,
    key: Vec<u8>,
    /// Counted against the pool's open-connection limit.
    counted: bool,
}

struct Bucket {
    max: usize,
    idle: VecDeque<Box<Idle>>,
    limit: Option<Limit>,
}

struct Limit {
    open: usize,
    backlog: usize,
    queue: VecDeque<*mut TcpSock>,
}

/// Whether a connect of a limited pool may open a connection.
pub enum Admit {
    /// Yes (the connection now counts against the pool).
    Go,
    /// Not now: the socket waits in the backlog queue.
    Queued,
    /// The backlog queue is full too.
    Full,
}

thread_local! {
    static POOLS: RefCell<HashMap<Vec<u8>, Bucket>> = RefCell::new(HashMap::new());
}

/// True once the worker is shutting down (reload, quit, stop): nothing is
/// pooled any more, since an idle connection's timer keeps nginx from
/// ending the worker (idle connections already pooled are closed by nginx
/// through their `close` flag, see `put`).
pub fn worker_exiting() -> bool {
    // SAFETY: plain process-wide flags set by nginx's signal handling.
    unsafe { nginx_sys::ngx_exiting != 0 || nginx_sys::ngx_quit != 0 || nginx_sys::ngx_terminate != 0 }
}

/// A pooled connection for `key` (the most recently parked), with how often
/// it was reused before. The caller installs its own handlers and log.
pub fn take(key: &[u8]) -> Option<(*mut ngx_connection_t, u32, bool)> {
    let item = POOLS.with(|p| p.borrow_mut().get_mut(key).and_then(|b| b.idle.pop_back()))?;
    let c = item.conn;
    // SAFETY: the connection was parked by `put` and is still open (closed
    // ones leave the pool in `idle_event`).
    unsafe {
        if (*(*c).read).timer_set() != 0 {
            ngx_del_timer((*c).read);
        }
        (*c).data = std::ptr::null_mut();
        (*c).set_idle(0);
    }
    Some((c, item.reused, item.counted))
}

/// Asks a pool for room to open a connection. `backlog` (from the connect
/// options) makes the pool a limited one of `size`; a pool without limit
/// always says Go without counting.
pub fn admit(key: &[u8], size: usize, backlog: Option<usize>, sock: *mut TcpSock) -> Option<Admit> {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let b = p.entry(key.to_vec()).or_insert_with(|| Bucket {
            max: size.max(1),
            idle: VecDeque::new(),
            limit: None,
        });
        if b.limit.is_none() {
            let backlog = backlog?;
            b.limit = Some(Limit {
                open: 0,
                backlog,
                queue: VecDeque::new(),
            });
        }
        let max = b.max;
        let l = b.limit.as_mut()?;
        Some(if l.open < max {
            l.open += 1;
            Admit::Go
        } else if l.queue.len() < l.backlog {
            l.queue.push_back(sock);
            Admit::Queued
        } else {
            Admit::Full
        })
    })
}

/// Takes a socket out of the backlog queue (its wait ended).
pub fn dequeue(key: &[u8], sock: *mut TcpSock) {
    POOLS.with(|p| {
        if let Some(l) = p.borrow_mut().get_mut(key).and_then(|b| b.limit.as_mut()) {
            l.queue.retain(|s| *s != sock);
        }
    })
}

/// A counted connection of the pool closed: its slot goes to the first
/// queued connect, if any.
pub fn release(key: &[u8]) {
    let next = POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let l = p.get_mut(key).and_then(|b| b.limit.as_mut())?;
        l.open = l.open.saturating_sub(1);
        l.queue.pop_front()
    });
    grant(next);
}

fn grant(next: Option<*mut TcpSock>) {
    if let Some(s) = next {
        // SAFETY: a queued socket stays alive while queued (its waiting
        // thread holds it; its cancellation dequeues it).
        unsafe { (*s).grant() };
    }
}

/// Parks `c` under `key`; the oldest idle connection goes when the pool
/// already holds `size` of them (the size is fixed by the first put).
///
/// # Safety
/// `c` must be an open connection with no pending operation, handed over.
pub unsafe fn put(
    key: &[u8],
    c: *mut ngx_connection_t,
    reused: u32,
    counted: bool,
    timeout: ngx_msec_t,
    size: usize,
) {
    // A worker that is shutting down closes instead (as lua-nginx-module
    // does): nginx closes idle connections once, when the shutdown starts,
    // so a connection parked later would keep the retired worker alive
    // until its keepalive timeout.
    if ngx_exiting != 0 || ngx_terminate != 0 {
        close_idle(&Idle {
            conn: c,
            reused,
            key: key.to_vec(),
            counted,
        });
        return;
    }
    let log = (*ngx_cycle).log;
    (*c).log = log;
    (*(*c).read).log = log;
    (*(*c).write).log = log;
    if !(*c).pool.is_null() {
        (*(*c).pool).log = log;
    }
    (*(*c).read).handler = Some(idle_event);
    (*(*c).write).handler = Some(idle_write);
    if (*(*c).write).timer_set() != 0 {
        ngx_del_timer((*c).write);
    }
    if (*(*c).read).timer_set() != 0 {
        ngx_del_timer((*c).read);
    }
    let mut item = Box::new(Idle {
        conn: c,
        reused,
        key: key.to_vec(),
        counted,
    });
    (*c).data = (&mut *item as *mut Idle).cast();
    // A worker shutting down closes idle connections (through the read
    // handler, with `close` set) instead of waiting for their timers.
    (*c).set_idle(1);
    if timeout > 0 {
        ngx_add_timer((*c).read, timeout);
    }
    ngx_handle_read_event((*c).read, 0);
    let (evicted, next) = POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let b = p.entry(key.to_vec()).or_insert_with(|| Bucket {
            max: size.max(1),
            idle: VecDeque::new(),
            limit: None,
        });
        let old = if b.idle.len() >= b.max {
            b.idle.pop_front()
        } else {
            None
        };
        b.idle.push_back(item);
        // A queued connect can take this idle connection now.
        let next = b.limit.as_mut().and_then(|l| l.queue.pop_front());
        (old, next)
    });
    if let Some(old) = evicted {
        close_idle(&old);
    }
    grant(next);
}

fn close_idle(item: &Idle) {
    // SAFETY: the item left the pool; its connection is open and ours.
    unsafe { peer::close(item.conn) };
    if item.counted {
        release(&item.key);
    }
}

fn remove(key: &[u8], c: *mut ngx_connection_t) -> Option<Box<Idle>> {
    POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let b = p.get_mut(key)?;
        let i = b.idle.iter().position(|it| it.conn == c)?;
        b.idle.remove(i)
    })
}

unsafe extern "C" fn idle_write(_ev: *mut ngx_event_t) {}

unsafe extern "C" fn idle_event(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: nginx calls the read handler of a parked connection, whose
        // data is its Idle entry (alive while the connection is pooled).
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let idle = (*c).data as *mut Idle;
            if (*ev).timedout() == 0 && (*c).close() == 0 && !server_closed_or_talked(c) {
                ngx_handle_read_event(ev, 0);
                return;
            }
            let key = (*idle).key.clone();
            if let Some(item) = remove(&key, c) {
                close_idle(&item);
            }
        }
    })
}

/// True when nginx saw the peer close `c`, or the peer's FIN is next in
/// the socket.
///
/// # Safety
/// `c` must be a live connection.
pub unsafe fn peer_closed(c: *mut ngx_connection_t) -> bool {
    let rev = (*c).read;
    if (*rev).eof() != 0 || (*rev).pending_eof() != 0 {
        return true;
    }
    let mut b = [0u8; 1];
    libc::recv((*c).fd, b.as_mut_ptr().cast(), 1, libc::MSG_PEEK) == 0
}

/// True when the peer closed the idle connection, failed it, or sent data
/// nobody asked for: it cannot be reused.
///
/// # Safety
/// `c` must be a live connection.
pub unsafe fn server_closed_or_talked(c: *mut ngx_connection_t) -> bool {
    let mut b = [0u8; 1];
    let n = libc::recv((*c).fd, b.as_mut_ptr().cast(), 1, libc::MSG_PEEK);
    if n == -1 {
        let e = *libc::__errno_location();
        return e != libc::EAGAIN && e != libc::EINTR;
    }
    if n > 0 && !(*c).ssl.is_null() {
        // TLS records (such as TLS 1.3 session tickets) may wait unread in
        // an idle connection; only the end of the stream condemns it.
        return (*(*c).read).pending_eof() != 0;
    }
    true
}
