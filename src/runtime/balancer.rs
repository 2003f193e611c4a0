//! The state of a balancer_by_lua* peer selection, shared by the phase that
//! runs the code (phase/balancer.rs) and `require "ngx.balancer"`
//! (api/balancer.rs).
//!
//! The selection running now is `RequestCtx::balancer_peer` of its request.
//! Not `r->upstream->peer.data`: a module wrapping the balancer (keepalive)
//! replaces that pointer with its own data, which is why lua-nginx-module
//! keeps the running selection aside too (in its main conf).

use nginx_sys::{
    ngx_http_request_t, ngx_http_upstream_rr_peer_data_t, ngx_str_t, ngx_uint_t, sockaddr, socklen_t,
};

use crate::conf::LuaCode;

/// Per-request peer data; nginx's round-robin functions get a pointer to it
/// as their own data, so `rrp` must come first.
#[repr(C)]
pub struct PeerData {
    pub rrp: ngx_http_upstream_rr_peer_data_t,
    /// The upstream's code, in the main conf (which outlives the request).
    pub code: *const LuaCode,
    pub r: *mut ngx_http_request_t,
    /// Tries added by set_more_tries during the running selection.
    pub more_tries: ngx_uint_t,
    /// How many selections ran for this request.
    pub total_tries: ngx_uint_t,
    /// The peer chosen by set_current_peer (null: round robin).
    pub sockaddr: *mut sockaddr,
    pub socklen: socklen_t,
    pub host: *mut ngx_str_t,
    /// How the last chosen peer ended (NGX_PEER_FAILED, NGX_PEER_NEXT; 0 none).
    pub last_state: ngx_uint_t,
    /// set_timeouts copied the upstream conf for this request.
    pub cloned_conf: bool,
}
