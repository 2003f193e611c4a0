//! The argument handling directive setters share: one on|off parser, one
//! count parser, the "is duplicate" rule and one way to fail, so every
//! directive answers bad input the same way nginx's own slot setters do.

use std::ffi::{CStr, c_char};

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_str_t};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

/// Why a directive was refused.
pub enum ConfErr {
    /// A short text nginx prints after the directive's name:
    /// `"lua_code_cache" directive is duplicate`.
    Says(&'static CStr),
    /// The reason is logged already (by [`conf_error`], or by nginx).
    Logged,
}

/// What a setter body returns.
pub type ConfResult = Result<(), ConfErr>;

/// A setter body's result as nginx takes it.
pub fn conf_result(r: ConfResult) -> *mut c_char {
    match r {
        Ok(()) => NGX_CONF_OK,
        Err(ConfErr::Says(s)) => s.as_ptr() as *mut c_char,
        Err(ConfErr::Logged) => NGX_CONF_ERROR,
    }
}

/// Reports a configuration error in nginx's format ("emerg", with the file
/// and line being parsed).
///
/// # Safety
/// `cf` must be the configuration being parsed.
pub unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> ConfErr {
    ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_EMERG, cf, "{}", msg);
    ConfErr::Logged
}

/// The `i`-th token of the directive being parsed (0 is its name).
///
/// # Safety
/// `cf` must be the configuration being parsed, with at least `i + 1` tokens.
pub unsafe fn arg_str(cf: *mut ngx_conf_t, i: usize) -> ngx_str_t {
    // SAFETY: `cf` is being parsed with at least i + 1 tokens (caller's contract)
    unsafe { (*(*cf).args).as_slice::<ngx_str_t>()[i] }
}

/// The bytes of the `i`-th token (0 is the directive's name).
///
/// # Safety
/// As [`arg_str`].
pub unsafe fn arg<'a>(cf: *mut ngx_conf_t, i: usize) -> &'a [u8] {
    // SAFETY: `cf` is being parsed with at least i + 1 tokens (caller's contract)
    unsafe { (*(*cf).args).as_slice::<ngx_str_t>()[i].as_bytes() }
}

/// `on` or `off` (any case), or nginx's error for the directive.
///
/// # Safety
/// `cf` and `cmd` as nginx passes them to a setter.
pub unsafe fn flag(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t) -> Result<bool, ConfErr> {
    // SAFETY: a flag directive takes one argument, which nginx checked (caller's contract)
    let v = unsafe { arg(cf, 1) };
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
        // SAFETY: `cmd` is this directive's entry in our static command table
        String::from_utf8_lossy(unsafe { (*cmd).name.as_bytes() })
    );
    Err(ConfErr::Logged)
}

/// A non-negative whole number, or nginx's "invalid number".
///
/// # Safety
/// `cf` as nginx passes it to a setter.
pub unsafe fn count(cf: *mut ngx_conf_t) -> Result<usize, ConfErr> {
    // SAFETY: a numeric directive takes one argument, which nginx checked (caller's contract)
    number(unsafe { arg(cf, 1) })
}

/// `v` as a non-negative whole number, or nginx's "invalid number".
pub fn number(v: &[u8]) -> Result<usize, ConfErr> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or(ConfErr::Says(c"invalid number"))
}

/// Stores a directive's value unless the block already set it.
pub fn set_once<T>(slot: &mut Option<T>, value: T) -> ConfResult {
    if slot.is_some() {
        return Err(ConfErr::Says(c"is duplicate"));
    }
    *slot = Some(value);
    Ok(())
}
