//! `lua_socket_*` and `lua_ssl_*` directives: the cosocket defaults of a
//! location.

use nginx_sys::{
    NGX_ERROR, NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF, ngx_command_t, ngx_conf_t,
    ngx_msec_t, ngx_parse_size, ngx_parse_time,
};

use super::args::{ConfErr, arg, arg_str, number, set_once};
use super::{FLAG, LOC_CONF, ONE_OR_MORE, TAKE1, TAKE2, cmd, conf_setters};
use crate::conf::LocConf;

/// A time such as `60s` or `500ms`.
unsafe fn time(cf: *mut ngx_conf_t) -> Result<ngx_msec_t, ConfErr> {
    // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
    let t = unsafe { ngx_parse_time(&mut arg_str(cf, 1), 0) };
    if t == NGX_ERROR as isize {
        return Err(ConfErr::Says(c"invalid value"));
    }
    Ok(t as ngx_msec_t)
}

/// A size such as `4k`.
unsafe fn size(cf: *mut ngx_conf_t) -> Result<usize, ConfErr> {
    // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
    let n = unsafe { ngx_parse_size(&mut arg_str(cf, 1)) };
    if n == NGX_ERROR as isize {
        return Err(ConfErr::Says(c"invalid value"));
    }
    Ok(n as usize)
}

/// The first argument as bytes.
unsafe fn bytes(cf: *mut ngx_conf_t) -> Vec<u8> {
    // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
    (unsafe { arg(cf, 1) }).to_vec()
}

conf_setters! {
    fn set_connect_timeout(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.connect_timeout, unsafe { time(cf) }?)
    }
    fn set_send_timeout(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.send_timeout, unsafe { time(cf) }?)
    }
    fn set_read_timeout(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.read_timeout, unsafe { time(cf) }?)
    }
    fn set_keepalive_timeout(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.keepalive_timeout, unsafe { time(cf) }?)
    }
    fn set_buffer_size(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.buffer_size, unsafe { size(cf) }?)
    }
    fn set_send_lowat(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.send_lowat, unsafe { size(cf) }?)
    }
    fn set_pool_size(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let n = number(unsafe { arg(cf, 1) })?;
        if n == 0 {
            return Err(ConfErr::Says(c"must not be 0"));
        }
        set_once(&mut l.socket.pool_size, n)
    }
    fn set_verify_depth(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.ssl_verify_depth, number(unsafe { arg(cf, 1) })?)
    }
    /// Its own wording for a value other than on|off (not args::flag's).
    fn set_log_errors(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let b = unsafe { arg(cf, 1) };
        let on = if b.eq_ignore_ascii_case(b"on") {
            true
        } else if b.eq_ignore_ascii_case(b"off") {
            false
        } else {
            return Err(ConfErr::Says(c"it must be \"on\" or \"off\""));
        };
        set_once(&mut l.socket.log_errors, on)
    }
    fn set_trusted_certificate(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.ssl_trusted_certificate, unsafe { bytes(cf) })
    }
    fn set_ciphers(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.ssl_ciphers, unsafe { bytes(cf) })
    }
    fn set_certificate(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.ssl_certificate, unsafe { bytes(cf) })
    }
    fn set_certificate_key(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.ssl_certificate_key, unsafe { bytes(cf) })
    }
    /// Relative to nginx's prefix, as lua-nginx-module's master resolves it.
    fn set_key_log(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let path = crate::glue::complex::prefix_join(unsafe { (*(*cf).cycle).prefix.as_bytes() }, &unsafe { bytes(cf) });
        set_once(&mut l.socket.ssl_key_log, path)
    }
    fn set_crl(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.socket.ssl_crl, unsafe { bytes(cf) })
    }
    fn set_protocols(cf, _, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let args = unsafe { (*(*cf).args).as_slice::<nginx_sys::ngx_str_t>() };
        set_once(
            &mut l.socket.ssl_protocols,
            args[1..].iter().map(|a| a.as_bytes().to_vec()).collect(),
        )
    }
    /// Repeatable: every occurrence adds a command.
    fn set_conf_command(cf, _, l: LocConf) {
        let cmds = l.socket.ssl_conf_commands.get_or_insert_with(Vec::new);
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        cmds.push((unsafe { arg(cf, 1) }.to_vec(), unsafe { arg(cf, 2) }.to_vec()));
        Ok(())
    }
}

const ANY: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

pub const COMMANDS: [ngx_command_t; 17] = [
    cmd(
        c"lua_socket_connect_timeout",
        ANY | TAKE1,
        set_connect_timeout,
        LOC_CONF,
    ),
    cmd(
        c"lua_socket_send_timeout",
        ANY | TAKE1,
        set_send_timeout,
        LOC_CONF,
    ),
    cmd(
        c"lua_socket_read_timeout",
        ANY | TAKE1,
        set_read_timeout,
        LOC_CONF,
    ),
    cmd(
        c"lua_socket_keepalive_timeout",
        ANY | TAKE1,
        set_keepalive_timeout,
        LOC_CONF,
    ),
    cmd(c"lua_socket_buffer_size", ANY | TAKE1, set_buffer_size, LOC_CONF),
    cmd(c"lua_socket_pool_size", ANY | TAKE1, set_pool_size, LOC_CONF),
    cmd(c"lua_socket_send_lowat", ANY | TAKE1, set_send_lowat, LOC_CONF),
    cmd(c"lua_socket_log_errors", ANY | FLAG, set_log_errors, LOC_CONF),
    cmd(
        c"lua_ssl_trusted_certificate",
        ANY | TAKE1,
        set_trusted_certificate,
        LOC_CONF,
    ),
    cmd(c"lua_ssl_verify_depth", ANY | TAKE1, set_verify_depth, LOC_CONF),
    cmd(c"lua_ssl_protocols", ANY | ONE_OR_MORE, set_protocols, LOC_CONF),
    cmd(c"lua_ssl_ciphers", ANY | TAKE1, set_ciphers, LOC_CONF),
    cmd(c"lua_ssl_certificate", ANY | TAKE1, set_certificate, LOC_CONF),
    cmd(
        c"lua_ssl_certificate_key",
        ANY | TAKE1,
        set_certificate_key,
        LOC_CONF,
    ),
    cmd(c"lua_ssl_crl", ANY | TAKE1, set_crl, LOC_CONF),
    cmd(c"lua_ssl_conf_command", ANY | TAKE2, set_conf_command, LOC_CONF),
    cmd(c"lua_ssl_key_log", ANY | TAKE1, set_key_log, LOC_CONF),
];
