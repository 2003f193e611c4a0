//! `lua_need_request_body on|off`: read the client body before the Lua code
//! of the rewrite, access and content phases runs.

use nginx_sys::ngx_command_t;

use super::args::{flag, set_once};
use super::{ANY_LOC, FLAG, LOC_CONF, cmd, conf_setters};
use crate::conf::LocConf;

conf_setters! {
    fn set_need_body(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.need_request_body, unsafe { flag(cf, cmd) }?)
    }
}

pub const COMMANDS: [ngx_command_t; 1] = [cmd(
    c"lua_need_request_body",
    ANY_LOC | FLAG,
    set_need_body,
    LOC_CONF,
)];
