//! `header_filter_by_lua*`, `body_filter_by_lua*` and
//! `lua_capture_max_body_size`.

use nginx_sys::{ngx_command_t, ngx_parse_size};

use super::args::{ConfErr, arg_str, set_once};
use super::{ANY_LOC, BLOCK, LOC_CONF, TAKE1, cmd, code, conf_setters};
use crate::conf::{LocConf, main_conf_cf};

conf_setters! {
    fn set_header_filter(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // SAFETY: `cf` is the conf being parsed, inside the http block where our main conf exists
        unsafe { main_conf_cf(cf) }.uses_header_filter = true;
        set_once(&mut l.header_filter, code)
    }
    fn set_body_filter(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // lua-nginx-module installs its header filter for it too (the
        // body filter needs the header's view of the response).
        // SAFETY: `cf` is the conf being parsed, inside the http block where our main conf exists
        let lmcf = unsafe { main_conf_cf(cf) };
        lmcf.uses_body_filter = true;
        lmcf.uses_header_filter = true;
        set_once(&mut l.body_filter, code)
    }
    fn set_max_body(cf, _, l: LocConf) {
        if l.capture_max_body_size.is_some() {
            return Err(ConfErr::Says(c"is duplicate"));
        }
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let mut v = unsafe { arg_str(cf, 1) };
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let n = unsafe { ngx_parse_size(&mut v) };
        if n < 0 {
            return Err(ConfErr::Says(c"invalid value"));
        }
        l.capture_max_body_size = Some(n as usize);
        Ok(())
    }
}

pub const COMMANDS: [ngx_command_t; 7] = [
    cmd(
        c"header_filter_by_lua",
        ANY_LOC | TAKE1,
        set_header_filter,
        LOC_CONF,
    ),
    cmd(
        c"header_filter_by_lua_block",
        ANY_LOC | BLOCK,
        set_header_filter,
        LOC_CONF,
    ),
    cmd(
        c"header_filter_by_lua_file",
        ANY_LOC | TAKE1,
        set_header_filter,
        LOC_CONF,
    ),
    cmd(c"body_filter_by_lua", ANY_LOC | TAKE1, set_body_filter, LOC_CONF),
    cmd(
        c"body_filter_by_lua_block",
        ANY_LOC | BLOCK,
        set_body_filter,
        LOC_CONF,
    ),
    cmd(
        c"body_filter_by_lua_file",
        ANY_LOC | TAKE1,
        set_body_filter,
        LOC_CONF,
    ),
    cmd(
        c"lua_capture_max_body_size",
        ANY_LOC | TAKE1,
        set_max_body,
        LOC_CONF,
    ),
];
