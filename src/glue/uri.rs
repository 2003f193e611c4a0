//! The URI rule nginx applies to internal redirects and subrequests it
//! builds from strings (`ngx_http_parse_unsafe_uri`): no NUL, no `..`
//! path segment (also when %-encoded), and the query split off.

use nginx_sys::{
    NGX_HTTP_LOG_UNSAFE, NGX_OK, ngx_http_parse_unsafe_uri, ngx_http_request_t, ngx_str_t, ngx_uint_t,
};

use super::headers::pool_str;

/// Splits `uri` into its path (%-decoded when it had escapes, as nginx
/// does) and its query, both in the request pool; `None` when nginx
/// calls the URI unsafe. With `log`, nginx itself logs
/// `unsafe URI "..." was detected` at error level, as it does for
/// lua-nginx-module's `ngx.exec`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn split_safe(
    r: *mut ngx_http_request_t,
    uri: &[u8],
    log: bool,
) -> Option<(ngx_str_t, ngx_str_t)> {
    if uri.is_empty() {
        return None;
    }
    // SAFETY: `r` is a live request (caller's contract)
    let path = unsafe { pool_str((*r).pool, uri) }?;
    // SAFETY: `r` is live; `path` is a fresh pool copy
    unsafe { split_safe_copy(r, path, log) }
}

/// `split_safe` of a URI already copied into the request pool for this
/// call alone (nginx may shorten it; its bytes stay as they are).
///
/// # Safety
/// `r` must be a live request and `path` such a copy.
pub unsafe fn split_safe_copy(
    r: *mut ngx_http_request_t,
    mut path: ngx_str_t,
    log: bool,
) -> Option<(ngx_str_t, ngx_str_t)> {
    if path.len == 0 {
        return None;
    }
    let mut args = ngx_str_t::empty();
    let mut flags: ngx_uint_t = if log { NGX_HTTP_LOG_UNSAFE as ngx_uint_t } else { 0 };
    // nginx may shorten `path` or replace it with a decoded pool copy;
    // `args` points into it.
    // SAFETY: `r` is live; `path` is a pool copy nginx may shorten or replace
    let rc = unsafe { ngx_http_parse_unsafe_uri(r, &mut path, &mut args, &mut flags) };
    (rc == NGX_OK as isize).then_some((path, args))
}
