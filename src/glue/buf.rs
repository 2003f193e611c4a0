//! Buffers and chains in a request's pool.

use std::ptr;

use nginx_sys::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_buf_tag_t, ngx_chain_t, ngx_chain_update_chains,
    ngx_create_temp_buf, ngx_palloc, ngx_pcalloc, ngx_pfree, ngx_pool_t,
};

/// A one-link chain holding a pool copy of `data` (an empty, flagged
/// buffer when `data` is empty).
///
/// # Safety
/// `pool` must be a live pool.
pub unsafe fn chain_from_bytes(pool: *mut ngx_pool_t, data: &[u8]) -> Option<*mut ngx_chain_t> {
    // SAFETY: `pool` is live (caller's contract)
    unsafe { chain_from_parts(pool, &[data]) }
}

/// A one-link chain holding a pool copy of `parts`, concatenated.
///
/// # Safety
/// `pool` must be a live pool.
pub unsafe fn chain_from_parts(pool: *mut ngx_pool_t, parts: &[&[u8]]) -> Option<*mut ngx_chain_t> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let b: *mut ngx_buf_t = if len == 0 {
        // SAFETY: `pool` is live (caller's contract)
        (unsafe { ngx_pcalloc(pool, std::mem::size_of::<ngx_buf_t>()) }) as *mut ngx_buf_t
    } else {
        // SAFETY: `pool` is live (caller's contract)
        unsafe { ngx_create_temp_buf(pool, len) }
    };
    if b.is_null() {
        return None;
    }
    for p in parts {
        // SAFETY: `b` has room for `len`, the sum of the parts, past `last`
        unsafe {
            std::ptr::copy_nonoverlapping(p.as_ptr(), (*b).last, p.len());
            (*b).last = (*b).last.add(p.len());
        }
    }
    // SAFETY: `pool` is live (caller's contract); `b` was just allocated
    unsafe { link(pool, b) }
}

/// Does the buffer hold its data in memory (not only in a file)?
///
/// # Safety
/// `b` must be a live buffer.
pub unsafe fn in_memory(b: *const ngx_buf_t) -> bool {
    // SAFETY: `b` is a live buffer (caller's contract)
    (unsafe { (*b).temporary() }) != 0 || unsafe { (*b).memory() } != 0 || unsafe { (*b).mmap() } != 0
}

/// Marks the buffer's data as sent, so that its producer may reuse it.
///
/// # Safety
/// `b` must be a live buffer.
pub unsafe fn consume(b: *mut ngx_buf_t) {
    // SAFETY: `b` is a live buffer (caller's contract)
    unsafe {
        (*b).pos = (*b).last;
        (*b).file_pos = (*b).file_last;
    }
}

/// Bytes of data still to be sent from the buffer (nginx's `ngx_buf_size`).
///
/// # Safety
/// `b` must be a live buffer.
unsafe fn size(b: *const ngx_buf_t) -> i64 {
    // SAFETY: `b` is a live buffer (caller's contract)
    if unsafe { in_memory(b) } {
        // SAFETY: `b` is live and in memory: pos and last point into its memory
        (unsafe { (*b).last.offset_from((*b).pos) }) as i64
    } else {
        // SAFETY: `b` is a live buffer (caller's contract)
        (unsafe { (*b).file_last }) - unsafe { (*b).file_pos }
    }
}

/// Bytes of data still to be sent from all buffers of chain `cl`.
///
/// # Safety
/// `cl` must be null or a live chain of live buffers.
pub unsafe fn chain_size(mut cl: *const ngx_chain_t) -> i64 {
    let mut n = 0;
    while !cl.is_null() {
        // SAFETY: a live chain's links and buffers are live (caller's contract)
        unsafe {
            n += size((*cl).buf);
            cl = (*cl).next;
        }
    }
    n
}

/// How many free buffers `BufList::get` looks at for the best fit: the list
/// stays short in practice (it holds what was in flight at once), the bound
/// keeps a call O(1) when it is not.
const FIT_SCAN: usize = 16;

/// One producer's output buffers in a request's pool, reused the way nginx
/// modules do it (`free`/`busy` chains and a buffer tag): what the producer
/// passes down goes to `busy`; once the filters below have sent a buffer
/// (its data consumed) it moves to `free` and `get` hands it out again. A
/// response of any length then costs the few buffers in flight at a time,
/// not its size: pool memory is only given back when the request ends.
pub struct BufList {
    free: *mut ngx_chain_t,
    busy: *mut ngx_chain_t,
    /// The flush-only buffer [`BufList::special`] hands out again.
    flush: *mut ngx_buf_t,
}

