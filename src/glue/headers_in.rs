//! Keeps nginx's dedicated request-header fields (`r->headers_in.host`,
//! `.user_agent`, Cookie, `.content_length_n`, ...) in step with the
//! header list after Lua changed it, so `$http_*`, `$host`, `$content_length`
//! and later modules (proxy_pass) see what the list says.

use std::borrow::Cow;

use nginx_sys::{
    NGX_HTTP_CONNECTION_CLOSE, NGX_HTTP_CONNECTION_KEEP_ALIVE, ngx_atoof, ngx_http_headers_in_t,
    ngx_http_request_t, ngx_list_t, ngx_pool_t, ngx_str_t, ngx_table_elt_t,
};

use super::headers::{key_is, may_be, name_filter, pool_str};
use super::list;
use super::ngx_version::{InMulti, set_field, set_in_multi};

/// The headers `field` knows, for clearing them all.
const FIELD_NAMES: [&[u8]; 28] = [
    b"host",
    b"connection",
    b"if-modified-since",
    b"if-unmodified-since",
    b"if-match",
    b"if-none-match",
    b"user-agent",
    b"referer",
    b"content-length",
    b"content-range",
    b"content-type",
    b"range",
    b"if-range",
    b"transfer-encoding",
    b"te",
    b"expect",
    b"upgrade",
    b"accept-encoding",
    b"via",
    b"authorization",
    b"keep-alive",
    b"x-real-ip",
    b"accept",
    b"accept-language",
    b"depth",
    b"destination",
    b"overwrite",
    b"date",
];

/// The pointer fields nginx keeps for request headers (first occurrence),
/// in the order of FIELD_NAMES.
fn fields(h: &mut ngx_http_headers_in_t) -> [*mut *mut ngx_table_elt_t; 28] {
    [
        &mut h.host,
        &mut h.connection,
        &mut h.if_modified_since,
        &mut h.if_unmodified_since,
        &mut h.if_match,
        &mut h.if_none_match,
        &mut h.user_agent,
        &mut h.referer,
        &mut h.content_length,
        &mut h.content_range,
        &mut h.content_type,
        &mut h.range,
        &mut h.if_range,
        &mut h.transfer_encoding,
        &mut h.te,
        &mut h.expect,
        &mut h.upgrade,
        &mut h.accept_encoding,
        &mut h.via,
        &mut h.authorization,
        &mut h.keep_alive,
        &mut h.x_real_ip,
        &mut h.accept,
        &mut h.accept_language,
        &mut h.depth,
        &mut h.destination,
        &mut h.overwrite,
        &mut h.date,
    ]
}

/// FIELD_NAMES' filter: most names are ruled out without the scan.
const FIELD_FILTER: u64 = name_filter(&FIELD_NAMES);

/// Which of FIELD_NAMES `name` is, in any case.
fn field_index(name: &[u8]) -> Option<usize> {
    if !may_be(FIELD_FILTER, name) {
        return None;
    }
    FIELD_NAMES
        .iter()
        .position(|n| n.len() == name.len() && n.eq_ignore_ascii_case(name))
}

/// The pointer field nginx keeps for a request header (first occurrence);
/// one for each of FIELD_NAMES.
fn field(h: &mut ngx_http_headers_in_t, name: &[u8]) -> Option<*mut *mut ngx_table_elt_t> {
    let i = field_index(name)?;
    Some(fields(h)[i])
}

/// Re-derives what nginx keeps about header `changed` besides the list:
/// its dedicated pointer field or the Cookie and X-Forwarded-For fields
/// (see glue::ngx_version), and the values computed from it. The
/// other headers' elements did not move, so their fields stay as they are.
///
/// # Safety
/// `r` must be a live request whose header list was just changed.
pub unsafe fn sync(r: *mut ngx_http_request_t, changed: &[u8]) -> Option<()> {
    // SAFETY: `r` is a live request (caller's contract)
    let pool = unsafe { (*r).pool };
    let mut lowered = smallvec::SmallVec::<[u8; 64]>::from_slice(changed);
    lowered.make_ascii_lowercase();
    let low: &[u8] = &lowered;
    // SAFETY: `r` is a live request (caller's contract); no other reference to its headers_in is held
    let hi = unsafe { &mut (*r).headers_in };
    let list: *mut ngx_list_t = &mut hi.headers;
    // SAFETY: the header list of the live request, initialised by nginx
    let named = || unsafe { list::find::<ngx_table_elt_t>(list, |h| key_is(h, low)) };
    // SAFETY: `find` gives slots of live parts of that list
    let elt = |(part, i): list::Slot| unsafe { ((*part).elts as *mut ngx_table_elt_t).add(i) };
    let all = || {
        named()
            .into_iter()
            .map(elt)
            .collect::<smallvec::SmallVec<[_; 4]>>()
    };
    if let Some(f) = field(hi, low) {
        // SAFETY: `f` is a field of the live headers_in; the elements are live
        unsafe { set_field(f, &all()) };
    } else if low == b"cookie" {
        // SAFETY: `pool` is the request's pool; the elements are live
        (unsafe { set_in_multi(pool, hi, InMulti::Cookie, &all()) })?;
    } else if low == b"x-forwarded-for" {
        // SAFETY: `pool` is the request's pool; the elements are live
        (unsafe { set_in_multi(pool, hi, InMulti::XForwardedFor, &all()) })?;
    }
    // SAFETY: `pool` is the live request's pool and `hi` its headers_in
    unsafe { derive(pool, hi, low) }?;
    if low == b"host" {
        // SAFETY: `r` is a live request (caller's contract)
        unsafe { forget_cached_var(r, b"host") };
    }
    Some(())
}

