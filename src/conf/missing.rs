//! Directives of lua-nginx-module this module does not implement yet. They
//! are known names, so `nginx -t` says clearly what is missing instead of
//! "unknown directive".

use std::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t};
use ngx::core::NGX_CONF_ERROR;

pub unsafe extern "C" fn not_implemented(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with the command it matched.
        unsafe {
            let name = String::from_utf8_lossy((*cmd).name.as_bytes()).into_owned();
            ngx::ngx_conf_log_error!(
                nginx_sys::NGX_LOG_EMERG,
                cf,
                "\"{}\" is not implemented yet by this ngx_http_lua_module",
                name
            );
            NGX_CONF_ERROR
        }
    })
}

/// lua-nginx-module's directives that are still missing here.
pub const NAMES: &[&std::ffi::CStr] = &[
    c"ssl_client_hello_by_lua_block",
    c"ssl_client_hello_by_lua_file",
    c"ssl_certificate_by_lua_block",
    c"ssl_certificate_by_lua_file",
    c"ssl_session_fetch_by_lua_block",
    c"ssl_session_fetch_by_lua_file",
    c"ssl_session_store_by_lua_block",
    c"ssl_session_store_by_lua_file",
    c"lua_capture_error_log",
    c"lua_worker_thread_vm_pool_size",
];
