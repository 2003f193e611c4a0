//! lua-nginx-module master's upstream TLS hooks: `proxy_ssl_certificate_by_lua*`,
//! `proxy_ssl_verify_by_lua*` and `lua_upstream_skip_openssl_default_verify`,
//! at the levels of `proxy_pass` (location, `if` in location). The merge
//! hooks them into the proxy module's SSL_CTX (phase/proxy_ssl.rs).

use nginx_sys::ngx_command_t;

use super::args::{flag, set_once};
use super::{BLOCK, FLAG, LOC, LOC_CONF, TAKE1, cmd, code, conf_setters};
use crate::conf::LocConf;

pub const COMMANDS: [ngx_command_t; 5] = [
    cmd(
        c"proxy_ssl_certificate_by_lua_block",
        LOC | BLOCK,
        set_cert,
        LOC_CONF,
    ),
    cmd(
        c"proxy_ssl_certificate_by_lua_file",
        LOC | TAKE1,
        set_cert,
        LOC_CONF,
    ),
    cmd(
        c"proxy_ssl_verify_by_lua_block",
        LOC | BLOCK,
        set_verify,
        LOC_CONF,
    ),
    cmd(c"proxy_ssl_verify_by_lua_file", LOC | TAKE1, set_verify, LOC_CONF),
    cmd(
        c"lua_upstream_skip_openssl_default_verify",
        LOC | FLAG,
        set_skip_default_verify,
        LOC_CONF,
    ),
];

conf_setters! {
    fn set_cert(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.proxy_ssl_cert, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_verify(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.proxy_ssl_verify, unsafe { code::load(cf, cmd, 1) }?)
    }
    fn set_skip_default_verify(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.upstream_skip_openssl_default_verify, unsafe { flag(cf, cmd) }?)
    }
}
