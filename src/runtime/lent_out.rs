//! Lua strings lent to nginx as output buffers.
//!
//! body_filter_by_lua's result is usually one Lua string, often as large as
//! the chunk it replaces. Copying it into a pool buffer costs a pass over
//! every byte of the body; instead the buffer can point at the string's own
//! bytes (LuaJIT never moves a string) while a registry reference keeps the
//! string alive. nginx's rule for buffers makes this safe: a filter that
//! still needs a buffer's data leaves it unconsumed (`pos < last`, the rule
//! `ngx_chain_update_chains` and our own buffer reuse rely on), so once
//! `pos == last` the string may go. The buffer is flagged `memory` (data
//! that must not be written to), so no filter changes the Lua string.
//!
//! A request has a few slots: when all hold strings still in flight (a slow
//! client), the caller copies as before. The references are dropped when
//! their buffers are found sent, and all of them when the request ends.

use std::ffi::c_int;
use std::ptr;

use nginx_sys::{ngx_buf_t, ngx_pcalloc, ngx_pool_t};

use crate::lua::{ffi, lua_State};

/// Below this size a copy costs less than the reference and its release.
pub const LEND_MIN: usize = 2048;

/// Strings a request may have in flight at once before it copies again:
/// nginx holds back a producer whose output is not sent yet, so a few
/// suffice for streaming.
const SLOTS: usize = 4;

/// Tags lent buffers: never ours to reuse through a `BufList`, whose tag
/// differs (its reuse would write into, or free, the Lua string).
static TAG: u8 = 0;

#[derive(Clone, Copy)]
struct Slot {
    /// The buffer struct, from the request pool, reused across lends.
    buf: *mut ngx_buf_t,
    /// The registry reference keeping the string alive; LUA_NOREF when
    /// the slot is free.
    anchor: c_int,
}

pub struct LentBufs {
    slots: [Slot; SLOTS],
}

impl Default for LentBufs {
    fn default() -> Self {
        LentBufs {
            slots: [Slot {
                buf: ptr::null_mut(),
                anchor: ffi::LUA_NOREF,
            }; SLOTS],
        }
    }
}

impl LentBufs {
    /// A buffer over the bytes of the Lua string on top of `l`'s stack,
    /// which this pops and keeps alive until nginx has sent them. `None`
    /// (the string left on the stack) when every slot is in flight or the
    /// pool is out of memory: the caller copies the data then.
    ///
    /// # Safety
    /// `l` must be the state of the VM the request's Lua code runs in, with
    /// a string on top; `pool` the request's live pool.
    pub unsafe fn lend(&mut self, l: *mut lua_State, pool: *mut ngx_pool_t) -> Option<*mut ngx_buf_t> {
        // SAFETY: the caller's contract: the request's VM state
        unsafe { self.reclaim(l) };
        let slot = self.slots.iter_mut().find(|s| s.anchor == ffi::LUA_NOREF)?;
        if slot.buf.is_null() {
            // SAFETY: `pool` is the request's live pool (caller's contract)
            slot.buf = unsafe { ngx_pcalloc(pool, std::mem::size_of::<ngx_buf_t>()) }.cast();
            if slot.buf.is_null() {
                return None;
            }
        }
        let mut len = 0usize;
        // SAFETY: a string is on top (caller's contract): no conversion, no raise
        let p = unsafe { ffi::lua_tolstring(l, -1, &mut len) } as *mut u8;
        let b = slot.buf;
        // SAFETY: `b` is our live pool buffer struct, not in flight (its slot is free);
        // `p` has `len` bytes, alive while the reference below holds the string
        unsafe {
            ptr::write_bytes(b, 0, 1);
            (*b).start = p;
            (*b).pos = p;
            (*b).last = p.add(len);
            (*b).end = p.add(len);
            (*b).set_memory(1);
            (*b).tag = &TAG as *const u8 as *mut _;
        }
        // SAFETY: the caller's contract: the request's VM state with the string on top,
        // which luaL_ref pops (it allocates only when the registry grows)
        slot.anchor = unsafe { ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX) };
        Some(b)
    }

    /// Drops the strings whose buffers nginx has sent.
    ///
    /// # Safety
    /// `l` must be the state of the VM the references were taken in.
    pub unsafe fn reclaim(&mut self, l: *mut lua_State) {
        for s in self.slots.iter_mut() {
            // SAFETY: a slot with an anchor has a live pool buffer struct
            if s.anchor != ffi::LUA_NOREF && unsafe { (*s.buf).pos == (*s.buf).last } {
                // SAFETY: the reference was taken in `l`'s VM (caller's contract)
                unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, s.anchor) };
                s.anchor = ffi::LUA_NOREF;
            }
        }
    }

    /// Drops every string: the request is over, nginx holds none of its
    /// buffers any more.
    ///
    /// # Safety
    /// As for [`LentBufs::reclaim`].
    pub unsafe fn release_all(&mut self, l: *mut lua_State) {
        for s in self.slots.iter_mut() {
            if s.anchor != ffi::LUA_NOREF {
                // SAFETY: the reference was taken in `l`'s VM (caller's contract)
                unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, s.anchor) };
                s.anchor = ffi::LUA_NOREF;
            }
        }
    }

    /// Whether any string is lent now.
    pub fn any(&self) -> bool {
        self.slots.iter().any(|s| s.anchor != ffi::LUA_NOREF)
    }
}