/// Drops the value of variable `name` cached in the request (an indexed
/// variable keeps its first value), as lua-nginx-module does for `$host`
/// when Host changes: it is evaluated again on its next use.
unsafe fn forget_cached_var(r: *mut ngx_http_request_t, name: &[u8]) {
    use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};
    // SAFETY: r is live; its variables array has one slot per indexed
    // variable of the core module's list.
    unsafe {
        let Some(cmcf) = NgxHttpCoreModule::main_conf(&*r) else {
            return;
        };
        if (*r).variables.is_null() || cmcf.variables.elts.is_null() {
            return;
        }
        let vars = std::slice::from_raw_parts(
            cmcf.variables.elts as *const nginx_sys::ngx_http_variable_t,
            cmcf.variables.nelts,
        );
        if let Some(i) = vars.iter().position(|v| v.name.as_bytes() == name) {
            let v = &mut *(*r).variables.add(i);
            v.set_valid(0);
            v.set_not_found(0);
        }
    }
}

/// The values nginx computes from some headers when it reads them. Only
/// the changed header's are recomputed: nginx sets some of them itself
/// (the length of a chunked body once read).
unsafe fn derive(pool: *mut ngx_pool_t, hi: &mut ngx_http_headers_in_t, changed: &[u8]) -> Option<()> {
    match changed {
        b"content-length" => {
            // SAFETY: `hi` belongs to a live request: a non-null field points at a live element
            hi.content_length_n = match unsafe { hi.content_length.as_ref() } {
                // SAFETY: the element's value is `len` bytes of pool memory
                Some(h) => unsafe { ngx_atoof(h.value.data, h.value.len) },
                None => -1,
            };
        }
        // SAFETY: `pool` is the request's pool; `hi`'s pointers are live (caller's duty)
        b"host" => hi.server = unsafe { host_server(pool, hi) }?,
        // SAFETY: `hi`'s pointers are live elements (caller's duty)
        b"connection" => unsafe { set_connection_type(hi) },
        // SAFETY: `hi`'s pointers are live elements (caller's duty)
        b"user-agent" => unsafe { set_browser_flags(hi) },
        _ => {}
    }
    Some(())
}

/// `$host`: the Host value lower-cased, without port or trailing dot.
unsafe fn host_server(pool: *mut ngx_pool_t, hi: &ngx_http_headers_in_t) -> Option<ngx_str_t> {
    // SAFETY: `hi` belongs to a live request: a non-null `host` is a live element
    Some(match unsafe { hi.host.as_ref() } {
        Some(h) => {
            let v = h.value.as_bytes();
            let host = match v.iter().rposition(|&c| c == b':') {
                Some(i) if !v[i..].contains(&b']') => &v[..i],
                _ => v,
            };
            let host = host.strip_suffix(b".").unwrap_or(host).to_ascii_lowercase();
            // SAFETY: `pool` is the live request's pool (caller's duty)
            (unsafe { pool_str(pool, &host) })?
        }
        None => ngx_str_t::empty(),
    })
}

unsafe fn set_connection_type(hi: &mut ngx_http_headers_in_t) {
    // SAFETY: `hi` belongs to a live request: a non-null field is a live element
    let conn = unsafe { hi.connection.as_ref() }.map(|h| h.value.as_bytes().to_ascii_lowercase());
    let ct = match conn {
        Some(v) if contains(&v, b"close") => NGX_HTTP_CONNECTION_CLOSE,
        Some(v) if contains(&v, b"keep-alive") => NGX_HTTP_CONNECTION_KEEP_ALIVE,
        _ => 0,
    };
    hi.set_connection_type(ct as _);
}

