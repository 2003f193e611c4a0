//! `balancer_by_lua_block { ... }` and `balancer_by_lua_file <path>` in an
//! `upstream {}` block.
//!
//! The code is kept in the main configuration, keyed by the upstream block,
//! and the upstream's `init_upstream` becomes ours (phase/balancer.rs).

use std::ffi::{c_char, c_void};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_upstream_module, ngx_http_upstream_srv_conf_t,
    ngx_str_t, NGX_CONF_BLOCK, NGX_CONF_NOARGS, NGX_HTTP_UPSTREAM_CREATE, NGX_HTTP_UPSTREAM_DOWN,
    NGX_HTTP_UPSTREAM_FAIL_TIMEOUT, NGX_HTTP_UPSTREAM_MAX_FAILS, NGX_HTTP_UPSTREAM_WEIGHT, NGX_HTTP_UPS_CONF,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::chunk::{self, LuaCode};
use super::directives::{cmd, file_path, L, T1};
use super::{lua_block, MainConf};
use crate::conf::main_conf_cf;

pub const COMMANDS: [ngx_command_t; 2] = [
    cmd(
        c"balancer_by_lua_block",
        NGX_HTTP_UPS_CONF | NGX_CONF_BLOCK | NGX_CONF_NOARGS,
        set_balancer,
        L,
        0,
    ),
    cmd(
        c"balancer_by_lua_file",
        NGX_HTTP_UPS_CONF | T1,
        set_balancer,
        L,
        0,
    ),
];

unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
    ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_EMERG, cf, "{}", msg);
    NGX_CONF_ERROR
}

unsafe extern "C" fn set_balancer(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing an upstream block.
        unsafe { set_inner(cf, cmd) }
    })
}

/// The upstream block being parsed.
unsafe fn upstream_conf(cf: *mut ngx_conf_t) -> *mut ngx_http_upstream_srv_conf_t {
    let ctx = &*((*cf).ctx as *const ngx_http_conf_ctx_t);
    *ctx.srv_conf.add(ngx_http_upstream_module.ctx_index) as *mut ngx_http_upstream_srv_conf_t
}

/// The balancer code of an upstream block, if it has one.
pub fn find(m: &MainConf, uscf: *const ngx_http_upstream_srv_conf_t) -> Option<&LuaCode> {
    m.balancers
        .iter()
        .find(|(u, _)| *u == uscf.cast())
        .map(|(_, c)| c)
}

unsafe fn set_inner(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t) -> *mut c_char {
    let uscf = upstream_conf(cf);
    let m = main_conf_cf(cf);
    if find(m, uscf).is_some() {
        return c"is duplicate".as_ptr() as *mut c_char;
    }
    let code = if (*cmd).name.as_bytes().ends_with(b"_file") {
        let arg = (*(*cf).args).as_slice::<ngx_str_t>()[1];
        match file_path(cf, arg) {
            Ok(p) => LuaCode::file(p),
            Err(e) => return conf_error(cf, &e),
        }
    } else {
        let chunk_name = chunk::inline_name(cf, "balancer_by_lua");
        let src = match lua_block::read(cf) {
            Ok(s) => s,
            Err(e) => return conf_error(cf, &e),
        };
        LuaCode::inline(src, chunk_name)
    };
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
    NGX_CONF_OK
}
