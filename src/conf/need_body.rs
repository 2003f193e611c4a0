//! `lua_need_request_body on|off`: read the client body before the Lua code
//! of the rewrite, access and content phases runs.

use std::ffi::{c_char, c_void};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, NGX_CONF_FLAG, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF,
    NGX_HTTP_SRV_CONF,
};
use ngx::core::NGX_CONF_ERROR;

use super::directives::{cmd, L};
use super::{args, LocConf};

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
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with our location conf.
        unsafe {
            match args::flag(cf, cmd) {
                Ok(on) => args::set_once(&mut (*(conf as *mut LocConf)).need_request_body, on),
                Err(e) => e,
            }
        }
    })
}