/// The browser flags nginx derives from User-Agent (`$msie`,
/// modern_browser/ancient_browser).
unsafe fn set_browser_flags(hi: &mut ngx_http_headers_in_t) {
    // SAFETY: `hi` belongs to a live request: a non-null field is a live element
    let ua = unsafe { hi.user_agent.as_ref() }
        .map(|h| h.value.as_bytes())
        .unwrap_or_default();
    let find = |n: &[u8]| ua.windows(n.len()).position(|w| w == n);
    let (mut msie, mut msie6) = (false, false);
    if let Some(i) = find(b"MSIE ").filter(|i| i + 7 < ua.len()) {
        msie = true;
        if ua[i + 6] == b'.' {
            msie6 = match ua[i + 5] {
                b'4' | b'5' => true,
                b'6' => !contains(&ua[(i + 8).min(ua.len())..], b"SV1"),
                _ => false,
            };
        }
    }
    let opera = find(b"Opera").is_some();
    if opera {
        (msie, msie6) = (false, false);
    }
    let (mut gecko, mut chrome, mut safari, mut konqueror) = (false, false, false, false);
    if !msie && !opera {
        if find(b"Gecko/").is_some() {
            gecko = true;
        } else if find(b"Chrome/").is_some() {
            chrome = true;
        } else if find(b"Safari/").is_some() && find(b"Mac OS X").is_some() {
            safari = true;
        } else if find(b"Konqueror").is_some() {
            konqueror = true;
        }
    }
    hi.set_msie(msie as _);
    hi.set_msie6(msie6 as _);
    hi.set_opera(opera as _);
    hi.set_gecko(gecko as _);
    hi.set_chrome(chrome as _);
    hi.set_safari(safari as _);
    hi.set_konqueror(konqueror as _);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Replaces the request headers called `name` with `values` (none:
/// removes them) as lua-nginx-module does: the first header of that name
/// takes the first value in place, the others are removed, further values
/// are appended. No other element moves, so this costs one walk of the
/// list, not a copy of it.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn set(r: *mut ngx_http_request_t, name: &[u8], values: &[Cow<[u8]>]) -> Option<()> {
    // SAFETY: `r` is a live request (caller's contract)
    if !unsafe { has_header_list(r) } {
        return Some(());
    }
    // SAFETY: `r` is a live request (caller's contract)
    let pool = unsafe { (*r).pool };
    // SAFETY: `r` is a live request (caller's contract)
    let list: *mut ngx_list_t = unsafe { &mut (*r).headers_in.headers };
    // SAFETY: has_header_list checked that nginx initialised the list
    let mut named = unsafe { list::find::<ngx_table_elt_t>(list, |h| key_is(h, name)) };
    let mut rest = values;
    if let (Some(&(part, i)), Some((v, more))) = (named.first(), values.split_first()) {
        // SAFETY: `find` gave a slot (part, i) of a live part with i < nelts
        let h = unsafe { ((*part).elts as *mut ngx_table_elt_t).add(i) };
        // SAFETY: `h` is a live element; `pool` the request's pool
        unsafe {
            (*h).value = pool_str(pool, v)?;
        }
        named.remove(0);
        rest = more;
    }
    // SAFETY: `named` holds distinct live slots of this list
    (unsafe { list::remove(list, &named) })?;
    for v in rest {
        // SAFETY: the list is live and initialised
        let h = unsafe { list::push_room(list, 16) } as *mut ngx_table_elt_t;
        if h.is_null() {
            return None;
        }
        // SAFETY: `h` is a fresh element of the list; `pool` the request's pool
        (unsafe { super::headers::fill(pool, h, name, v) })?;
    }
    // SAFETY: `r` is live and its header list just changed
    unsafe { sync(r, name) }
}

/// Adds request headers called `name` without removing the others, as
/// lua-nginx-module's `ngx.req.add_header`. A header nginx keeps a single
/// pointer for (Host, User-Agent, ...) stays single: an existing one takes
/// the last value in place, a missing one is added with it.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn add(r: *mut ngx_http_request_t, name: &[u8], values: &[Cow<[u8]>]) -> Option<()> {
    // SAFETY: `r` is a live request (caller's contract)
    if !unsafe { has_header_list(r) } {
        return Some(());
    }
    // SAFETY: `r` is a live request (caller's contract)
    let pool = unsafe { (*r).pool };
    // SAFETY: `r` is a live request (caller's contract)
    let list: *mut ngx_list_t = unsafe { &mut (*r).headers_in.headers };
    let mut values = values;
    // SAFETY: `r` is a live request; the reference ends with this call
    if field(unsafe { &mut (*r).headers_in }, name).is_some() {
        let Some(last) = values.len().checked_sub(1) else {
            return Some(());
        };
        values = &values[last..];
        // SAFETY: has_header_list checked that nginx initialised the list
        if let Some(&(part, i)) = unsafe { list::find::<ngx_table_elt_t>(list, |h| key_is(h, name)) }.first()
        {
            // SAFETY: `find` gave a slot (part, i) of a live part with i < nelts
            let h = unsafe { ((*part).elts as *mut ngx_table_elt_t).add(i) };
            // SAFETY: `h` is a live element; `pool` the request's pool
            unsafe {
                (*h).value = pool_str(pool, &values[0])?;
            }
            // SAFETY: `r` is live and its header list just changed
            return unsafe { sync(r, name) };
        }
    }
    for v in values {
        // SAFETY: the list is live and initialised
        let h = unsafe { list::push_room(list, 16) } as *mut ngx_table_elt_t;
        if h.is_null() {
            return None;
        }
        // SAFETY: `h` is a fresh element of the list; `pool` the request's pool
        (unsafe { super::headers::fill(pool, h, name, v) })?;
    }
    // SAFETY: `r` is live and its header list just changed
    unsafe { sync(r, name) }
}

