//! `lua_socket_*` and `lua_ssl_*` directives: the cosocket defaults of a
//! location.

use std::ffi::{c_char, c_void};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_msec_t, ngx_parse_size, ngx_parse_time, ngx_str_t, NGX_CONF_1MORE,
    NGX_CONF_FLAG, NGX_CONF_TAKE2, NGX_ERROR, NGX_HTTP_LOC_CONF, NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::directives::{cmd, L, T1};
use super::LocConf;

/// The socket settings of a location (None = not set at this level).
#[derive(Default, Clone)]
pub struct SocketConf {
    pub connect_timeout: Option<ngx_msec_t>,
    pub send_timeout: Option<ngx_msec_t>,
    pub read_timeout: Option<ngx_msec_t>,
    pub keepalive_timeout: Option<ngx_msec_t>,
    pub buffer_size: Option<usize>,
    pub pool_size: Option<usize>,
    pub send_lowat: Option<usize>,
    pub log_errors: Option<bool>,
    pub ssl_trusted_certificate: Option<Vec<u8>>,
    pub ssl_verify_depth: Option<usize>,
    pub ssl_protocols: Option<Vec<Vec<u8>>>,
    pub ssl_ciphers: Option<Vec<u8>>,
    pub ssl_certificate: Option<Vec<u8>>,
    pub ssl_certificate_key: Option<Vec<u8>>,
    pub ssl_crl: Option<Vec<u8>>,
    pub ssl_conf_commands: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

macro_rules! inherit_all {
    ($s:ident, $p:ident, $($f:ident),*) => { $( if $s.$f.is_none() { $s.$f.clone_from(&$p.$f); } )* };
}

impl SocketConf {
    /// Nothing set: every value at its default.
    pub const EMPTY: SocketConf = SocketConf {
        connect_timeout: None,
        send_timeout: None,
        read_timeout: None,
        keepalive_timeout: None,
        buffer_size: None,
        pool_size: None,
        send_lowat: None,
        log_errors: None,
        ssl_trusted_certificate: None,
        ssl_verify_depth: None,
        ssl_protocols: None,
        ssl_ciphers: None,
        ssl_certificate: None,
        ssl_certificate_key: None,
        ssl_crl: None,
        ssl_conf_commands: None,
    };

    pub fn merge(&mut self, prev: &SocketConf) {
        inherit_all!(
            self,
            prev,
            connect_timeout,
            send_timeout,
            read_timeout,
            keepalive_timeout,
            buffer_size,
            pool_size,
            send_lowat,
            log_errors,
            ssl_trusted_certificate,
            ssl_verify_depth,
            ssl_protocols,
            ssl_ciphers,
            ssl_certificate,
            ssl_certificate_key,
            ssl_crl,
            ssl_conf_commands
        );
    }
    pub fn connect_timeout(&self) -> ngx_msec_t {
        self.connect_timeout.unwrap_or(60000)
    }
    pub fn send_timeout(&self) -> ngx_msec_t {
        self.send_timeout.unwrap_or(60000)
    }
    pub fn read_timeout(&self) -> ngx_msec_t {
        self.read_timeout.unwrap_or(60000)
    }
    pub fn keepalive_timeout(&self) -> ngx_msec_t {
        self.keepalive_timeout.unwrap_or(60000)
    }
    pub fn buffer_size(&self) -> usize {
        self.buffer_size.unwrap_or(4096).max(1)
    }
    pub fn pool_size(&self) -> usize {
        self.pool_size.unwrap_or(30)
    }
    pub fn send_lowat(&self) -> usize {
        self.send_lowat.unwrap_or(0)
    }
    pub fn log_errors(&self) -> bool {
        self.log_errors.unwrap_or(true)
    }
    pub fn ssl_verify_depth(&self) -> usize {
        self.ssl_verify_depth.unwrap_or(1)
    }
}

#[derive(Clone, Copy)]
#[repr(usize)]
enum Id {
    ConnectTimeout,
    SendTimeout,
    ReadTimeout,
    KeepaliveTimeout,
    BufferSize,
    PoolSize,
    SendLowat,
    LogErrors,
    TrustedCert,
    VerifyDepth,
    Protocols,
    Ciphers,
    Certificate,
    CertificateKey,
    Crl,
    ConfCommand,
}

const ANY: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

pub const COMMANDS: [ngx_command_t; 16] = [
    cmd(
        c"lua_socket_connect_timeout",
        ANY | T1,
        set,
        L,
        Id::ConnectTimeout as usize,
    ),
    cmd(
        c"lua_socket_send_timeout",
        ANY | T1,
        set,
        L,
        Id::SendTimeout as usize,
    ),
    cmd(
        c"lua_socket_read_timeout",
        ANY | T1,
        set,
        L,
        Id::ReadTimeout as usize,
    ),
    cmd(
        c"lua_socket_keepalive_timeout",
        ANY | T1,
        set,
        L,
        Id::KeepaliveTimeout as usize,
    ),
    cmd(
        c"lua_socket_buffer_size",
        ANY | T1,
        set,
        L,
        Id::BufferSize as usize,
    ),
    cmd(c"lua_socket_pool_size", ANY | T1, set, L, Id::PoolSize as usize),
    cmd(c"lua_socket_send_lowat", ANY | T1, set, L, Id::SendLowat as usize),
    cmd(
        c"lua_socket_log_errors",
        ANY | NGX_CONF_FLAG,
        set,
        L,
        Id::LogErrors as usize,
    ),
    cmd(
        c"lua_ssl_trusted_certificate",
        ANY | T1,
        set,
        L,
        Id::TrustedCert as usize,
    ),
    cmd(
        c"lua_ssl_verify_depth",
        ANY | T1,
        set,
        L,
        Id::VerifyDepth as usize,
    ),
    cmd(
        c"lua_ssl_protocols",
        ANY | NGX_CONF_1MORE,
        set,
        L,
        Id::Protocols as usize,
    ),
    cmd(c"lua_ssl_ciphers", ANY | T1, set, L, Id::Ciphers as usize),
    cmd(c"lua_ssl_certificate", ANY | T1, set, L, Id::Certificate as usize),
    cmd(
        c"lua_ssl_certificate_key",
        ANY | T1,
        set,
        L,
        Id::CertificateKey as usize,
    ),
    cmd(c"lua_ssl_crl", ANY | T1, set, L, Id::Crl as usize),
    cmd(
        c"lua_ssl_conf_command",
        ANY | NGX_CONF_TAKE2,
        set,
        L,
        Id::ConfCommand as usize,
    ),
];

const IDS: [Id; 16] = [
    Id::ConnectTimeout,
    Id::SendTimeout,
    Id::ReadTimeout,
    Id::KeepaliveTimeout,
    Id::BufferSize,
    Id::PoolSize,
    Id::SendLowat,
    Id::LogErrors,
    Id::TrustedCert,
    Id::VerifyDepth,
    Id::Protocols,
    Id::Ciphers,
    Id::Certificate,
    Id::CertificateKey,
    Id::Crl,
    Id::ConfCommand,
];

unsafe extern "C" fn set(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing, with our LocConf for the level.
        unsafe {
            let args = (*(*cf).args).as_slice::<ngx_str_t>();
            let s = &mut (*(conf as *mut LocConf)).socket;
            match set_value(s, IDS[(*cmd).offset], args) {
                Ok(()) => NGX_CONF_OK,
                Err(e) => e.as_ptr() as *mut c_char,
            }
        }
    })
}

