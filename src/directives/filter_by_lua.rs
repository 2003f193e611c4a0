//! `header_filter_by_lua*`, `body_filter_by_lua*` and
//! `lua_capture_max_body_size`.

use nginx_sys::{ngx_command_t, ngx_parse_size};

use super::args::{arg_str, set_once, ConfErr};
use super::{cmd, code, conf_setters, ANY_LOC, BLOCK, LOC_CONF, TAKE1};
use crate::conf::{main_conf_cf, LocConf};

conf_setters! {
    fn set_header_filter(cf, cmd, l: LocConf) {
        let code = code::load(cf, cmd, 1)?;
        main_conf_cf(cf).uses_header_filter = true;
        set_once(&mut l.header_filter, code)
    }
    fn set_body_filter(cf, cmd, l: LocConf) {
        let code = code::load(cf, cmd, 1)?;
        // lua-nginx-module installs its header filter for it too (the
        // body filter needs the header's view of the response).
        main_conf_cf(cf).uses_body_filter = true;
        main_conf_cf(cf).uses_header_filter = true;
        set_once(&mut l.body_filter, code)
    }
    fn set_max_body(cf, _, l: LocConf) {
        if l.capture_max_body_size.is_some() {
            return Err(ConfErr::Says(c"is duplicate"));
        }
        let mut v = arg_str(cf, 1);
        let n = ngx_parse_size(&mut v);
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
