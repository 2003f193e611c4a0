//! nginx lists (`ngx_list_t`): header lists of requests.

use nginx_sys::{ngx_list_part_t, ngx_list_push, ngx_list_t, ngx_palloc, ngx_pool_t, ngx_table_elt_t};

/// The elements of `list`, in order.
///
/// # Safety
/// `list` must be a live, initialised list of `T`.
pub unsafe fn elts<T>(list: *const ngx_list_t) -> Vec<*mut T> {
    let mut out = Vec::new();
    let mut part: *const ngx_list_part_t = &(*list).part;
    while !part.is_null() {
        let e = (*part).elts as *mut T;
        for i in 0..(*part).nelts {
            out.push(e.add(i));
        }
        part = (*part).next;
    }
    out
}

/// Makes `*slot` a fresh, empty header list (in place: the list points
/// into itself).
///
/// # Safety
/// `pool` must be live; `slot` must be valid for writes.
pub unsafe fn init_headers(pool: *mut ngx_pool_t, slot: *mut ngx_list_t) -> bool {
    let n = 20;
    let size = std::mem::size_of::<ngx_table_elt_t>();
    let elts = ngx_palloc(pool, n * size);
    if elts.is_null() {
        return false;
    }
    (*slot).part.elts = elts;
    (*slot).part.nelts = 0;
    (*slot).part.next = std::ptr::null_mut();
    (*slot).last = &mut (*slot).part;
    (*slot).size = size;
    (*slot).nalloc = n;
    (*slot).pool = pool;
    true
}

/// Appends a header element to `list`.
///
/// # Safety
/// `list` must be a live header list.
pub unsafe fn push_header(list: *mut ngx_list_t, h: ngx_table_elt_t) -> *mut ngx_table_elt_t {
    let p = ngx_list_push(list) as *mut ngx_table_elt_t;
    if !p.is_null() {
        std::ptr::write(p, h);
    }
    p
}

/// Where an element sits in a list: its part and its index there.
pub type Slot = (*mut ngx_list_part_t, usize);

/// Every element of `list` for which `keep` is true, as slots, in order.
///
/// # Safety
/// `list` must be a live, initialised list of `T`.
pub unsafe fn find<T>(list: *mut ngx_list_t, mut keep: impl FnMut(*mut T) -> bool) -> Vec<Slot> {
    let mut out = Vec::new();
    let mut part: *mut ngx_list_part_t = &mut (*list).part;
    while !part.is_null() {
        let e = (*part).elts as *mut T;
        for i in 0..(*part).nelts {
            if keep(e.add(i)) {
                out.push((part, i));
            }
        }
        part = (*part).next;
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
        remove_one(list, part, i)?;
    }
    Some(())
}

unsafe fn remove_one(list: *mut ngx_list_t, part: *mut ngx_list_part_t, i: usize) -> Option<()> {
    let size = (*list).size;
    let first: *mut ngx_list_part_t = &mut (*list).part;
    let is_last = (*list).last == part;
    if i > 0 && i + 1 < (*part).nelts {
        // In the middle: the elements after it become a part of their own.
        let tail = ngx_palloc((*list).pool, std::mem::size_of::<ngx_list_part_t>()) as *mut ngx_list_part_t;
        if tail.is_null() {
            return None;
        }
        (*tail).elts = ((*part).elts as *mut u8).add((i + 1) * size).cast();
        (*tail).nelts = (*part).nelts - i - 1;
        (*tail).next = (*part).next;
        (*part).nelts = i;
        (*part).next = tail;
        if is_last {
            (*list).last = tail;
            (*list).nalloc = (*tail).nelts;
        }
        return Some(());
    }
    if i > 0 {
        // The last element of its part.
        (*part).nelts -= 1;
        if is_last {
            (*list).nalloc -= 1;
        }
        return Some(());
    }
    // The first element of its part.
    if (*part).nelts > 1 {
        (*part).elts = ((*part).elts as *mut u8).add(size).cast();
        (*part).nelts -= 1;
        if is_last {
            (*list).nalloc -= 1;
        }
        return Some(());
    }
    // Its part's only element: the part goes.
    if part == first {
        let next = (*part).next;
        if next.is_null() {
            (*part).nelts = 0;
        } else {
            *part = *next;
            if (*list).last == next {
                (*list).last = part;
                (*list).nalloc = (*part).nelts;
            }
        }
        return Some(());
    }
    let mut prev = first;
    while (*prev).next != part {
        prev = (*prev).next;
        if prev.is_null() {
            return None;
        }
    }
    (*prev).next = (*part).next;
    if is_last {
        (*list).last = prev;
        (*list).nalloc = (*prev).nelts;
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
    let last = (*list).last;
    if (*last).nelts == (*list).nalloc && (*list).nalloc < min {
        let part = ngx_palloc((*list).pool, std::mem::size_of::<ngx_list_part_t>()) as *mut ngx_list_part_t;
        let elts = ngx_palloc((*list).pool, min * (*list).size);
        if part.is_null() || elts.is_null() {
            return std::ptr::null_mut();
        }
        (*part).elts = elts;
        (*part).nelts = 0;
        (*part).next = std::ptr::null_mut();
        (*last).next = part;
        (*list).last = part;
        (*list).nalloc = min;
    }
    ngx_list_push(list)
}
