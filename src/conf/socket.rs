//! The cosocket defaults of a location (`lua_socket_*`, `lua_ssl_*`).

use nginx_sys::ngx_msec_t;

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
    /// lua_ssl_key_log: the file TLS secrets of cosocket handshakes are
    /// appended to (NSS key log format).
    pub ssl_key_log: Option<Vec<u8>>,
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
        ssl_key_log: None,
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
            ssl_conf_commands,
            ssl_key_log
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
