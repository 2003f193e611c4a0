//! The one place where the nginx versions we build for differ in API
//! (Debian 12's 1.22 and 1.28; build.rs sets the `cfg`s from the version
//! nginx-sys found).
//!
//! `ngx_header_chains` (nginx ≥ 1.23.0): every `ngx_table_elt_t` has a `next`
//! pointer, and nginx links all headers of one name through it: the
//! dedicated fields (`headers_in.host`, `.x_forwarded_for`, `.cookie`,
//! `headers_out.cache_control`, `.link`, ...) point at the first and the
//! others follow. Before, a dedicated field held the first header only, and
//! Cookie, X-Forwarded-For, Cache-Control and Link were arrays of pointers
//! (`cookies`, `x_forwarded_for`, `cache_control`, `link`).

use nginx_sys::{ngx_http_headers_in_t, ngx_http_headers_out_t, ngx_pool_t, ngx_str_t, ngx_table_elt_t};

/// The request headers nginx keeps all of (not only the first).
#[derive(Clone, Copy)]
pub enum InMulti {
    Cookie,
    XForwardedFor,
}

/// The response headers nginx keeps all of (not only the first).
#[derive(Clone, Copy)]
pub enum OutMulti {
    CacheControl,
    Link,
}

/// A new header element (nothing linked after it).
pub fn table_elt(hash: usize, key: ngx_str_t, value: ngx_str_t, lowcase_key: *mut u8) -> ngx_table_elt_t {
    ngx_table_elt_t {
        hash,
        key,
        value,
        lowcase_key,
        #[cfg(ngx_header_chains)]
        next: std::ptr::null_mut(),
    }
}

/// Marks a freshly pushed element (`ngx_list_push` leaves it uninitialised)
/// as linking to nothing.
///
/// # Safety
/// `h` must be a live element.
pub unsafe fn clear_next(h: *mut ngx_table_elt_t) {
    #[cfg(ngx_header_chains)]
    {
        // SAFETY: the caller passes a live element
        unsafe { (*h).next = std::ptr::null_mut() };
    }
    #[cfg(not(ngx_header_chains))]
    let _ = h;
}

/// Points a dedicated header field at `items`, the live headers of its name
/// in list order: the first (or none); with header chains, the others
/// linked after it.
///
/// # Safety
/// `field` and every element of `items` must be live.
pub unsafe fn set_field(field: *mut *mut ngx_table_elt_t, items: &[*mut ngx_table_elt_t]) {
    // SAFETY: the caller passes live elements and a live field
    unsafe {
        link(items);
        *field = items.first().copied().unwrap_or(std::ptr::null_mut());
    }
}

/// Sets one of the request headers nginx keeps all of to `items`.
///
/// # Safety
/// `pool`, `hi` and every element of `items` must be live.
pub unsafe fn set_in_multi(
    pool: *mut ngx_pool_t,
    hi: &mut ngx_http_headers_in_t,
    which: InMulti,
    items: &[*mut ngx_table_elt_t],
) -> Option<()> {
    #[cfg(ngx_header_chains)]
    {
        let _ = pool;
        let field = match which {
            InMulti::Cookie => &mut hi.cookie,
            InMulti::XForwardedFor => &mut hi.x_forwarded_for,
        };
        // SAFETY: the caller passes live elements; the field is hi's
        unsafe { set_field(field, items) };
        Some(())
    }
    #[cfg(not(ngx_header_chains))]
    {
        let a = match which {
            InMulti::Cookie => &mut hi.cookies,
            InMulti::XForwardedFor => &mut hi.x_forwarded_for,
        };
        // SAFETY: the caller passes a live pool and elements; the array is hi's
        unsafe { set_ptr_array(pool, a, items) }
    }
}

/// Empties the request headers nginx keeps all of (Cookie,
/// X-Forwarded-For) without touching what they pointed to: for a struct
/// copy of another request's headers.
pub fn forget_in_multi(hi: &mut ngx_http_headers_in_t) {
    #[cfg(ngx_header_chains)]
    {
        hi.cookie = std::ptr::null_mut();
        hi.x_forwarded_for = std::ptr::null_mut();
    }
    #[cfg(not(ngx_header_chains))]
    {
        // SAFETY: an all-zero ngx_array_t is the "not initialised" state
        // set_ptr_array expects.
        unsafe {
            hi.cookies = std::mem::zeroed();
            hi.x_forwarded_for = std::mem::zeroed();
        }
    }
}

/// Sets one of the response headers nginx keeps all of to `items`.
///
/// # Safety
/// `pool`, `ho` and every element of `items` must be live.
pub unsafe fn set_out_multi(
    pool: *mut ngx_pool_t,
    ho: &mut ngx_http_headers_out_t,
    which: OutMulti,
    items: &[*mut ngx_table_elt_t],
) -> Option<()> {
    #[cfg(ngx_header_chains)]
    {
        let _ = pool;
        let field = match which {
            OutMulti::CacheControl => &mut ho.cache_control,
            OutMulti::Link => &mut ho.link,
        };
        // SAFETY: the caller passes live elements; the field is ho's
        unsafe { set_field(field, items) };
        Some(())
    }
    #[cfg(not(ngx_header_chains))]
    {
        let a = match which {
            OutMulti::CacheControl => &mut ho.cache_control,
            OutMulti::Link => &mut ho.link,
        };
        // SAFETY: the caller passes a live pool and elements; the array is ho's
        unsafe { set_ptr_array(pool, a, items) }
    }
}

