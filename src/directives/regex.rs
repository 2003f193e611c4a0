//! `lua_regex_cache_max_entries` and `lua_regex_match_limit`.

use nginx_sys::ngx_command_t;

use super::args::{count, set_once};
use super::{HTTP, MAIN_CONF, TAKE1, cmd, conf_setters};
use crate::conf::MainConf;

conf_setters! {
    fn set_cache_max_entries(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.regex_cache_max_entries, unsafe { count(cf) }?)
    }
    fn set_match_limit(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.regex_match_limit, unsafe { count(cf) }?)
    }
}

pub const COMMANDS: [ngx_command_t; 2] = [
    cmd(
        c"lua_regex_cache_max_entries",
        HTTP | TAKE1,
        set_cache_max_entries,
        MAIN_CONF,
    ),
    cmd(c"lua_regex_match_limit", HTTP | TAKE1, set_match_limit, MAIN_CONF),
];
