//! `lua_regex_cache_max_entries` and `lua_regex_match_limit`.

use std::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET};
use ngx::core::NGX_CONF_ERROR;

use super::directives::{cmd, T1};
use super::{args, MainConf};

pub const COMMANDS: [ngx_command_t; 2] = [
    cmd(
        c"lua_regex_cache_max_entries",
        NGX_HTTP_MAIN_CONF | T1,
        set_number,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    cmd(
        c"lua_regex_match_limit",
        NGX_HTTP_MAIN_CONF | T1,
        set_number,
        NGX_HTTP_MAIN_CONF_OFFSET,
        1,
    ),
];

unsafe extern "C" fn set_number(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing the http block, with our
        // main conf and the directive's arguments.
        unsafe {
            let m = &mut *(conf as *mut MainConf);
            let n = match args::count(cf) {
                Ok(n) => n,
                Err(e) => return e,
            };
            let slot = if (*cmd).offset == 0 {
                &mut m.regex_cache_max_entries
            } else {
                &mut m.regex_match_limit
            };
            args::set_once(slot, n)
        }
    })
}
