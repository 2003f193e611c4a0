//! The heap buffer of `RequestCtx::threads`, reused across requests.
//!
//! The list keeps one thread inline (the entry thread: most requests have no
//! other). A request that spawns light threads needs a heap buffer; rather
//! than allocate one per request, and grow it, the scheduler hands it one
//! buffer kept by the process, and takes it back when the phase's code has
//! ended and what is left fits inline again.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr;

use super::ctx::RequestCtx;
use super::scheduler::LuaThread;

/// The capacity of a new buffer: room for the light threads of common code.
const CAPACITY: usize = 8;

/// A buffer grown larger than this is freed, not kept.
const KEEP_MAX: usize = 64;

// A thread-local, not a `loop_local!`: it holds heap memory, and a static
// of this library is unmapped when nginx unloads the module at exit, which
// valgrind's leak check (scripts/test.sh) then reports as lost; a
// thread-local's block stays reachable.
thread_local! {
    // Per-process scratch memory: an empty buffer (pointer, capacity) for
    // the next request that spills, null when none is kept. Not a state of
    // a VM: plain memory, for the requests of whatever VM.
    static SPARE: Cell<(*mut LuaThread, usize)> = const { Cell::new((ptr::null_mut(), 0)) };
}

/// Appends `t` to the threads of `ctx`, moving them to the spare buffer
/// when they no longer fit inline.
pub fn push(ctx: &mut RequestCtx, t: LuaThread) {
    let threads = &mut ctx.threads;
    if threads.spilled() || threads.len() < threads.inline_size() {
        threads.push(t);
        return;
    }
    let (p, cap) = SPARE.replace((ptr::null_mut(), 0));
    let mut v = if p.is_null() {
        Vec::with_capacity(CAPACITY)
    } else {
        // SAFETY: SPARE holds the pointer and capacity of an empty Vec's
        // buffer (see `reclaim`), now taken off it.
        unsafe { Vec::from_raw_parts(p, 0, cap) }
    };
    v.extend(threads.drain(..));
    v.push(t);
    // The Vec's capacity exceeds the inline size: the buffer is kept.
    *threads = smallvec::SmallVec::from_vec(v);
}

/// Takes the heap buffer back from `ctx` once its threads fit inline.
pub fn reclaim(ctx: &mut RequestCtx) {
    let threads = &mut ctx.threads;
    if !threads.spilled() || threads.len() > threads.inline_size() {
        return;
    }
    let mut v = std::mem::take(threads).into_vec();
    threads.extend(v.drain(..));
    if v.capacity() > KEEP_MAX {
        return;
    }
    let mut v = ManuallyDrop::new(v);
    let old = SPARE.replace((v.as_mut_ptr(), v.capacity()));
    if !old.0.is_null() {
        // SAFETY: the previous spare buffer, an empty Vec's, owned by SPARE
        // until replaced just now.
        drop(unsafe { Vec::from_raw_parts(old.0, 0, old.1) });
    }
}
