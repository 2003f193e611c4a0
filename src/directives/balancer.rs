//! `balancer_by_lua_block { ... }` and `balancer_by_lua_file <path>` in an
//! `upstream {}` block.
//!
//! The code is kept in the main configuration, keyed by the upstream block,
//! and the upstream's `init_upstream` becomes ours (phase/balancer.rs).

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_upstream_module, ngx_http_upstream_srv_conf_t,
    NGX_HTTP_UPSTREAM_CREATE, NGX_HTTP_UPSTREAM_DOWN, NGX_HTTP_UPSTREAM_FAIL_TIMEOUT,
    NGX_HTTP_UPSTREAM_MAX_FAILS, NGX_HTTP_UPSTREAM_WEIGHT, NGX_HTTP_UPS_CONF,
};

use super::args::ConfErr;
use super::{cmd, code, conf_setters, BLOCK, LOC_CONF, TAKE1};
use crate::conf::{main_conf_cf, LocConf};

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
    let ctx = &*((*cf).ctx as *const ngx_http_conf_ctx_t);
    *ctx.srv_conf.add(ngx_http_upstream_module.ctx_index) as *mut ngx_http_upstream_srv_conf_t
}

conf_setters! {
    fn set_balancer(cf, cmd, _: LocConf) {
        let uscf = upstream_conf(cf);
        let m = main_conf_cf(cf);
        if m.balancer(uscf).is_some() {
            return Err(ConfErr::Says(c"is duplicate"));
        }
        let code = code::load(cf, cmd, 1)?;
    m.balancers.push((uscf.cast(), code));
    if (*uscf).peer.init_upstream.is_some() {
        ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_WARN, cf, "load balancing method redefined");
    }
    (*uscf).peer.init_upstream = Some(crate::phase::balancer::init_upstream);
    (*uscf).flags = (NGX_HTTP_UPSTREAM_CREATE
        | NGX_HTTP_UPSTREAM_WEIGHT
        | NGX_HTTP_UPSTREAM_MAX_FAILS
        | NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
        | NGX_HTTP_UPSTREAM_DOWN) as _;
    Ok(())
}
}
