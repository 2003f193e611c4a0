//! nginx header lists (`ngx_list_t` of `ngx_table_elt_t`).

use std::ptr;

use nginx_sys::{
    ngx_hash_key, ngx_list_push, ngx_list_t, ngx_pnalloc, ngx_pool_t, ngx_str_t, ngx_table_elt_t,
};

/// A filter over a set of header names by length and first letter
/// (`name_filter`): most names Lua code sets are none of the few nginx
/// keeps more about, and `may_be` rules them out without comparing names.
const fn name_bit(len: usize, first: u8) -> u64 {
    // `| 0x20` makes a letter lower case and leaves equal bytes equal.
    1 << ((len * 7 + (first | 0x20) as usize) & 63)
}

/// The filter of `names` (lower case), for [`may_be`].
pub const fn name_filter(names: &[&[u8]]) -> u64 {
    let (mut m, mut i) = (0, 0);
    while i < names.len() {
        m |= name_bit(names[i].len(), names[i][0]);
        i += 1;
    }
    m
}

/// False when `name`, in any case, is none of the names of `filter`.
#[inline]
pub fn may_be(filter: u64, name: &[u8]) -> bool {
    name.first()
        .is_some_and(|&c| filter & name_bit(name.len(), c) != 0)
}

/// Copies bytes into `pool`.
///
/// # Safety
/// `pool` must be live.
pub unsafe fn pool_str(pool: *mut ngx_pool_t, b: &[u8]) -> Option<ngx_str_t> {
    if b.is_empty() {
        return Some(ngx_str_t {
            len: 0,
            data: c"".as_ptr() as *mut u8,
        });
    }
    // SAFETY: `pool` is live (caller's contract)
    let p = unsafe { ngx_pnalloc(pool, b.len()) } as *mut u8;
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` has b.len() fresh bytes, apart from `b`
    unsafe { ptr::copy_nonoverlapping(b.as_ptr(), p, b.len()) };
    Some(ngx_str_t {
        len: b.len(),
        data: p,
    })
}

/// Every element of a header list, in order (see `list::Elts`).
///
/// # Safety
/// As `list::elts`: a live, initialised list of `ngx_table_elt_t`, not
/// changed while the iterator is used.
pub unsafe fn elts(list: *mut ngx_list_t) -> super::list::Elts<ngx_table_elt_t> {
    // SAFETY: the caller's contract is `list::elts`'s
    unsafe { super::list::elts(list) }
}

/// Whether the element's key is `name` (ASCII case-insensitive).
///
/// # Safety
/// `h` must be a live element.
pub unsafe fn key_is(h: *const ngx_table_elt_t, name: &[u8]) -> bool {
    // SAFETY: `h` is a live element (caller's contract)
    unsafe { (*h).key.as_bytes().eq_ignore_ascii_case(name) }
}

/// The element's lower-cased name, as nginx's request parser and `fill`
/// keep it beside the name; None where a module left it unset.
///
/// # Safety
/// `h` must be a live element.
pub unsafe fn lowcase_key<'a>(h: *const ngx_table_elt_t) -> Option<&'a [u8]> {
    // SAFETY: `h` is a live element (caller's contract)
    let (p, len) = unsafe { ((*h).lowcase_key, (*h).key.len) };
    // SAFETY: a set lowcase_key holds the name's key.len bytes
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, len) })
}

/// Fills a header element with pool copies of `key` and `value`, its
/// lower-cased key and nginx's hash of that key (modules such as proxy look
/// headers up by it).
///
/// # Safety
/// `pool` must be live and `h` valid for writes.
pub unsafe fn fill(pool: *mut ngx_pool_t, h: *mut ngx_table_elt_t, key: &[u8], value: &[u8]) -> Option<()> {
    // SAFETY: `pool` is live (caller's contract)
    let k = unsafe { pool_str(pool, key) }?;
    // SAFETY: `pool` is live (caller's contract)
    let v = unsafe { pool_str(pool, value) }?;
    // SAFETY: `pool` is live (caller's contract)
    let low = unsafe { ngx_pnalloc(pool, key.len().max(1)) } as *mut u8;
    if low.is_null() {
        return None;
    }
    for (i, c) in key.iter().enumerate() {
        // SAFETY: `low` has key.len() bytes and i < key.len()
        unsafe {
            *low.add(i) = c.to_ascii_lowercase();
        }
    }
    // SAFETY: `h` is valid for writes (caller's contract); `low` holds key.len() bytes
    unsafe {
        (*h).key = k;
        (*h).value = v;
        (*h).lowcase_key = low;
        (*h).hash = ngx_hash_key(low, key.len()).max(1);
        super::ngx_version::clear_next(h);
    }
    Some(())
}

/// Appends a header to `list`.
///
/// # Safety
/// `pool` and `list` must be live.
pub unsafe fn push(
    pool: *mut ngx_pool_t,
    list: *mut ngx_list_t,
    key: &[u8],
    value: &[u8],
) -> Option<*mut ngx_table_elt_t> {
    // SAFETY: `list` is a live header list (caller's contract)
    let h = unsafe { ngx_list_push(list) } as *mut ngx_table_elt_t;
    if h.is_null() {
        return None;
    }
    // SAFETY: `pool` is live and `h` the element just pushed
    (unsafe { fill(pool, h, key, value) })?;
    Some(h)
}
