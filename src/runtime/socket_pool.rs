//! The per-worker keepalive pools of cosocket connections, keyed by
//! "host:port", "unix:path" or the `pool` connect option, kept as
//! lua-nginx-module keeps them.
//!
//! A pool comes into being at the first `setkeepalive` for its key (or at a
//! connect given `pool_size` or `backlog`), with a fixed size: the most idle
//! connections it holds. From then on it counts the connections tied to it:
//! the idle ones, those of sockets that connected through it (in use,
//! connecting, or waiting in its backlog queue). When that count drops to
//! zero the pool goes away; a later one for the same key may have another
//! size.
//!
//! A pool created with `backlog` also limits that count: connects beyond its
//! size wait in its queue (up to `backlog` of them), and are resumed, in
//! order, whenever a connection of the pool closes or comes back idle.
//!
//! An idle connection belongs to the pool, not to any request: its log is
//! the cycle's, its read event watches for the server closing it (or sending
//! anything unexpected), and its timer expires it after the keepalive
//! timeout.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ptr::NonNull;

use rustc_hash::FxHashMap;

use nginx_sys::{
    ngx_add_timer, ngx_connection_t, ngx_cycle, ngx_del_timer, ngx_event_t, ngx_handle_read_event, ngx_log_t,
    ngx_msec_t,
};

use super::tcp_sock::TcpSock;
use crate::glue::{log, peer};
use crate::lua::vm;

/// An idle connection, with the buffers of the socket that parked it: the
/// next socket to take it reads into them (no buffer allocated per
/// request by code that makes a socket per request).
struct Idle {
    conn: *mut ngx_connection_t,
    reused: u32,
    bufs: Bufs,
}

/// A socket's read buffer and result buffer, kept for reuse.
pub type Bufs = (Vec<u8>, Vec<u8>);

/// Allocated on its own (see `PoolRef`): an idle connection's `data` points
/// at its pool, which outlives it (a pool goes only when its last
/// connection closed).
struct Pool {
    key: Vec<u8>,
    size: usize,
    /// None: connects are never queued (lua-nginx-module's backlog -1).
    backlog: Option<usize>,
    /// Connections tied to the pool: idle, in use, being opened, queued.
    connections: usize,
    /// Oldest first; connects take the most recent.
    idle: VecDeque<Idle>,
    queue: VecDeque<*mut TcpSock>,
}

/// Whether a connect through a pool may open a connection.
pub enum Admit {
    Go,
    /// Not now: the socket waits in the backlog queue.
    Queued,
    /// The backlog queue is full too.
    Full,
}

/// A pool, by address. Valid while the pool exists: a socket keeps the
/// handle of the pool it connected through while it counts in it (the pool
/// cannot go before its count drops to zero), so that setkeepalive and the
/// rest find it without looking it up (a VM state lookup and a hash of the
/// key each time).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PoolRef(NonNull<Pool>);

impl PoolRef {
    /// The pool.
    ///
    /// # Safety
    /// The pool still exists, and no other reference to it is live (every
    /// function here takes it for a few lines, never across a call that
    /// could reach the pool again).
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self) -> &mut Pool {
        // SAFETY: the caller's contract.
        unsafe { &mut *self.0.as_ptr() }
    }
}

/// Owns a pool allocation in the map (a raw allocation rather than a Box:
/// handles point into it while the map is borrowed and changed).
struct Owned(NonNull<Pool>);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw in `create`, freed only here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The pools of a VM (its state: they go with their cycle). Fx hashing:
/// every connect looks its pool up (SipHash was a tenth of its cost).
#[derive(Default)]
struct Pools(RefCell<FxHashMap<Vec<u8>, Owned>>);
crate::lua::vm::vm_state!(Pools);

