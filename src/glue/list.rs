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
