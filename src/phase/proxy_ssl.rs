//! proxy_ssl_certificate_by_lua* and proxy_ssl_verify_by_lua*: code run in
//! the upstream TLS handshake nginx's proxy module makes for a request.
//!
//! As lua-nginx-module master does, the merge of a location with such code
//! sets OpenSSL callbacks on the proxy module's SSL_CTX of that location
//! (`ngx_http_proxy_loc_conf_t` starts with its `ngx_http_upstream_conf_t`,
//! whose `ssl` holds it). That SSL_CTX can be shared with locations that
//! inherit it without code of their own: there the callbacks do what
//! OpenSSL would (no client certificate, the default chain check).
//!
//! The code runs to its end inside the callback, on the client request (as
//! balancer_by_lua* does): stock nginx cannot resume an upstream handshake
//! whose callback waited (lua-nginx-module needs its nginx patch for that),
//! so the API that waits is disabled in these contexts.

use std::ffi::{CStr, c_int, c_void};

use nginx_sys::{
    NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_EMERG, NGX_LOG_ERR, SSL, SSL_CTX, SSL_CTX_set_cert_cb,
    SSL_CTX_set_cert_verify_callback, SSL_get_ex_data_X509_STORE_CTX_idx, X509_STORE_CTX,
    X509_STORE_CTX_get_ex_data, X509_verify_cert, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_request_t,
    ngx_http_upstream_conf_t, ngx_int_t,
};
use ngx::core::Status;
use ngx::http::Request;

use super::resolve;
use crate::conf::{LocConf, LuaCode};
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::runtime::context::{self, Context};
use crate::runtime::ctx::RequestCtx;
use crate::runtime::{proxy_ssl, run_sync};

/// The proxy module's SSL_CTX of the location being merged (null when its
/// `proxy_pass` is not https).
unsafe fn proxy_ssl_ctx(cf: *mut ngx_conf_t) -> *mut SSL_CTX {
    // SAFETY: cf is the configuration being merged: its ctx holds the
    // location's module confs, and the cycle lists the loaded modules.
    unsafe {
        let cycle = (*cf).cycle;
        let modules = (*cycle).modules;
        for i in 0..(*cycle).modules_n {
            let m = *modules.add(i);
            if m.is_null() || (*m).name.is_null() || CStr::from_ptr((*m).name) != c"ngx_http_proxy_module" {
                continue;
            }
            let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
            let plcf = *(*ctx).loc_conf.add((*m).ctx_index) as *mut ngx_http_upstream_conf_t;
            if plcf.is_null() || (*plcf).ssl.is_null() {
                return std::ptr::null_mut();
            }
            return (*(*plcf).ssl).ctx as *mut SSL_CTX;
        }
        std::ptr::null_mut()
    }
}

/// Sets the upstream handshake's callbacks for a merged location `conf`.
///
/// # Safety
/// `cf` is the configuration being merged (the proxy module merged before
/// ours: it comes first in the module list).
pub unsafe fn hook(cf: *mut ngx_conf_t, conf: &LocConf) -> ngx_int_t {
    if conf.proxy_ssl_cert.is_none() && conf.proxy_ssl_verify.is_none() {
        return Status::NGX_OK.into();
    }
    // SAFETY: per the contract.
    unsafe {
        let ssl_ctx = proxy_ssl_ctx(cf);
        let need = |what: &str| {
            nlog::log_error!(
                (*cf).log,
                NGX_LOG_EMERG,
                "{what} should be used with proxy_pass https url"
            );
            Status::NGX_ERROR.into()
        };
        if conf.proxy_ssl_cert.is_some() {
            if ssl_ctx.is_null() {
                return need("proxy_ssl_certificate_by_lua*");
            }
            SSL_CTX_set_cert_cb(ssl_ctx, Some(cert_cb), std::ptr::null_mut());
        }
        if conf.proxy_ssl_verify.is_some() {
            if ssl_ctx.is_null() {
                return need("proxy_ssl_verify_by_lua*");
            }
            SSL_CTX_set_cert_verify_callback(ssl_ctx, Some(verify_cb), std::ptr::null_mut());
        }
        Status::NGX_OK.into()
    }
}

/// The request an upstream SSL object works for (the upstream connection's
/// `data`), and its location's conf.
unsafe fn request_of(ssl: *const SSL) -> Option<(*mut ngx_http_request_t, &'static LocConf)> {
    // SAFETY: ssl is nginx's SSL object of an upstream connection, whose
    // data is the request (ngx_http_upstream_connect).
    unsafe {
        let c = super::ssl::connection_of(ssl);
        if c.is_null() || (*c).data.is_null() {
            return None;
        }
        let r = (*c).data as *mut ngx_http_request_t;
        if (*r).upstream.is_null() {
            return None;
        }
        Some((r, crate::conf::loc_conf(r)))
    }
}