/// Runs `f` on the pools of the running cycle.
fn with_pools<R>(f: impl FnOnce(&RefCell<FxHashMap<Vec<u8>, Owned>>) -> R) -> R {
    vm::with_current_state(|p: &Pools| f(&p.0))
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

pub fn exists(key: &[u8]) -> bool {
    with_pools(|p| p.borrow().contains_key(key))
}

/// The pool of `key`, if there is one.
pub fn find(key: &[u8]) -> Option<PoolRef> {
    with_pools(|p| p.borrow().get(key).map(|o| PoolRef(o.0)))
}

/// Creates the pool of `key` (it must not exist).
pub fn create(key: &[u8], size: usize, backlog: Option<usize>, log: *mut ngx_log_t) -> PoolRef {
    log::log_debug_http!(
        log,
        "lua tcp socket connection pool size: {size}, backlog: {}",
        backlog.map_or(-1, |b| b as i64)
    );
    log::log_debug_http!(
        log,
        "lua tcp socket keepalive create connection pool for key \"{}\"",
        key_text(key)
    );
    let pool = NonNull::from(Box::leak(Box::new(Pool {
        key: key.to_vec(),
        size: size.max(1),
        backlog,
        connections: 0,
        idle: VecDeque::new(),
        queue: VecDeque::new(),
    })));
    with_pools(|p| p.borrow_mut().insert(key.to_vec(), Owned(pool)));
    PoolRef(pool)
}

/// An idle connection of the pool (the most recently parked), with how
/// often it was reused before and the buffers parked with it. It still
/// counts in the pool. The caller installs its own handlers and log.
///
/// # Safety
/// `pool` exists.
pub unsafe fn take(pool: PoolRef, log: *mut ngx_log_t) -> Option<(*mut ngx_connection_t, u32, Bufs)> {
    log::log_debug_http!(log, "lua tcp socket pool get keepalive peer");
    // SAFETY: the pool exists (callers' duty)
    let item = unsafe { pool.get() }.idle.pop_back()?;
    let c = item.conn;
    // SAFETY: the connection was parked by `put` and is still open (closed
    // ones leave the pool in `idle_event`).
    unsafe {
        log::log_debug_http!(
            log,
            "lua tcp socket get keepalive peer: using connection {:016x}, fd:{}",
            c as usize,
            (*c).fd
        );
        if (*(*c).read).timer_set() != 0 {
            ngx_del_timer((*c).read);
        }
        (*c).data = std::ptr::null_mut();
        (*c).set_idle(0);
    }
    Some((c, item.reused, item.bufs))
}

/// Counts a connect through the pool. A pool with a backlog queues it
/// beyond its size; `resuming` (a queued connect granted its turn) is never
/// queued again.
///
/// # Safety
/// `pool` exists.
pub unsafe fn admit(pool: PoolRef, sock: *mut TcpSock, resuming: bool, log: *mut ngx_log_t) -> Admit {
    // SAFETY: the pool exists (callers' duty)
    let b = unsafe { pool.get() };
    b.connections += 1;
    let Some(backlog) = b.backlog.filter(|_| !resuming) else {
        return Admit::Go;
    };
    if b.connections > b.size + backlog {
        b.connections -= 1;
        return Admit::Full;
    }
    if b.connections > b.size {
        log::log_debug_http!(
            log,
            "lua tcp socket queue connect operation for connection pool \"{}\", connections: {}",
            key_text(&b.key),
            b.connections
        );
        b.queue.push_back(sock);
        return Admit::Queued;
    }
    Admit::Go
}

/// A queued connect stops waiting (timed out, aborted, or granted its turn
/// and about to connect again): it leaves the queue and the count (the
/// pool stays, even with no count left: a granted connect counts again at
/// once). Unless it was granted, the next one in the queue may go.
///
/// # Safety
/// `pool` exists.
pub unsafe fn dequeue(pool: PoolRef, sock: *mut TcpSock, granted: bool) {
    {
        // SAFETY: the pool exists (callers' duty)
        let b = unsafe { pool.get() };
        b.queue.retain(|s| *s != sock);
        b.connections = b.connections.saturating_sub(1);
    }
    if !granted {
        // SAFETY: the pool exists (callers' duty)
        unsafe { resume(pool) };
    }
}

/// A connection counted in the pool closed (or a counted connect failed):
/// the pool goes when nothing is left, else a queued connect may go.
///
/// # Safety
/// `pool` exists; it may not afterwards.
pub unsafe fn release(pool: PoolRef) {
    let empty = {
        // SAFETY: the pool exists (callers' duty)
        let b = unsafe { pool.get() };
        b.connections = b.connections.saturating_sub(1);
        b.connections == 0
    };
    if empty {
        // SAFETY: the pool exists (callers' duty)
        unsafe { free(pool) }
    } else {
        // SAFETY: the pool exists (callers' duty)
        unsafe { resume(pool) }
    }
}

/// # Safety
/// `pool` exists; it does not afterwards.
unsafe fn free(pool: PoolRef) {
    let owned = {
        // SAFETY: the pool exists (callers' duty)
        let key = &unsafe { pool.get() }.key;
        log::log_debug_http!(
            log::cycle_log(),
            "lua tcp socket keepalive: free connection pool for \"{}\"",
            key_text(key)
        );
        with_pools(|p| {
            let mut p = p.borrow_mut();
            // Only this very pool (the running VM's pools hold it).
            if p.get(key).is_some_and(|o| o.0 == pool.0) {
                p.remove(key)
            } else {
                None
            }
        })
    };
    if let Some(owned) = owned {
        // SAFETY: the pool exists until `owned` drops below
        for item in std::mem::take(&mut unsafe { pool.get() }.idle) {
            // SAFETY: idle connections are open and owned by the pool.
            unsafe { peer::close(item.conn) };
        }
        drop(owned);
    }
}

/// Lets the first queued connect of the pool try again.
///
/// # Safety
/// `pool` exists.
unsafe fn resume(pool: PoolRef) {
    // SAFETY: the pool exists (callers' duty)
    let next = unsafe { pool.get() }.queue.pop_front();
    if let Some(s) = next {
        // SAFETY: a queued socket stays alive while queued (its waiting
        // thread holds it; its cancellation dequeues it).
        unsafe { (*s).grant() };
    }
}

/// What became of a connection handed to `put`.
pub enum Put {
    Pooled,
    /// The peer spoke or closed meanwhile: the connection was closed.
    Dubious,
}

/// Parks `c` in the pool; the oldest idle connection goes when the pool
/// holds its size of them already. `counted`: the connection already
/// counts in the pool (it was opened through it). `bufs` (emptied) stay
/// with the connection.
///
/// # Safety
/// `pool` exists; `c` must be an open connection with no pending
/// operation, handed over.
pub unsafe fn put(
    pool: PoolRef,
    c: *mut ngx_connection_t,
    reused: u32,
    counted: bool,
    timeout: ngx_msec_t,
    bufs: Bufs,
) -> Put {
    let evicted = {
        // SAFETY: the pool exists (callers' duty)
        let b = unsafe { pool.get() };
        if b.idle.len() >= b.size {
            let old = b.idle.pop_front();
            if counted {
                b.connections = b.connections.saturating_sub(1);
            }
            old
        } else {
            if !counted {
                b.connections += 1;
            }
            None
        }
    };
    if let Some(old) = evicted {
        // SAFETY: the evicted idle connection is ours, taken out of the pool and closed once
        unsafe { peer::close(old.conn) };
    }
    // SAFETY: ngx_cycle is the live current cycle
    let log = unsafe { (*ngx_cycle).log };
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    unsafe {
        (*c).log = log;
        (*(*c).read).log = log;
        (*(*c).write).log = log;
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if !unsafe { (*c).pool.is_null() } {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        unsafe {
            (*(*c).pool).log = log;
        }
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    unsafe {
        (*(*c).read).handler = Some(idle_event);
        (*(*c).write).handler = Some(idle_write);
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if unsafe { (*(*c).write).timer_set() } != 0 {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        unsafe { ngx_del_timer((*c).write) };
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if unsafe { (*(*c).read).timer_set() } != 0 {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        unsafe { ngx_del_timer((*c).read) };
    }
    if timeout > 0 {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        unsafe { ngx_add_timer((*c).read, timeout) };
    }
    // A worker shutting down closes idle connections (through the read
    // handler, with `close` set) instead of waiting for their timers.
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    unsafe {
        (*c).set_idle(1);
        ngx_handle_read_event((*c).read, 0);
    }
    // The idle connection's data is its pool (which stays put).
    // SAFETY: `c` is a live connection of ours (callers' duty)
    unsafe { (*c).data = pool.0.as_ptr().cast() };
    // SAFETY: the pool exists (callers' duty)
    unsafe { pool.get() }.idle.push_back(Idle {
        conn: c,
        reused,
        bufs,
    });
    // Anything already there (data, the peer's FIN) means the connection
    // cannot be reused.
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if unsafe { (*(*c).read).ready() } != 0 && unsafe { check_idle(c) } {
        return Put::Dubious;
    }
    // SAFETY: the pool exists: it holds `c`
    unsafe { resume(pool) };
    Put::Pooled
}

/// Closes a parked connection if it is no longer quiet; true if it did.
///
/// # Safety
/// `c` must be a pooled connection.
unsafe fn check_idle(c: *mut ngx_connection_t) -> bool {
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    let ev = unsafe { (*c).read };
    // SAFETY: `ev` is a live event of the connection
    let timedout = unsafe { (*ev).timedout() } != 0;
    if timedout {
        // SAFETY: `ev` is a live event of the connection
        log::log_debug_http!(unsafe { (*ev).log }, "lua tcp socket keepalive max idle timeout");
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    } else if unsafe { (*c).close() } == 0 {
        log::log_debug_http!(
            // SAFETY: `ev` is a live event of the connection
            unsafe { (*ev).log },
            "lua tcp socket keepalive close handler check stale events"
        );
        let mut b = [0u8; 1];
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        let n = unsafe { libc::recv((*c).fd, b.as_mut_ptr().cast(), 1, libc::MSG_PEEK) };
        // SAFETY: reads this thread's errno
        if n == -1 && unsafe { *libc::__errno_location() } == libc::EAGAIN {
            // SAFETY: `ev` is the idle connection's live read event
            unsafe { ngx_handle_read_event(ev, 0) };
            return false;
        }
    }
    // SAFETY: `ev` and `c` are a live connection of ours and its event (callers' duty)
    let (log, fd) = unsafe { ((*ev).log, (*c).fd) };
    log::log_debug_http!(log, "lua tcp socket keepalive close handler: fd:{fd}");
    // SAFETY: `c` is a live connection of ours (callers' duty); an idle
    // connection's data is its live pool (see `put`)
    let pool = PoolRef(unsafe { NonNull::new_unchecked((*c).data.cast::<Pool>()) });
    let item = {
        // SAFETY: as above
        let b = unsafe { pool.get() };
        b.idle
            .iter()
            .position(|it| it.conn == c)
            .and_then(|i| b.idle.remove(i))
    };
    // SAFETY: `c` is an idle connection of ours, just taken out of the pool
    unsafe { peer::close(c) };
    drop(item);
    // SAFETY: the pool exists: `c` counted in it until now
    unsafe { release(pool) };
    true
}

/// True when nginx saw the peer close `c`.
///
/// # Safety
/// `c` must be a live connection.
pub unsafe fn peer_closed(c: *mut ngx_connection_t) -> bool {
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    let rev = unsafe { (*c).read };
    // A ready connection with anything in it (data, a FIN epoll has not
    // reported yet) is `put`'s to refuse ("connection in dubious state"),
    // as lua-nginx-module does: no peek here.
    // SAFETY: `rev` is the live connection's read event
    unsafe { (*rev).eof() != 0 || (*rev).pending_eof() != 0 }
}

unsafe extern "C" fn idle_write(_ev: *mut ngx_event_t) {}

unsafe extern "C" fn idle_event(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: nginx calls the read handler of a parked connection, whose
        // data is its pool (alive while the connection is pooled).
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            check_idle(c);
        }
    })
}
