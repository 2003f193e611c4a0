//! `lua_regex_cache_max_entries` and `lua_regex_match_limit`.

use std::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_str_t, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::directives::{cmd, T1};
use super::MainConf;

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
            let v = (*(*cf).args).as_slice::<ngx_str_t>()[1].as_bytes();
            let Some(n) = std::str::from_utf8(v).ok().and_then(|s| s.parse::<usize>().ok()) else {
                return c"invalid number".as_ptr() as *mut c_char;
            };
            let slot = if (*cmd).offset == 0 {
                &mut m.regex_cache_max_entries
            } else {
                &mut m.regex_match_limit
            };
            if slot.is_some() {
                return c"is duplicate".as_ptr() as *mut c_char;
            }
            *slot = Some(n);
            NGX_CONF_OK
        }
    })
}