impl Default for BufList {
    fn default() -> Self {
        BufList {
            free: ptr::null_mut(),
            busy: ptr::null_mut(),
            flush: ptr::null_mut(),
        }
    }
}

impl BufList {
    /// A one-link chain whose buffer, tagged `tag`, has room for `len`
    /// bytes (empty, with `pos == last == start`); `len` is not zero:
    /// flags-only buffers come from [`BufList::special`]. Reuses a sent
    /// buffer when one is large enough; allocates only when none is.
    ///
    /// # Safety
    /// `pool` must be the live pool of the request the list belongs to,
    /// the one every earlier buffer of this list came from.
    pub unsafe fn get(
        &mut self,
        pool: *mut ngx_pool_t,
        len: usize,
        tag: ngx_buf_tag_t,
    ) -> Option<*mut ngx_chain_t> {
        // Buffers sent since the last call come back first (nginx moves
        // them only when the producer passes more data; a wait for the
        // client, as in ngx.flush(true), would leave them busy).
        // SAFETY: busy links are live: `update` put them there from this request's pool
        if !self.busy.is_null() && unsafe { size((*self.busy).buf) } == 0 {
            // SAFETY: `pool` is this list's request pool (caller's contract)
            unsafe { self.update(pool, ptr::null_mut(), tag) };
        }
        // SAFETY: the free list holds live links as `update` left it
        let Some(cl) = (unsafe { self.take_best(len) }) else {
            // SAFETY: `pool` is live (caller's contract)
            return unsafe { new_chain(pool, len, tag) };
        };
        // SAFETY: `cl` is a live link from the free list
        let b = unsafe { (*cl).buf };
        // SAFETY: `b` is the live buffer of that link
        let (mut start, mut end) = (unsafe { (*b).start }, unsafe { (*b).end });
        // SAFETY: `b` is the live buffer of that link
        if unsafe { capacity(b) } < len {
            // Too small: its memory goes back (nginx frees only large
            // allocations; small ones stay in the pool) and the buffer
            // gets new memory of the size asked.
            if !start.is_null() {
                // SAFETY: `start` came from this pool (every buffer of this list did)
                unsafe { ngx_pfree(pool, start.cast()) };
            }
            // SAFETY: `pool` is live (caller's contract)
            start = unsafe { ngx_palloc(pool, len) } as *mut u8;
            if start.is_null() {
                return None;
            }
            // SAFETY: `start` has `len` bytes; end is one past them
            end = unsafe { start.add(len) };
        }
        // SAFETY: `b` is a live buffer not in flight any more (taken from `free`)
        unsafe {
            ptr::write_bytes(b, 0, 1);
            (*b).start = start;
            (*b).pos = start;
            (*b).last = start;
            (*b).end = end;
            (*b).tag = tag;
        }
        // SAFETY: `b` and `cl` are the live link and buffer taken from `free`
        unsafe {
            (*b).set_temporary((len > 0) as _);
            (*cl).next = ptr::null_mut();
        }
        Some(cl)
    }

    /// A one-link chain with a flags-only buffer (no data): `flush`, or
    /// the end of the body (`last_buf`, or `last_in_chain` for a
    /// subrequest). Such a buffer never joins the data buffers: its size is
    /// zero, so nginx's reuse rule would call it sent at once, while the
    /// write filter may still hold it (limit_rate, a slow client), and a
    /// data buffer reusing its struct would be sent there too. A flush-only
    /// buffer is one struct handed out again and again: a held link to it
    /// still reads flush, which is harmless. An end is new memory, once.
    ///
    /// # Safety
    /// `pool` must be the live pool of the request the list belongs to.
    pub unsafe fn special(
        &mut self,
        pool: *mut ngx_pool_t,
        flush: bool,
        last_buf: bool,
        last_in_chain: bool,
    ) -> Option<*mut ngx_chain_t> {
        let only_flush = !last_buf && !last_in_chain;
        let b = if only_flush && !self.flush.is_null() {
            self.flush
        } else {
            // SAFETY: `pool` is live (caller's contract)
            let b: *mut ngx_buf_t = unsafe { ngx_pcalloc(pool, std::mem::size_of::<ngx_buf_t>()) }.cast();
            if b.is_null() {
                return None;
            }
            // SAFETY: `b` was just allocated, zeroed: no memory, no tag (the
            // filters' reuse lists drop untagged buffers instead of keeping them)
            unsafe {
                (*b).set_flush(flush as _);
                (*b).set_last_buf(last_buf as _);
                (*b).set_last_in_chain(last_in_chain as _);
            }
            if only_flush {
                self.flush = b;
            }
            b
        };
        // SAFETY: `pool` is live (caller's contract); `b` is a live buffer of this pool
        unsafe { link(pool, b) }
    }