fn dup<T>(slot: &mut Option<T>, v: T) -> Result<(), &'static std::ffi::CStr> {
    if slot.is_some() {
        return Err(c"is duplicate");
    }
    *slot = Some(v);
    Ok(())
}

unsafe fn set_value(s: &mut SocketConf, id: Id, args: &[ngx_str_t]) -> Result<(), &'static std::ffi::CStr> {
    let mut v = args[1];
    let time = |v: &mut ngx_str_t| {
        let t = ngx_parse_time(v, 0);
        if t == NGX_ERROR as isize {
            Err(c"invalid value")
        } else {
            Ok(t as ngx_msec_t)
        }
    };
    let size = |v: &mut ngx_str_t| {
        let n = ngx_parse_size(v);
        if n == NGX_ERROR as isize {
            Err(c"invalid value")
        } else {
            Ok(n as usize)
        }
    };
    let num = |v: &ngx_str_t| {
        std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .ok_or(c"invalid number")
    };
    match id {
        Id::ConnectTimeout => dup(&mut s.connect_timeout, time(&mut v)?),
        Id::SendTimeout => dup(&mut s.send_timeout, time(&mut v)?),
        Id::ReadTimeout => dup(&mut s.read_timeout, time(&mut v)?),
        Id::KeepaliveTimeout => dup(&mut s.keepalive_timeout, time(&mut v)?),
        Id::BufferSize => dup(&mut s.buffer_size, size(&mut v)?),
        Id::SendLowat => dup(&mut s.send_lowat, size(&mut v)?),
        Id::PoolSize => {
            let n = num(&v)?;
            if n == 0 {
                return Err(c"must not be 0");
            }
            dup(&mut s.pool_size, n)
        }
        Id::VerifyDepth => dup(&mut s.ssl_verify_depth, num(&v)?),
        Id::LogErrors => {
            let b = v.as_bytes();
            let on = if b.eq_ignore_ascii_case(b"on") {
                true
            } else if b.eq_ignore_ascii_case(b"off") {
                false
            } else {
                return Err(c"it must be \"on\" or \"off\"");
            };
            dup(&mut s.log_errors, on)
        }
        Id::TrustedCert => dup(&mut s.ssl_trusted_certificate, v.as_bytes().to_vec()),
        Id::Ciphers => dup(&mut s.ssl_ciphers, v.as_bytes().to_vec()),
        Id::Certificate => dup(&mut s.ssl_certificate, v.as_bytes().to_vec()),
        Id::CertificateKey => dup(&mut s.ssl_certificate_key, v.as_bytes().to_vec()),
        Id::Crl => dup(&mut s.ssl_crl, v.as_bytes().to_vec()),
        Id::ConfCommand => {
            // Repeatable: every occurrence adds a command.
            let cmds = s.ssl_conf_commands.get_or_insert_with(Vec::new);
            cmds.push((v.as_bytes().to_vec(), args[2].as_bytes().to_vec()));
            Ok(())
        }
        Id::Protocols => dup(
            &mut s.ssl_protocols,
            args[1..].iter().map(|a| a.as_bytes().to_vec()).collect(),
        ),
    }
}
