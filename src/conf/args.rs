//! The argument handling directive setters share: one on|off parser, one
//! count parser, and the "is duplicate" rule, so every directive answers
//! bad input the same way nginx's own slot setters do.

use std::ffi::c_char;

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_str_t};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

/// The `i`-th token of the directive being parsed (0 is its name).
///
/// # Safety
/// `cf` must be the configuration being parsed, with at least `i + 1` tokens.
pub unsafe fn arg<'a>(cf: *mut ngx_conf_t, i: usize) -> &'a [u8] {
    (*(*cf).args).as_slice::<ngx_str_t>()[i].as_bytes()
}

/// `on` or `off` (any case), or nginx's error for the directive.
///
/// # Safety
/// `cf` and `cmd` as nginx passes them to a setter.
pub unsafe fn flag(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t) -> Result<bool, *mut c_char> {
    let v = arg(cf, 1);
    if v.eq_ignore_ascii_case(b"on") {
        return Ok(true);
    }
    if v.eq_ignore_ascii_case(b"off") {
        return Ok(false);
    }
    ngx::ngx_conf_log_error!(
        nginx_sys::NGX_LOG_EMERG,
        cf,
        "invalid value \"{}\" in \"{}\" directive, it must be \"on\" or \"off\"",
        String::from_utf8_lossy(v),
        String::from_utf8_lossy((*cmd).name.as_bytes())
    );
    Err(NGX_CONF_ERROR)
}

/// A non-negative whole number, or nginx's "invalid number".
///
/// # Safety
/// `cf` as nginx passes it to a setter.
pub unsafe fn count(cf: *mut ngx_conf_t) -> Result<usize, *mut c_char> {
    std::str::from_utf8(arg(cf, 1))
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or(c"invalid number".as_ptr() as *mut c_char)
}

/// Stores a directive's value unless the block already set it.
pub fn set_once<T>(slot: &mut Option<T>, value: T) -> *mut c_char {
    if slot.is_some() {
        return c"is duplicate".as_ptr() as *mut c_char;
    }
    *slot = Some(value);
    NGX_CONF_OK
}
