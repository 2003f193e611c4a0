//! `ssl_client_hello_by_lua*`, `ssl_certificate_by_lua*` (http and server
//! levels) and `ssl_session_fetch_by_lua*`, `ssl_session_store_by_lua*`
//! (http level only, as in lua-nginx-module: the session cache is the
//! default server's). Postconfiguration hooks them into each server's
//! SSL_CTX (phase/ssl.rs).

use nginx_sys::{NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF, ngx_command_t};

use super::args::set_once;
use super::{BLOCK, LOC_CONF, TAKE1, cmd, code, conf_setters};
use crate::conf::{LocConf, LuaCode};

const SRV: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF;
const HTTP: u32 = NGX_HTTP_MAIN_CONF;

pub const COMMANDS: [ngx_command_t; 8] = [
    cmd(
        c"ssl_client_hello_by_lua_block",
        SRV | BLOCK,
        set_client_hello,
        LOC_CONF,
    ),
    cmd(
        c"ssl_client_hello_by_lua_file",
        SRV | TAKE1,
        set_client_hello,
        LOC_CONF,
    ),
    cmd(c"ssl_certificate_by_lua_block", SRV | BLOCK, set_cert, LOC_CONF),
    cmd(c"ssl_certificate_by_lua_file", SRV | TAKE1, set_cert, LOC_CONF),
    cmd(
        c"ssl_session_store_by_lua_block",
        HTTP | BLOCK,
        set_store,
        LOC_CONF,
    ),
    cmd(
        c"ssl_session_store_by_lua_file",
        HTTP | TAKE1,
        set_store,
        LOC_CONF,
    ),
    cmd(
        c"ssl_session_fetch_by_lua_block",
        HTTP | BLOCK,
        set_fetch,
        LOC_CONF,
    ),
    cmd(
        c"ssl_session_fetch_by_lua_file",
        HTTP | TAKE1,
        set_fetch,
        LOC_CONF,
    ),
];

conf_setters! {
    fn set_client_hello(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let mut code = unsafe { code::load(cf, cmd, 1) }?;
        // lua-nginx-module names this inline chunk without its place.
        if let crate::conf::code::Source::Inline { code: src, .. } = &code.0.source {
            code = LuaCode::inline(src.clone(), c"=ssl_client_hello_by_lua".into());
        }
        set_once(&mut l.ssl_client_hello, code)
    }
    fn set_cert(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.ssl_cert, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_store(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.ssl_sess_store, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_fetch(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.ssl_sess_fetch, unsafe { code::load(cf, cmd, 1) }?)
    }
}
