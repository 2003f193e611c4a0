//! Buffers and chains in a request's pool.

use nginx_sys::{ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_create_temp_buf, ngx_pcalloc, ngx_pool_t};

/// A one-link chain holding a pool copy of `data` (an empty, flagged
/// buffer when `data` is empty).
///
/// # Safety
/// `pool` must be a live pool.
pub unsafe fn chain_from_bytes(pool: *mut ngx_pool_t, data: &[u8]) -> Option<*mut ngx_chain_t> {
    chain_from_parts(pool, &[data])
}

/// A one-link chain holding a pool copy of `parts`, concatenated.
///
/// # Safety
/// `pool` must be a live pool.
pub unsafe fn chain_from_parts(pool: *mut ngx_pool_t, parts: &[&[u8]]) -> Option<*mut ngx_chain_t> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let b: *mut ngx_buf_t = if len == 0 {
        ngx_pcalloc(pool, std::mem::size_of::<ngx_buf_t>()) as *mut ngx_buf_t
    } else {
        ngx_create_temp_buf(pool, len)
    };
    if b.is_null() {
        return None;
    }
    for p in parts {
        std::ptr::copy_nonoverlapping(p.as_ptr(), (*b).last, p.len());
        (*b).last = (*b).last.add(p.len());
    }
    let cl = ngx_alloc_chain_link(pool);
    if cl.is_null() {
        return None;
    }
    (*cl).buf = b;
    (*cl).next = std::ptr::null_mut();
    Some(cl)
}

/// Does the buffer hold its data in memory (not only in a file)?
///
/// # Safety
/// `b` must be a live buffer.
pub unsafe fn in_memory(b: *const ngx_buf_t) -> bool {
    (*b).temporary() != 0 || (*b).memory() != 0 || (*b).mmap() != 0
}

/// Marks the buffer's data as sent, so that its producer may reuse it.
///
/// # Safety
/// `b` must be a live buffer.
pub unsafe fn consume(b: *mut ngx_buf_t) {
    (*b).pos = (*b).last;
    (*b).file_pos = (*b).file_last;
}