    /// After `out` (a chain from `get`, or null) went to the filters: moves
    /// it to `busy`, and the buffers of `busy` that were sent to `free`.
    ///
    /// # Safety
    /// As for `get`; `out` must not be used by the caller afterwards.
    pub unsafe fn update(&mut self, pool: *mut ngx_pool_t, mut out: *mut ngx_chain_t, tag: ngx_buf_tag_t) {
        // SAFETY: `pool` is the list's request pool and every chain is live (caller's contract)
        unsafe { ngx_chain_update_chains(pool, &mut self.free, &mut self.busy, &mut out, tag) };
    }

    /// Unlinks the smallest free buffer with room for `len` among the first
    /// FIT_SCAN (the first one when none has), if the list has any.
    ///
    /// # Safety
    /// The free list must hold live links and buffers (as `update` leaves it).
    unsafe fn take_best(&mut self, len: usize) -> Option<*mut ngx_chain_t> {
        if self.free.is_null() {
            return None;
        }
        let mut best: *mut *mut ngx_chain_t = ptr::null_mut();
        let mut best_cap = usize::MAX;
        let mut link: *mut *mut ngx_chain_t = &mut self.free;
        for _ in 0..FIT_SCAN {
            // SAFETY: `link` points at `self.free` or at the `next` of a live free link
            let cl = unsafe { *link };
            if cl.is_null() {
                break;
            }
            // SAFETY: `cl` is a live free link with a live buffer
            let cap = unsafe { capacity((*cl).buf) };
            if cap >= len && cap < best_cap {
                best = link;
                best_cap = cap;
                if cap == len {
                    break;
                }
            }
            // SAFETY: `cl` is a live free link
            link = unsafe { &mut (*cl).next };
        }
        if best.is_null() {
            best = &mut self.free;
        }
        // SAFETY: `best` points at `self.free` (non-null) or a live link's `next`, set above
        let cl = unsafe { *best };
        // SAFETY: `cl` is the live link at `*best`; unlinking it keeps the list well formed
        unsafe {
            *best = (*cl).next;
        }
        Some(cl)
    }
}

/// The memory a buffer owns, in bytes.
///
/// # Safety
/// `b` must be a live buffer.
unsafe fn capacity(b: *const ngx_buf_t) -> usize {
    // SAFETY: `b` is a live buffer (caller's contract)
    if unsafe { (*b).start.is_null() } {
        0
    } else {
        // SAFETY: `b` is a live buffer (caller's contract)
        (unsafe { (*b).end.offset_from((*b).start) }) as usize
    }
}

/// A new one-link chain with a buffer of `len` bytes (a zeroed one without
/// memory for 0), tagged `tag`.
///
/// # Safety
/// `pool` must be a live pool.
unsafe fn new_chain(pool: *mut ngx_pool_t, len: usize, tag: ngx_buf_tag_t) -> Option<*mut ngx_chain_t> {
    let b: *mut ngx_buf_t = if len == 0 {
        // SAFETY: `pool` is live (caller's contract)
        (unsafe { ngx_pcalloc(pool, std::mem::size_of::<ngx_buf_t>()) }) as *mut ngx_buf_t
    } else {
        // SAFETY: `pool` is live (caller's contract)
        unsafe { ngx_create_temp_buf(pool, len) }
    };
    if b.is_null() {
        return None;
    }
    // SAFETY: `b` was just allocated and checked non-null
    unsafe {
        (*b).tag = tag;
    }
    // SAFETY: `pool` is live (caller's contract); `b` was just allocated
    unsafe { link(pool, b) }
}

/// A new one-link chain (from `pool`) holding buffer `b`.
///
/// # Safety
/// `pool` must be a live pool and `b` a live buffer.
pub unsafe fn link(pool: *mut ngx_pool_t, b: *mut ngx_buf_t) -> Option<*mut ngx_chain_t> {
    // SAFETY: `pool` is live (caller's contract)
    let cl = unsafe { ngx_alloc_chain_link(pool) };
    if cl.is_null() {
        return None;
    }
    // SAFETY: `cl` was just allocated and checked non-null
    unsafe {
        (*cl).buf = b;
        (*cl).next = ptr::null_mut();
    }
    Some(cl)
}