/// An HTTP/0.9 request, or one whose request line nginx refused (an
/// `error_page 400` location), has no header list (nginx never initialised
/// it): setting or adding headers there does nothing, as in
/// lua-nginx-module.
unsafe fn has_header_list(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (callers' duty)
    (unsafe { (*r).http_version }) >= nginx_sys::NGX_HTTP_VERSION_10 as nginx_sys::ngx_uint_t
        // SAFETY: `r` is a live request (callers' duty)
        && !unsafe { (*r).headers_in.headers.last.is_null() }
}

/// Gives subrequest `sr` a header list of its own: a copy of its parent's
/// (`sr` starts with a struct copy sharing the parent's elements) without
/// the headers named in `skip`, with nginx's dedicated fields pointing at
/// the copies. lua-nginx-module copies the headers of every subrequest,
/// so `ngx.req.set_header` in a subrequest leaves the parent's alone. The
/// values nginx derived from the headers (`$host`, the content length) stay
/// as the struct copy has them.
///
/// # Safety
/// `sr` must be a fresh subrequest of the live request `r` (same pool).
pub unsafe fn copy_to_subrequest(
    r: *mut ngx_http_request_t,
    sr: *mut ngx_http_request_t,
    skip: &[&[u8]],
) -> Option<()> {
    // SAFETY: r, sr and their pool are live (the caller's contract).
    unsafe {
        if !has_header_list(r) {
            return Some(());
        }
        let pool = (*r).pool;
        let hi = &mut (*sr).headers_in;
        if !list::init_headers(pool, &mut hi.headers) {
            return None;
        }
        // The copies that some field points at, with their kind: a
        // dedicated field (its index in FIELD_NAMES), Cookie,
        // X-Forwarded-For. Found while copying, so the list is walked once.
        const COOKIE: usize = FIELD_NAMES.len();
        const XFF: usize = COOKIE + 1;
        let mut kept: smallvec::SmallVec<[(usize, *mut ngx_table_elt_t); 16]> = smallvec::SmallVec::new();
        for h in list::elts::<ngx_table_elt_t>(&(*r).headers_in.headers) {
            if skip.iter().any(|s| key_is(h, s)) {
                continue;
            }
            let copy = list::push_header(&mut hi.headers, *h);
            if copy.is_null() {
                return None;
            }
            super::ngx_version::clear_next(copy);
            // nginx's parser and ours (headers::fill) set the lower-cased
            // name: compared as bytes, it costs a fraction of a
            // case-insensitive match against every name.
            let low = match super::headers::lowcase_key(h) {
                Some(low) => low,
                None => &(*h).key.as_bytes().to_ascii_lowercase()[..],
            };
            let kind = match FIELD_NAMES.iter().position(|n| *n == low) {
                Some(i) => i,
                None if low == b"cookie" => COOKIE,
                None if low == b"x-forwarded-for" => XFF,
                None => continue,
            };
            kept.push((kind, copy));
        }
        forget_fields(hi);
        let fields = fields(hi);
        let mut done = [false; XFF + 1];
        for (at, &(kind, _)) in kept.iter().enumerate() {
            if std::mem::replace(&mut done[kind], true) {
                continue;
            }
            // Those of this kind, in list order (from its first on).
            let all: smallvec::SmallVec<[*mut ngx_table_elt_t; 4]> = kept[at..]
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|&(_, h)| h)
                .collect();
            match kind {
                COOKIE => set_in_multi(pool, hi, InMulti::Cookie, &all)?,
                XFF => set_in_multi(pool, hi, InMulti::XForwardedFor, &all)?,
                i => set_field(fields[i], &all),
            }
        }
    }
    Some(())
}

/// Clears every dedicated header field of a struct copy, the multi-value
/// ones included (their arrays are the parent's, not to be reused).
fn forget_fields(hi: &mut ngx_http_headers_in_t) {
    for f in fields(hi) {
        // SAFETY: f points into hi.
        unsafe { *f = std::ptr::null_mut() };
    }
    super::ngx_version::forget_in_multi(hi);
}
