//! `ngx.OK`, `ngx.HTTP_*`, log levels and `ngx.null`.

use crate::lua::{ffi, lua_State, set_int};

const CONSTANTS: &[(&std::ffi::CStr, i64)] = &[
    (c"OK", 0),
    (c"ERROR", -1),
    (c"AGAIN", -2),
    (c"DONE", -4),
    (c"DECLINED", -5),
    (c"HTTP_GET", 0x0002),
    (c"HTTP_HEAD", 0x0004),
    (c"HTTP_POST", 0x0008),
    (c"HTTP_PUT", 0x0010),
    (c"HTTP_DELETE", 0x0020),
    (c"HTTP_MKCOL", 0x0040),
    (c"HTTP_COPY", 0x0080),
    (c"HTTP_MOVE", 0x0100),
    (c"HTTP_OPTIONS", 0x0200),
    (c"HTTP_PROPFIND", 0x0400),
    (c"HTTP_PROPPATCH", 0x0800),
    (c"HTTP_LOCK", 0x1000),
    (c"HTTP_UNLOCK", 0x2000),
    (c"HTTP_PATCH", 0x4000),
    (c"HTTP_TRACE", 0x8000),
    (c"HTTP_CONTINUE", 100),
    (c"HTTP_SWITCHING_PROTOCOLS", 101),
    (c"HTTP_OK", 200),
    (c"HTTP_CREATED", 201),
    (c"HTTP_ACCEPTED", 202),
    (c"HTTP_NO_CONTENT", 204),
    (c"HTTP_PARTIAL_CONTENT", 206),
    (c"HTTP_SPECIAL_RESPONSE", 300),
    (c"HTTP_MOVED_PERMANENTLY", 301),
    (c"HTTP_MOVED_TEMPORARILY", 302),
    (c"HTTP_SEE_OTHER", 303),
    (c"HTTP_NOT_MODIFIED", 304),
    (c"HTTP_TEMPORARY_REDIRECT", 307),
    (c"HTTP_PERMANENT_REDIRECT", 308),
    (c"HTTP_BAD_REQUEST", 400),
    (c"HTTP_UNAUTHORIZED", 401),
    (c"HTTP_PAYMENT_REQUIRED", 402),
    (c"HTTP_FORBIDDEN", 403),
    (c"HTTP_NOT_FOUND", 404),
    (c"HTTP_NOT_ALLOWED", 405),
    (c"HTTP_NOT_ACCEPTABLE", 406),
    (c"HTTP_REQUEST_TIMEOUT", 408),
    (c"HTTP_CONFLICT", 409),
    (c"HTTP_GONE", 410),
    (c"HTTP_UPGRADE_REQUIRED", 426),
    (c"HTTP_TOO_MANY_REQUESTS", 429),
    (c"HTTP_CLOSE", 444),
    (c"HTTP_ILLEGAL", 451),
    (c"HTTP_INTERNAL_SERVER_ERROR", 500),
    (c"HTTP_NOT_IMPLEMENTED", 501),
    (c"HTTP_METHOD_NOT_IMPLEMENTED", 501),
    (c"HTTP_BAD_GATEWAY", 502),
    (c"HTTP_SERVICE_UNAVAILABLE", 503),
    (c"HTTP_GATEWAY_TIMEOUT", 504),
    (c"HTTP_VERSION_NOT_SUPPORTED", 505),
    (c"HTTP_INSUFFICIENT_STORAGE", 507),
    (c"STDERR", 0),
    (c"EMERG", 1),
    (c"ALERT", 2),
    (c"CRIT", 3),
    (c"ERR", 4),
    (c"WARN", 5),
    (c"NOTICE", 6),
    (c"INFO", 7),
    (c"DEBUG", 8),
];

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    for (name, v) in CONSTANTS {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { set_int(l, -1, name, *v) };
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
        crate::lua::set_raw(l, -2, c"null");
    }
}
