//! Response headers: the `r->headers_out` list plus the fields nginx keeps
//! apart from it (Content-Type, Content-Length, Last-Modified, the pointer
//! fields its header filter consults), kept consistent on every change.

use std::borrow::Cow;

use std::ptr;

use smallvec::SmallVec;

use nginx_sys::{
    ngx_atoof, ngx_http_headers_out_t, ngx_http_request_t, ngx_parse_http_time, ngx_table_elt_t, time_t,
};

use super::headers::{elts, key_is, may_be, name_filter, pool_str, push};
use super::ngx_version::{OutMulti, set_field, set_out_multi};

/// The response headers nginx keeps more about than their list entries
/// (what `set` and `sync_field` compare names with): a pointer field, the
/// content type or length, the chains of Cache-Control and Link, the time
/// of Last-Modified.
const SPECIAL: [&[u8]; 15] = [
    b"content-type",
    b"content-length",
    b"cache-control",
    b"link",
    b"server",
    b"date",
    b"location",
    b"last-modified",
    b"content-encoding",
    b"refresh",
    b"content-range",
    b"accept-ranges",
    b"www-authenticate",
    b"expires",
    b"etag",
];

/// SPECIAL's filter: most names set are ruled out without comparisons.
const SPECIAL_FILTER: u64 = name_filter(&SPECIAL);

/// The pointer field nginx keeps for a response header.
fn field(h: &mut ngx_http_headers_out_t, name: &[u8]) -> Option<*mut *mut ngx_table_elt_t> {
    // Lower-cased on the stack: no name below is longer than 16 bytes.
    let mut buf = [0u8; 16];
    let low = buf.get_mut(..name.len())?;
    low.copy_from_slice(name);
    low.make_ascii_lowercase();
    Some(match &low[..] {
        b"server" => &mut h.server,
        b"date" => &mut h.date,
        b"content-encoding" => &mut h.content_encoding,
        b"location" => &mut h.location,
        b"refresh" => &mut h.refresh,
        b"last-modified" => &mut h.last_modified,
        b"content-range" => &mut h.content_range,
        b"accept-ranges" => &mut h.accept_ranges,
        b"www-authenticate" => &mut h.www_authenticate,
        b"expires" => &mut h.expires,
        b"etag" => &mut h.etag,
        b"content-length" => &mut h.content_length,
        _ => return None,
    })
}

/// The live values of response header `name`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn get(r: *mut ngx_http_request_t, name: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // SAFETY: the caller's contract
    unsafe { for_each_value(r, name, |v| out.push(v.to_vec())) };
    out
}

/// Calls `f` with each live value of response header `name`, in order,
/// copying nothing but a computed Content-Length or Last-Modified.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn for_each_value(r: *mut ngx_http_request_t, name: &[u8], mut f: impl FnMut(&[u8])) {
    // SAFETY: `r` is a live request (caller's contract); no other reference to headers_out is held
    let ho = unsafe { &mut (*r).headers_out };
    if name.eq_ignore_ascii_case(b"content-type") {
        if ho.content_type.len > 0 {
            f(ho.content_type.as_bytes());
        }
        return;
    }
    if name.eq_ignore_ascii_case(b"content-length") && ho.content_length.is_null() {
        if ho.content_length_n >= 0 {
            f(ho.content_length_n.to_string().as_bytes());
        }
        return;
    }
    // A static file's time is a field until nginx's header filter writes
    // the header line (lua-resty-core reads it from there).
    if name.eq_ignore_ascii_case(b"last-modified") {
        if ho.last_modified_time >= 0 {
            f(&http_time(ho.last_modified_time));
        }
        return;
    }
    // SAFETY: the live request's header list, initialised by nginx
    for h in unsafe { elts(&mut ho.headers) } {
        // SAFETY: `elts` yields live elements of that list
        if unsafe { (*h).hash } != 0 && unsafe { key_is(h, name) } {
            // SAFETY: as above
            f(unsafe { (*h).value.as_bytes() });
        }
    }
}

