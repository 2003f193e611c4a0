//! nginx lists (`ngx_list_t`): header lists of requests.

use std::marker::PhantomData;

use nginx_sys::{ngx_list_part_t, ngx_list_push, ngx_list_t, ngx_palloc, ngx_pool_t, ngx_table_elt_t};

/// The elements of a list, in order, as pointers: a walk over its parts
/// in place, with nothing copied or allocated (request paths use it).
/// Unlike ngx's `NgxListIterator`, which yields header key/value pairs, it
/// gives the element itself, for any element type; callers that skip
/// deleted headers (`hash == 0`) check that themselves.
pub struct Elts<T> {
    part: *const ngx_list_part_t,
    i: usize,
    _elt: PhantomData<*mut T>,
}

/// The elements of `list`, in order.
///
/// # Safety
/// `list` must be a live, initialised list of `T`, and stay live, with no
/// element added or removed, while the iterator is used.
pub unsafe fn elts<T>(list: *const ngx_list_t) -> Elts<T> {
    Elts {
        // SAFETY: `list` is live and initialised (caller's contract)
        part: unsafe { &raw const (*list).part },
        i: 0,
        _elt: PhantomData,
    }
}

impl<T> Iterator for Elts<T> {
    type Item = *mut T;

    fn next(&mut self) -> Option<*mut T> {
        while !self.part.is_null() {
            // SAFETY: `part` is a live part of the list (the first, or a
            // `next` of one; `elts`' contract keeps them so)
            let (e, nelts, next) =
                unsafe { ((*self.part).elts as *mut T, (*self.part).nelts, (*self.part).next) };
            if self.i < nelts {
                self.i += 1;
                // SAFETY: i - 1 < nelts: within the part's element array
                return Some(unsafe { e.add(self.i - 1) });
            }
            self.part = next;
            self.i = 0;
        }
        None
    }
}

/// Makes `*slot` a fresh, empty header list (in place: the list points
/// into itself).
///
/// # Safety
/// `pool` must be live; `slot` must be valid for writes.
pub unsafe fn init_headers(pool: *mut ngx_pool_t, slot: *mut ngx_list_t) -> bool {
    let n = 20;
    let size = std::mem::size_of::<ngx_table_elt_t>();
    // SAFETY: `pool` is live (caller's contract)
    let elts = unsafe { ngx_palloc(pool, n * size) };
    if elts.is_null() {
        return false;
    }
    // SAFETY: `slot` is valid for writes (caller's contract); `elts` holds n elements
    unsafe {
        (*slot).part.elts = elts;
        (*slot).part.nelts = 0;
        (*slot).part.next = std::ptr::null_mut();
        (*slot).last = &mut (*slot).part;
        (*slot).size = size;
        (*slot).nalloc = n;
    }
    // SAFETY: `slot` is valid for writes (caller's contract)
    unsafe {
        (*slot).pool = pool;
    }
    true
}

/// Appends a header element to `list`.
///
/// # Safety
/// `list` must be a live header list.
pub unsafe fn push_header(list: *mut ngx_list_t, h: ngx_table_elt_t) -> *mut ngx_table_elt_t {
    // SAFETY: `list` is a live header list (caller's contract)
    let p = unsafe { ngx_list_push(list) } as *mut ngx_table_elt_t;
    if !p.is_null() {
        // SAFETY: `p` is the fresh, non-null element slot ngx_list_push returned
        unsafe { std::ptr::write(p, h) };
    }
    p
}

/// Where an element sits in a list: its part and its index there.
pub type Slot = (*mut ngx_list_part_t, usize);

/// Slots found by [`find`]: on the stack for the few a header name has.
pub type Slots = smallvec::SmallVec<[Slot; 4]>;

/// Every element of `list` for which `keep` is true, as slots, in order.
///
/// # Safety
/// `list` must be a live, initialised list of `T`.
pub unsafe fn find<T>(list: *mut ngx_list_t, mut keep: impl FnMut(*mut T) -> bool) -> Slots {
    let mut out = Slots::new();
    // SAFETY: `list` is live and initialised (caller's contract)
    let mut part: *mut ngx_list_part_t = unsafe { &mut (*list).part };
    while !part.is_null() {
        // SAFETY: `part` is a live part of the list (the first, or a `next` of one)
        let e = unsafe { (*part).elts } as *mut T;
        // SAFETY: `part` is a live part of the list
        for i in 0..unsafe { (*part).nelts } {
            // SAFETY: i < nelts: within the part's element array
            if keep(unsafe { e.add(i) }) {
                out.push((part, i));
            }
        }
        // SAFETY: `part` is a live part of the list
        part = unsafe { (*part).next };
    }
    out
}

/// Removes the elements at `slots` (in list order, as `find` gives them)
/// without moving any other element, so pointers to those stay valid, as
/// lua-nginx-module removes request headers: a part loses its first or last
/// element, or is split in two around a middle one. No part but the list's
/// first is ever left empty (nginx's list walkers read one element of each
/// part they step into), and the last part's free room (`nalloc`) only
/// shrinks. Works from the end so earlier slots stay where they are.
///
/// # Safety
/// `list` must be a live list; `slots` must be distinct live slots of it.
pub unsafe fn remove(list: *mut ngx_list_t, slots: &[Slot]) -> Option<()> {
    for &(part, i) in slots.iter().rev() {
        // SAFETY: the slots are distinct live slots of the live `list` (caller's contract); removing from the back keeps the earlier ones valid
        (unsafe { remove_one(list, part, i) })?;
    }
    Some(())
}

