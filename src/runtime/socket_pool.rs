//! The per-worker keepalive pool of cosocket connections
//! (`setkeepalive`), keyed by "host:port", "unix:path" or the `pool` option.
//!
//! An idle connection belongs to the pool, not to any request: its log is
//! the cycle's, its read event watches for the server closing it (or sending
//! anything unexpected), and its timer expires it after the keepalive
//! timeout.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use nginx_sys::{
    ngx_add_timer, ngx_connection_t, ngx_cycle, ngx_del_timer, ngx_event_t, ngx_handle_read_event, ngx_msec_t,
};

use crate::glue::peer;

struct Idle {
    conn: *mut ngx_connection_t,
    reused: u32,
    key: Vec<u8>,
}

struct Bucket {
    max: usize,
    idle: VecDeque<Box<Idle>>,
}

thread_local! {
    static POOLS: RefCell<HashMap<Vec<u8>, Bucket>> = RefCell::new(HashMap::new());
}

/// A pooled connection for `key` (the most recently parked), with how often
/// it was reused before. The caller installs its own handlers and log.
pub fn take(key: &[u8]) -> Option<(*mut ngx_connection_t, u32)> {
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
    Some((c, item.reused))
}

/// Parks `c` under `key`; the oldest idle connection goes when the pool
/// already holds `size` of them (the size is fixed by the first put).
///
/// # Safety
/// `c` must be an open connection with no pending operation, handed over.
pub unsafe fn put(key: &[u8], c: *mut ngx_connection_t, reused: u32, timeout: ngx_msec_t, size: usize) {
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
    });
    (*c).data = (&mut *item as *mut Idle).cast();
    // A worker shutting down closes idle connections (through the read
    // handler, with `close` set) instead of waiting for their timers.
    (*c).set_idle(1);
    if timeout > 0 {
        ngx_add_timer((*c).read, timeout);
    }
    ngx_handle_read_event((*c).read, 0);
    let evicted = POOLS.with(|p| {
        let mut p = p.borrow_mut();
        let b = p.entry(key.to_vec()).or_insert_with(|| Bucket {
            max: size.max(1),
            idle: VecDeque::new(),
        });
        let old = if b.idle.len() >= b.max {
            b.idle.pop_front()
        } else {
            None
        };
        b.idle.push_back(item);
        old
    });
    if let Some(old) = evicted {
        peer::close(old.conn);
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
                peer::close(item.conn);
            }
        }
    })
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