/// Every live response header as (key, value), Content-Type and a
/// computed Content-Length first.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn all(r: *mut ngx_http_request_t) -> Vec<(Vec<u8>, Vec<u8>)> {
    // SAFETY: `r` is a live request (caller's contract); no other reference to headers_out is held
    let ho = unsafe { &mut (*r).headers_out };
    let mut out = Vec::new();
    // The headers nginx keeps in fields, under the lowercase names
    // lua-nginx-module gives them, before the list.
    if ho.content_type.len > 0 {
        out.push((b"content-type".to_vec(), ho.content_type.as_bytes().to_vec()));
    }
    if ho.content_length.is_null() && ho.content_length_n >= 0 {
        out.push((
            b"content-length".to_vec(),
            ho.content_length_n.to_string().into_bytes(),
        ));
    }
    let connection: &[u8] = if ho.status == nginx_sys::NGX_HTTP_SWITCHING_PROTOCOLS as usize {
        b"upgrade"
    // SAFETY: `r` is a live request; the bit field is read apart from headers_out
    } else if unsafe { (*r).keepalive() } != 0 {
        b"keep-alive"
    } else {
        b"close"
    };
    out.push((b"connection".to_vec(), connection.to_vec()));
    // SAFETY: `r` is a live request; the bit field is read apart from headers_out
    if unsafe { (*r).chunked() } != 0 {
        out.push((b"transfer-encoding".to_vec(), b"chunked".to_vec()));
    }
    // SAFETY: the live request's header list, initialised by nginx
    for h in unsafe { elts(&mut ho.headers) } {
        // SAFETY: `elts` yields live elements of that list
        if unsafe { (*h).hash } != 0 {
            // SAFETY: `elts` yields live elements of that list
            out.push((unsafe { (*h).key.as_bytes().to_vec() }, unsafe {
                (*h).value.as_bytes().to_vec()
            }));
        }
    }
    out
}