/// Links `items` in order through `next` (the last to nothing).
unsafe fn link(items: &[*mut ngx_table_elt_t]) {
    #[cfg(ngx_header_chains)]
    for (i, &h) in items.iter().enumerate() {
        // SAFETY: the caller passes live elements
        unsafe { (*h).next = items.get(i + 1).copied().unwrap_or(std::ptr::null_mut()) };
    }
    #[cfg(not(ngx_header_chains))]
    let _ = items;
}

/// Resets an array of `ngx_table_elt_t *` (nginx before 1.23) to hold `items`.
///
/// # Safety
/// `pool` and `a` must be live; `a` is either zeroed or such an array.
#[cfg(not(ngx_header_chains))]
unsafe fn set_ptr_array(
    pool: *mut ngx_pool_t,
    a: *mut nginx_sys::ngx_array_t,
    items: &[*mut ngx_table_elt_t],
) -> Option<()> {
    use std::mem::size_of;
    // SAFETY: the caller passes a live pool and a zeroed or initialised array
    unsafe {
        if (*a).elts.is_null() {
            if items.is_empty() {
                return Some(());
            }
            let n = items.len().max(2);
            let e = nginx_sys::ngx_palloc(pool, n * size_of::<*mut ngx_table_elt_t>());
            if e.is_null() {
                return None;
            }
            (*a).elts = e;
            (*a).nalloc = n;
            (*a).size = size_of::<*mut ngx_table_elt_t>();
            (*a).pool = pool;
        }
        (*a).nelts = 0;
        for &h in items {
            let slot = nginx_sys::ngx_array_push(a) as *mut *mut ngx_table_elt_t;
            if slot.is_null() {
                return None;
            }
            *slot = h;
        }
    }
    Some(())
}

/// A configuration context for nginx's `ngx_ssl_*` configuration helpers
/// (`ngx_ssl_trusted_certificate`, `ngx_ssl_crl`, `ngx_ssl_certificate`)
/// called at run time in a worker, where only the cycle, its pool and log
/// are there. Since nginx 1.27.2 these go through the SSL object cache, which
/// also reads `cf->cycle->old_cycle->conf_ctx`, and a running cycle's
/// `old_cycle` is NULL: so `cf.cycle` is a copy of the cycle whose
/// `old_cycle` is an empty cycle (no old cache to inherit from). The copy
/// shares the cycle's configuration, pool and log, so the cache entries still
/// land in the live cycle's cache. Harmless for the older versions.
pub struct RuntimeConf {
    pub cf: nginx_sys::ngx_conf_t,
    _cycle: Box<nginx_sys::ngx_cycle_t>,
    _old: Box<nginx_sys::ngx_cycle_t>,
}

impl RuntimeConf {
    /// # Safety
    /// `cycle` must be the live cycle; the result must not outlive it.
    pub unsafe fn new(cycle: *mut nginx_sys::ngx_cycle_t) -> Box<RuntimeConf> {
        use std::mem::MaybeUninit;
        // SAFETY: all-zero is a valid ngx_cycle_t/ngx_conf_t (pointers NULL,
        // counts 0), as nginx's own ngx_pcalloc'ed ones start out
        let mut old: Box<nginx_sys::ngx_cycle_t> = Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        // SAFETY: the caller passes the live cycle; a bitwise copy shares its
        // pointers and is never freed through
        let mut copy: Box<nginx_sys::ngx_cycle_t> = Box::new(unsafe { std::ptr::read(cycle) });
        copy.old_cycle = &mut *old;
        // SAFETY: as above
        let mut cf: nginx_sys::ngx_conf_t = unsafe { MaybeUninit::zeroed().assume_init() };
        cf.cycle = &mut *copy;
        // SAFETY: the caller passes the live cycle
        unsafe {
            cf.pool = (*cycle).pool;
            cf.temp_pool = (*cycle).pool;
            cf.log = (*cycle).log;
        }
        Box::new(RuntimeConf {
            cf,
            _cycle: copy,
            _old: old,
        })
    }
}

/// Records the certificate `ssl_certificate_by_lua` set on a connection
/// where nginx's `$ssl_server_*` variables look for it: an SSL ex_data slot
/// before nginx 1.27, OpenSSL's own certificate (nothing to do) since.
/// False when OpenSSL refused.
///
/// # Safety
/// `ssl` and `x509` must be live OpenSSL objects.
pub unsafe fn note_server_certificate(ssl: *mut nginx_sys::SSL, x509: *mut nginx_sys::X509) -> bool {
    #[cfg(ngx_ssl_certificate_index)]
    // SAFETY: per the contract above; the slot holds a borrowed pointer, as
    // nginx's own code stores it.
    return unsafe {
        nginx_sys::SSL_set_ex_data(ssl, nginx_sys::ngx_ssl_certificate_index, x509.cast()) != 0
    };
    #[cfg(not(ngx_ssl_certificate_index))]
    {
        let _ = (ssl, x509);
        true
    }
}