/// A phase's names for its log lines.
struct Names {
    context: Context,
    action: &'static CStr,
    directive: &'static str,
    cb: &'static str,
}

const CERT: Names = Names {
    context: context::PROXY_SSL_CERT,
    action: c"loading proxy ssl certificate by lua",
    directive: "proxy_ssl_certificate_by_lua",
    cb: "cert cb",
};

const VERIFY: Names = Names {
    context: context::PROXY_SSL_VERIFY,
    action: c"loading proxy ssl verify by lua",
    directive: "proxy_ssl_verify_by_lua",
    cb: "cert verify callback",
};

/// Runs `code` on `r`: 1 (go on) or 0 (fail), as lua-nginx-module's exit
/// code of these callbacks (an error, `ngx.exit(ngx.ERROR)` or a status of
/// 300 or more fail).
unsafe fn run(r: *mut ngx_http_request_t, code: &LuaCode, names: &Names) -> c_int {
    // SAFETY: r is the live request of the upstream connection.
    unsafe {
        let c = (*(*r).upstream).peer.connection;
        let request_log = (*(*r).connection).log;
        let log = if c.is_null() { request_log } else { (*c).log };
        if !c.is_null() {
            (*(*c).log).action = names.action.as_ptr() as *mut _;
        }
        let res = run_code(r, code, names.context);
        let (rc, exit_code) = match &res {
            Err(e) => {
                nlog::log_error!(
                    request_log,
                    NGX_LOG_ERR,
                    "lua entry thread aborted: runtime error: {e}"
                );
                (Status::NGX_ERROR.0, 0)
            }
            Ok(Some(code)) => {
                let fail = *code == Status::NGX_ERROR.0 || *code >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t;
                (*code, (!fail) as c_int)
            }
            Ok(None) => (Status::NGX_OK.0, 1),
        };
        let (directive, cb) = (names.directive, names.cb);
        nlog::log_debug_http!(
            log,
            "{directive}: handler return value: {rc}, {cb} exit code: {exit_code}"
        );
        if !c.is_null() {
            (*(*c).log).action = c"proxy pass SSL handshaking".as_ptr() as *mut _;
        }
        exit_code
    }
}

/// Calls the code as a plain call in `phase`; the status it passed to
/// `ngx.exit`, if any.
unsafe fn run_code(
    r: *mut ngx_http_request_t,
    code: &LuaCode,
    phase: Context,
) -> Result<Option<ngx_int_t>, String> {
    // SAFETY: r is a live request; the worker's VM is set.
    unsafe {
        let ctx = RequestCtx::get_or_create(Request::from_ngx_http_request(r)).ok_or("no memory")?;
        let _vm = ctx.enter_vm();
        let (func, owned) = resolve(r, code)?;
        let saved_context = ctx.context;
        ctx.context = phase;
        let outer = ctx.exit_code.take();
        let res = run_sync::in_request(ctx, phase, func, 0, 0).map(|_| ());
        let exited = std::mem::replace(&mut ctx.exit_code, outer);
        ctx.context = saved_context;
        if owned && let Some(vm) = vm::current() {
            vm.unref(func);
        }
        res.map(|_| exited)
    }
}

unsafe extern "C" fn cert_cb(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    crate::glue::catch(0, || {
        // SAFETY: OpenSSL calls back during an upstream handshake of nginx's.
        unsafe {
            let Some((r, lcf)) = request_of(ssl) else {
                return 0;
            };
            // A location sharing the SSL_CTX without code: no certificate.
            let Some(code) = lcf.proxy_ssl_cert.clone() else {
                return 1;
            };
            run(r, &code, &CERT)
        }
    })
}

unsafe extern "C" fn verify_cb(store: *mut X509_STORE_CTX, _arg: *mut c_void) -> c_int {
    crate::glue::catch(0, || {
        // SAFETY: OpenSSL calls back with the check of an upstream
        // handshake's certificate chain; its SSL object is in the store.
        unsafe {
            let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()) as *mut SSL;
            let Some((r, lcf)) = request_of(ssl) else {
                return 0;
            };
            let Some(code) = lcf.proxy_ssl_verify.clone() else {
                return X509_verify_cert(store);
            };
            if !lcf.upstream_skip_openssl_default_verify() {
                let c = super::ssl::connection_of(ssl);
                nlog::log_debug_http!((*c).log, "proxy_ssl_verify_by_lua: openssl default verify");
                // As lua-nginx-module: a chain OpenSSL rejects fails
                // without running the code.
                if X509_verify_cert(store) == 0 {
                    return 0;
                }
            }
            let _store = proxy_ssl::StoreGuard::enter(ssl, store);
            run(r, &code, &VERIFY)
        }
    })
}
