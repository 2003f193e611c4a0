//! `init_by_lua*`, `init_worker_by_lua*`, `exit_worker_by_lua*`,
//! `server_rewrite_by_lua*`, `rewrite_by_lua*`, `access_by_lua*`,
//! `content_by_lua*` and `log_by_lua*`: the code of each, and which phase
//! handlers postconfiguration must install.

use nginx_sys::{NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF, ngx_command_t, ngx_http_conf_ctx_t};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use super::args::set_once;
use super::{ANY_LOC, BLOCK, HTTP, LOC, LOC_CONF, MAIN_CONF, TAKE1, cmd, code, conf_setters};
use crate::conf::{LocConf, MainConf, main_conf_cf};

conf_setters! {
    fn set_init(cf, cmd, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.init, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_init_worker(cf, cmd, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.init_worker, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_exit_worker(cf, cmd, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.exit_worker, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_server_rewrite(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_server_rewrite = true;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_capture = true;
        set_once(&mut l.server_rewrite, code)
    }
    fn set_rewrite(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_rewrite = true;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_capture = true;
        set_once(&mut l.rewrite, code)
    }
    fn set_access(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_access = true;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_capture = true;
        set_once(&mut l.access, code)
    }
    fn set_log(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_log = true;
        set_once(&mut l.log, code)
    }
    /// content_by_lua* becomes the location's content handler.
    fn set_content(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let code = unsafe { code::load(cf, cmd, 1) }?;
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let clcf = NgxHttpCoreModule::location_conf_mut(unsafe { &*((*cf).ctx as *const ngx_http_conf_ctx_t) })
            .expect("core loc conf");
        clcf.handler = Some(crate::phase::content::handler);
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        (unsafe { main_conf_cf(cf) }).uses_capture = true;
        set_once(&mut l.content, code)
    }
}

/// The inline, block and file forms of one directive.
macro_rules! code_cmds {
    ($ctx:expr, $conf:expr, $set:expr, $inline:literal, $block:literal, $file:literal) => {
        [
            cmd($inline, $ctx | TAKE1, $set, $conf),
            cmd($block, $ctx | BLOCK, $set, $conf),
            cmd($file, $ctx | TAKE1, $set, $conf),
        ]
    };
}

const fn flat3(groups: [[ngx_command_t; 3]; 7]) -> [ngx_command_t; 21] {
    let mut out = [ngx_command_t::empty(); 21];
    let mut i = 0;
    while i < 21 {
        out[i] = groups[i / 3][i % 3];
        i += 1;
    }
    out
}

pub const COMMANDS: [ngx_command_t; 21] = flat3([
    code_cmds!(
        HTTP,
        MAIN_CONF,
        set_init,
        c"init_by_lua",
        c"init_by_lua_block",
        c"init_by_lua_file"
    ),
    code_cmds!(
        HTTP,
        MAIN_CONF,
        set_init_worker,
        c"init_worker_by_lua",
        c"init_worker_by_lua_block",
        c"init_worker_by_lua_file"
    ),
    code_cmds!(
        HTTP,
        MAIN_CONF,
        set_exit_worker,
        c"exit_worker_by_lua",
        c"exit_worker_by_lua_block",
        c"exit_worker_by_lua_file"
    ),
    code_cmds!(
        ANY_LOC,
        LOC_CONF,
        set_rewrite,
        c"rewrite_by_lua",
        c"rewrite_by_lua_block",
        c"rewrite_by_lua_file"
    ),
    code_cmds!(
        ANY_LOC,
        LOC_CONF,
        set_access,
        c"access_by_lua",
        c"access_by_lua_block",
        c"access_by_lua_file"
    ),
    code_cmds!(
        LOC,
        LOC_CONF,
        set_content,
        c"content_by_lua",
        c"content_by_lua_block",
        c"content_by_lua_file"
    ),
    code_cmds!(
        ANY_LOC,
        LOC_CONF,
        set_log,
        c"log_by_lua",
        c"log_by_lua_block",
        c"log_by_lua_file"
    ),
]);

/// server_rewrite_by_lua_block and _file (no quoted-string form, as in
/// lua-nginx-module).
pub const SERVER_REWRITE: [ngx_command_t; 2] = [
    cmd(
        c"server_rewrite_by_lua_block",
        NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | BLOCK,
        set_server_rewrite,
        LOC_CONF,
    ),
    cmd(
        c"server_rewrite_by_lua_file",
        NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | TAKE1,
        set_server_rewrite,
        LOC_CONF,
    ),
];
