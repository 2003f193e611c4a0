//! `balancer_by_lua_block { ... }` and `balancer_by_lua_file <path>` in an
//! `upstream {}` block.
//!
//! The code is kept in the main configuration, keyed by the upstream block,
//! and the upstream's `init_upstream` becomes ours (phase/balancer.rs).

use nginx_sys::{
    NGX_HTTP_UPS_CONF, NGX_HTTP_UPSTREAM_CREATE, NGX_HTTP_UPSTREAM_DOWN, NGX_HTTP_UPSTREAM_FAIL_TIMEOUT,
    NGX_HTTP_UPSTREAM_MAX_FAILS, NGX_HTTP_UPSTREAM_WEIGHT, ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t,
    ngx_http_upstream_module, ngx_http_upstream_srv_conf_t,
};

use super::args::ConfErr;
use super::{BLOCK, LOC_CONF, TAKE1, cmd, code, conf_setters};
use crate::conf::{LocConf, main_conf_cf};

pub const COMMANDS: [ngx_command_t; 2] = [
    cmd(
        c"balancer_by_lua_block",
        NGX_HTTP_UPS_CONF | BLOCK,
        set_balancer,
        LOC_CONF,
    ),
    cmd(
        c"balancer_by_lua_file",
        NGX_HTTP_UPS_CONF | TAKE1,
        set_balancer,
        LOC_CONF,
    ),
];

/// The upstream block being parsed.
unsafe fn upstream_conf(cf: *mut ngx_conf_t) -> *mut ngx_http_upstream_srv_conf_t {
    // SAFETY: `cf` is parsing an upstream block: its ctx is an http conf ctx
    let ctx = unsafe { &*((*cf).ctx as *const ngx_http_conf_ctx_t) };
    // SAFETY: srv_conf has a slot per http module, the upstream module's among them
    (unsafe { *ctx.srv_conf.add(ngx_http_upstream_module.ctx_index) }) as *mut ngx_http_upstream_srv_conf_t
}

conf_setters! {
    fn set_balancer(cf, cmd, _: LocConf) {
        // SAFETY: balancer_by_lua* is allowed only in upstream blocks (NGX_HTTP_UPS_CONF)
        let uscf = unsafe { upstream_conf(cf) };
        // SAFETY: `cf` is inside the http block
        let m = unsafe { main_conf_cf(cf) };
        if m.balancer(uscf).is_some() {
            return Err(ConfErr::Says(c"is duplicate"));
        }
        // SAFETY: nginx calls setters with the conf being parsed and this directive's entry
        let code = unsafe { code::load(cf, cmd, 1) }?;
    m.balancers.push((uscf.cast(), code));
    // SAFETY: `uscf` is the live conf of the upstream block being parsed
    if unsafe { (*uscf).peer.init_upstream.is_some() } {
        ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_WARN, cf, "load balancing method redefined");
    }
    // SAFETY: `uscf` is the live conf of the upstream block being parsed
    unsafe { (*uscf).peer.init_upstream = Some(crate::phase::balancer::init_upstream); }
    // SAFETY: `uscf` is the live conf of the upstream block being parsed
    unsafe { (*uscf).flags = (NGX_HTTP_UPSTREAM_CREATE
        | NGX_HTTP_UPSTREAM_WEIGHT
        | NGX_HTTP_UPSTREAM_MAX_FAILS
        | NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
        | NGX_HTTP_UPSTREAM_DOWN) as _; }
    Ok(())
}
}
