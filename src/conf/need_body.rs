//! `lua_need_request_body on|off`: read the client body before the Lua code
//! of the rewrite, access and content phases runs.

use std::ffi::{c_char, c_void};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_str_t, NGX_CONF_FLAG, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::directives::{cmd, L};
use super::LocConf;

const ANY_LOC: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;

pub const COMMANDS: [ngx_command_t; 1] = [cmd(
    c"lua_need_request_body",
    ANY_LOC | NGX_CONF_FLAG,
    set_need_body,
    L,
    0,
)];

unsafe extern "C" fn set_need_body(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with our location conf.
        unsafe {
            let v = (*(*cf).args).as_slice::<ngx_str_t>()[1].as_bytes();
            let on = if v.eq_ignore_ascii_case(b"on") {
                true
            } else if v.eq_ignore_ascii_case(b"off") {
                false
            } else {
                ngx::ngx_conf_log_error!(
                    nginx_sys::NGX_LOG_EMERG,
                    cf,
                    "invalid value \"{}\" in \"lua_need_request_body\" directive, it must be \"on\" or \"off\"",
                    String::from_utf8_lossy(v)
                );
                return NGX_CONF_ERROR;
            };
            let l = &mut *(conf as *mut LocConf);
            if l.need_request_body.is_some() {
                return c"is duplicate".as_ptr() as *mut c_char;
            }
            l.need_request_body = Some(on);
            NGX_CONF_OK
        }
    })
}