/// Why a header could not be set.
pub enum SetError {
    NoMemory,
    Invalid(&'static str),
}

/// Sets (`replace`) or adds response header `name`; no values clears it.
///
/// # Safety
/// `r` must be a live request whose header is not sent yet.
pub unsafe fn set(
    r: *mut ngx_http_request_t,
    name: &[u8],
    values: &[Cow<[u8]>],
    replace: bool,
) -> Result<(), SetError> {
    let special = may_be(SPECIAL_FILTER, name);
    if special && name.eq_ignore_ascii_case(b"content-type") {
        // SAFETY: `r` is a live request whose header is not sent (caller's contract)
        return unsafe { set_content_type(r, values.last().map(|v| &**v)) };
    }
    // SAFETY: `r` is a live request (caller's contract)
    let pool = unsafe { (*r).pool };
    // SAFETY: `r` is a live request (caller's contract); no other reference to headers_out is held
    let ho = unsafe { &mut (*r).headers_out };
    let mut values = values;
    let single = special && name.eq_ignore_ascii_case(b"content-length");
    if single && values.len() > 1 {
        values = &values[values.len() - 1..];
    }
    let length = match (single, values.first()) {
        (true, Some(v)) => {
            // SAFETY: ngx_atoof only reads the v.len() bytes of `v`
            let n = unsafe { ngx_atoof(v.as_ptr() as *mut u8, v.len()) };
            if n < 0 {
                return Err(SetError::Invalid("invalid Content-Length header value"));
            }
            n
        }
        _ => -1,
    };
    let replacing = replace || single || values.is_empty();
    let mut old: *mut ngx_table_elt_t = ptr::null_mut();
    if replacing {
        // SAFETY: the live request's header list, initialised by nginx
        for h in unsafe { elts(&mut ho.headers) } {
            // SAFETY: `elts` yields live elements of that list
            if unsafe { (*h).hash } != 0 && unsafe { key_is(h, name) } {
                // SAFETY: `h` is a live element; hash 0 marks it removed for nginx
                unsafe {
                    (*h).hash = 0;
                }
                if old.is_null() {
                    old = h;
                }
            }
        }
    }
    for v in values {
        // SAFETY: `pool` is the request's pool, the list its live header list
        (unsafe { push(pool, &mut ho.headers, name, v) }).ok_or(SetError::NoMemory)?;
    }
    if single {
        ho.content_length_n = length;
    }
    if !special {
        return Ok(());
    }
    // SAFETY: `r` is live and `old` null or an element of its list
    unsafe { sync_field(r, name, old) }
}

/// Points nginx's dedicated field for `name` at its first live element.
/// A removed Server or Date keeps pointing at its dead element, so that
/// nginx does not add its own (as lua-nginx-module behaves).
unsafe fn sync_field(
    r: *mut ngx_http_request_t,
    name: &[u8],
    old: *mut ngx_table_elt_t,
) -> Result<(), SetError> {
    // SAFETY: `r` is a live request (set's contract)
    let pool = unsafe { (*r).pool };
    // SAFETY: `r` is a live request; no other reference to headers_out is held
    let ho = unsafe { &mut (*r).headers_out };
    // SAFETY: the live request's header list, initialised by nginx
    let live: SmallVec<[*mut ngx_table_elt_t; 2]> = unsafe { elts(&mut ho.headers) }
        // SAFETY: `elts` yields live elements of that list
        .filter(|&h| unsafe { (*h).hash } != 0 && unsafe { key_is(h, name) })
        .collect();
    if name.eq_ignore_ascii_case(b"cache-control") {
        // SAFETY: `pool` is the request's pool; `live` holds live elements
        return unsafe { set_out_multi(pool, ho, OutMulti::CacheControl, &live) }.ok_or(SetError::NoMemory);
    }
    if name.eq_ignore_ascii_case(b"link") {
        // SAFETY: `pool` is the request's pool; `live` holds live elements
        return unsafe { set_out_multi(pool, ho, OutMulti::Link, &live) }.ok_or(SetError::NoMemory);
    }
    let keep_dead = name.eq_ignore_ascii_case(b"server") || name.eq_ignore_ascii_case(b"date");
    if let Some(f) = field(ho, name) {
        if live.is_empty() && keep_dead {
            // SAFETY: `f` is a field of the live headers_out; `old` null or one of its elements
            unsafe {
                *f = old;
            }
        } else {
            // SAFETY: `f` is a field of the live headers_out; `live` holds live elements
            unsafe { set_field(f, &live) };
        }
        // A relative Location stays in the list only: through the field,
        // nginx's header filter would make it absolute (lua-nginx-module
        // leaves it relative).
        if name.eq_ignore_ascii_case(b"location")
            && live
                .first()
                // SAFETY: `live` holds live elements of the header list
                .is_some_and(|&h| unsafe { (*h).value.as_bytes() }.starts_with(b"/"))
        {
            // SAFETY: `f` is a field of the live headers_out
            unsafe { *f = ptr::null_mut() };
        }
    }
    if name.eq_ignore_ascii_case(b"last-modified") {
        ho.last_modified_time = match live.first() {
            // SAFETY: `h` is a live element whose value is `len` bytes
            Some(&h) => unsafe { ngx_parse_http_time((*h).value.data, (*h).value.len) },
            None => -1 as time_t,
        };
    }
    Ok(())
}

unsafe fn set_content_type(r: *mut ngx_http_request_t, value: Option<&[u8]>) -> Result<(), SetError> {
    // SAFETY: `r` is a live request (set's contract); no other reference to headers_out is held
    let ho = unsafe { &mut (*r).headers_out };
    ho.charset.len = 0;
    ho.content_type_lowcase = ptr::null_mut();
    ho.content_type_hash = 0;
    match value {
        Some(v) => {
            // SAFETY: `r` is a live request; its pool lives as long as it
            ho.content_type = unsafe { pool_str((*r).pool, v) }.ok_or(SetError::NoMemory)?;
            ho.content_type_len = v.iter().position(|&c| c == b';').unwrap_or(v.len());
            while ho.content_type_len > 0 && v[ho.content_type_len - 1] == b' ' {
                ho.content_type_len -= 1;
            }
        }
        None => {
            ho.content_type.len = 0;
            ho.content_type_len = 0;
        }
    }
    Ok(())
}

/// `t` as an HTTP date (nginx's own formatter), as in Last-Modified.
pub fn http_time(t: nginx_sys::time_t) -> Vec<u8> {
    let mut buf = [0u8; 40];
    // SAFETY: ngx_http_time writes at most 29 bytes into `buf` and returns
    // the end of what it wrote.
    let len = unsafe { nginx_sys::ngx_http_time(buf.as_mut_ptr(), t).offset_from(buf.as_ptr()) } as usize;
    buf[..len].to_vec()
}
