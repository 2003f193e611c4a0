//! nginx complex values (strings with `$variables`) and prefix-relative paths.

use std::mem::MaybeUninit;

use nginx_sys::{
    NGX_OK, ngx_conf_t, ngx_http_compile_complex_value, ngx_http_compile_complex_value_t,
    ngx_http_complex_value, ngx_http_complex_value_t, ngx_http_request_t, ngx_palloc, ngx_str_t,
};

/// Compiles `value` as a complex value in the configuration pool.
///
/// # Safety
/// `cf` must be the live configuration being parsed.
pub unsafe fn compile(cf: *mut ngx_conf_t, value: ngx_str_t) -> Option<*mut ngx_http_complex_value_t> {
    // SAFETY: `cf` is the live configuration being parsed (caller's contract)
    let cv = unsafe { ngx_palloc((*cf).pool, std::mem::size_of::<ngx_http_complex_value_t>()) }
        as *mut ngx_http_complex_value_t;
    if cv.is_null() {
        return None;
    }
    // SAFETY: the struct is plain C data for which all-zero is nginx's initial state
    let mut ccv: ngx_http_compile_complex_value_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `cf` is the live configuration being parsed (caller's contract)
    let v = unsafe { ngx_palloc((*cf).pool, std::mem::size_of::<ngx_str_t>()) } as *mut ngx_str_t;
    if v.is_null() {
        return None;
    }
    // SAFETY: `v` was just allocated for one ngx_str_t and checked non-null
    unsafe {
        *v = value;
    }
    ccv.cf = cf;
    ccv.value = v;
    ccv.complex_value = cv;
    // SAFETY: `ccv` is filled as nginx expects, its pointers live in the conf pool
    (unsafe { ngx_http_compile_complex_value(&mut ccv) } == NGX_OK as isize).then_some(cv)
}

/// Evaluates a complex value for a request.
///
/// # Safety
/// `r` must be live and `cv` compiled for this configuration.
pub unsafe fn eval(r: *mut ngx_http_request_t, cv: *mut ngx_http_complex_value_t) -> Option<Vec<u8>> {
    let mut out = ngx_str_t::empty();
    // SAFETY: `r` is live and `cv` compiled for its configuration (caller's contract)
    (unsafe { ngx_http_complex_value(r, cv, &mut out) } == NGX_OK as isize).then(|| out.as_bytes().to_vec())
}

/// `path` made absolute against nginx's prefix, as lua-nginx-module resolves
/// `*_by_lua_file` paths.
///
/// # Safety
/// `cf` must be live.
pub unsafe fn prefixed(cf: *mut ngx_conf_t, path: &[u8]) -> Vec<u8> {
    // SAFETY: `cf` is live (caller's contract) and so is its cycle
    prefix_join(unsafe { (*(*cf).cycle).prefix.as_bytes() }, path)
}

/// Joins a relative path to an nginx prefix (which ends in `/`).
pub fn prefix_join(prefix: &[u8], path: &[u8]) -> Vec<u8> {
    if path.first() == Some(&b'/') {
        return path.to_vec();
    }
    let mut v = prefix.to_vec();
    if !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(path);
    v
}
