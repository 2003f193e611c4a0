//! TLS on a connected cosocket (`sslhandshake`).

use nginx_sys::ngx_event_t;

use super::tcp_sock::TcpSock;

/// State of a TLS session on a socket.
pub struct Handshake {}

/// Carries a pending handshake on when its connection is ready.
pub fn on_event(_s: &mut TcpSock, _ev: *mut ngx_event_t) {}

/// Starts `sslhandshake` on the socket of the method call in `l`.
///
/// # Safety
/// `l` is the running state of the method call.
pub unsafe fn start(
    _l: *mut super::lua::lua_State,
    _s: &mut TcpSock,
) -> Result<super::tcp_sock::Step, String> {
    Err("sslhandshake is not implemented yet by this ngx_http_lua_module".into())
}
