//! A byte buffer reused across calls, for API functions that build a value
//! before handing it to Lua (a query string, a quoted SQL string): the
//! allocation of a fresh `Vec` per call is what lua-nginx-module avoids with
//! its one string buffer per VM.

use std::cell::Cell;

use super::loop_local::loop_local;

/// A buffer that grew past this is dropped after its call instead of kept.
const KEEP_MAX: usize = 64 * 1024;

loop_local! {
    static BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on the running thread's buffer, emptied. The buffer is taken
/// out for the call: a nested call (or a Lua error that skips the return,
/// which then only costs the buffer) gets a fresh one instead of sharing it.
pub fn with_scratch_vec<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = BUF.with(Cell::take);
    buf.clear();
    let r = f(&mut buf);
    if buf.capacity() <= KEEP_MAX {
        BUF.with(|b| b.set(buf));
    }
    r
}