unsafe fn remove_one(list: *mut ngx_list_t, part: *mut ngx_list_part_t, i: usize) -> Option<()> {
    // SAFETY: `list` is live (remove's contract)
    let size = unsafe { (*list).size };
    // SAFETY: `list` is live (remove's contract)
    let first: *mut ngx_list_part_t = unsafe { &mut (*list).part };
    // SAFETY: `list` is live (remove's contract)
    let is_last = unsafe { (*list).last } == part;
    // SAFETY: (part, i) is a live slot of the list (remove's contract)
    if i > 0 && i + 1 < unsafe { (*part).nelts } {
        // In the middle: the elements after it become a part of their own.
        // SAFETY: the list's pool lives as long as the list
        let tail = unsafe { ngx_palloc((*list).pool, std::mem::size_of::<ngx_list_part_t>()) }
            as *mut ngx_list_part_t;
        if tail.is_null() {
            return None;
        }
        // SAFETY: i + 1 < nelts, so the tail elements lie inside the part's array
        unsafe {
            (*tail).elts = ((*part).elts as *mut u8).add((i + 1) * size).cast();
            (*tail).nelts = (*part).nelts - i - 1;
            (*tail).next = (*part).next;
            (*part).nelts = i;
            (*part).next = tail;
        }
        if is_last {
            // SAFETY: `list` is live and `tail` now its last part
            unsafe {
                (*list).last = tail;
                (*list).nalloc = (*tail).nelts;
            }
        }
        return Some(());
    }
    if i > 0 {
        // The last element of its part.
        // SAFETY: `part` is live and i = nelts - 1 > 0
        unsafe {
            (*part).nelts -= 1;
        }
        if is_last {
            // SAFETY: `list` is live
            unsafe {
                (*list).nalloc -= 1;
            }
        }
        return Some(());
    }
    // The first element of its part.
    // SAFETY: `part` is a live part of the list
    if unsafe { (*part).nelts } > 1 {
        // SAFETY: nelts > 1: the next element is inside the part's array
        unsafe {
            (*part).elts = ((*part).elts as *mut u8).add(size).cast();
            (*part).nelts -= 1;
        }
        if is_last {
            // SAFETY: `list` is live
            unsafe {
                (*list).nalloc -= 1;
            }
        }
        return Some(());
    }
    // Its part's only element: the part goes.
    if part == first {
        // SAFETY: `part` is the list's first part, live
        let next = unsafe { (*part).next };
        if next.is_null() {
            // SAFETY: `part` is live
            unsafe {
                (*part).nelts = 0;
            }
        } else {
            // SAFETY: `next` is a live part; the first part takes its place (it is embedded in the list)
            unsafe {
                *part = *next;
            }
            // SAFETY: `list` is live
            if unsafe { (*list).last } == next {
                // SAFETY: `list` is live and `part` now holds the last part's contents
                unsafe {
                    (*list).last = part;
                    (*list).nalloc = (*part).nelts;
                }
            }
        }
        return Some(());
    }
    let mut prev = first;
    // SAFETY: `prev` walks live parts from the first; a null ends the walk below
    while unsafe { (*prev).next } != part {
        // SAFETY: `prev` is a live part
        prev = unsafe { (*prev).next };
        if prev.is_null() {
            return None;
        }
    }
    // SAFETY: `prev` is the live part before `part`
    unsafe {
        (*prev).next = (*part).next;
    }
    if is_last {
        // SAFETY: `list` is live and `prev` its new last part
        unsafe {
            (*list).last = prev;
            (*list).nalloc = (*prev).nelts;
        }
    }
    Some(())
}

/// `ngx_list_push`, but a full last part is followed by one of at least
/// `min` elements: after removals have made `nalloc` small, appending
/// must not degrade into one part per element.
///
/// # Safety
/// `list` must be a live list.
pub unsafe fn push_room(list: *mut ngx_list_t, min: usize) -> *mut std::ffi::c_void {
    // SAFETY: `list` is live (caller's contract)
    let last = unsafe { (*list).last };
    // SAFETY: `last` is the live last part of the list
    if unsafe { (*last).nelts } == unsafe { (*list).nalloc } && unsafe { (*list).nalloc } < min {
        // SAFETY: the list's pool lives as long as the list
        let part = unsafe { ngx_palloc((*list).pool, std::mem::size_of::<ngx_list_part_t>()) }
            as *mut ngx_list_part_t;
        // SAFETY: the list's pool lives as long as the list
        let elts = unsafe { ngx_palloc((*list).pool, min * (*list).size) };
        if part.is_null() || elts.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `part` and `elts` were allocated and checked; `last` is the live last part
        unsafe {
            (*part).elts = elts;
            (*part).nelts = 0;
            (*part).next = std::ptr::null_mut();
            (*last).next = part;
            (*list).last = part;
            (*list).nalloc = min;
        }
    }
    // SAFETY: `list` is live (caller's contract)
    unsafe { ngx_list_push(list) }
}
