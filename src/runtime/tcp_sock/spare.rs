//! Memory of collected sockets kept for the next ones, per VM (a VM state,
//! not a thread-local): code that makes a socket per request would
//! otherwise allocate and free the socket and its read buffer (the
//! location's `lua_socket_buffer_size`) every time. Lua's collector frees
//! sockets in batches, so up to `SOCKS` of them wait here for the requests
//! to come. Buffers mostly travel with a pooled connection instead (see
//! socket_pool's `Bufs`); these serve the connections opened anew.

use std::cell::RefCell;

use super::TcpSock;
use crate::lua::vm;

/// How many spare buffers are kept, and the largest kept (a socket that
/// read a big body gives its memory back).
const BUFS: usize = 8;
const BUF_MAX: usize = 64 * 1024;
/// How many collected sockets are kept: enough for the sockets that one
/// collector cycle frees at once (with 512, a client socket per request
/// after the API mix workload still found half of its sockets gone: cycles
/// of some 1,000 requests). At most a few hundred bytes each, and only as
/// many as were dead at once before.
const SOCKS: usize = 2048;

#[derive(Default)]
struct Spare {
    bufs: RefCell<Vec<Vec<u8>>>,
    // Boxes, not values: the memory handed out is the box's (a socket's
    // address must not change: nginx and its Lua object point at it).
    #[allow(clippy::vec_box)]
    socks: RefCell<Vec<Box<TcpSock>>>,
}
crate::lua::vm::vm_state!(Spare);

/// Keeps `buf`'s memory for a later socket.
pub(super) fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > BUF_MAX {
        return;
    }
    buf.clear();
    vm::with_current_state(|s: &Spare| {
        let mut b = s.bufs.borrow_mut();
        if b.len() < BUFS {
            b.push(buf);
        }
    });
}

/// `buf` emptied, to park with a pooled connection, unless it grew past
/// what is kept (a connection idle in a pool would hold a big body's
/// memory for as long as it idles).
pub(super) fn parkable(mut buf: Vec<u8>) -> Vec<u8> {
    if buf.capacity() > BUF_MAX {
        return Vec::new();
    }
    buf.clear();
    buf
}

/// An empty buffer, with the memory of a collected socket's if any.
pub(super) fn spare_buf() -> Vec<u8> {
    vm::with_current_state(|s: &Spare| s.bufs.borrow_mut().pop()).unwrap_or_default()
}

/// A fresh socket, in the memory of a collected one if any.
pub fn new_sock() -> Box<TcpSock> {
    match vm::with_current_state(|s: &Spare| s.socks.borrow_mut().pop()) {
        Some(s) => s,
        None => Box::new(TcpSock::new()),
    }
}

/// Takes a released socket (see `TcpSock::release`) for `new_sock`.
pub fn recycle(mut sock: Box<TcpSock>) {
    sock.reset();
    vm::with_current_state(|s: &Spare| {
        let mut v = s.socks.borrow_mut();
        if v.len() < SOCKS {
            v.push(sock);
        }
    });
}
