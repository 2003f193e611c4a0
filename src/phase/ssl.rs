//! The TLS handshake's hooks: postconfiguration sets OpenSSL callbacks on
//! each server's SSL_CTX (as lua-nginx-module's merge_srv_conf does), and
//! ssl_client_hello_by_lua* and ssl_certificate_by_lua* run from them. The
//! session hooks are in ssl_session.rs.

use std::ffi::{CStr, c_int, c_void};

use nginx_sys::{
    NGX_LOG_ALERT, NGX_LOG_EMERG, NGX_LOG_ERR, SSL, SSL_CTX_sess_set_get_cb, SSL_CTX_sess_set_new_cb,
    SSL_CTX_set_cert_cb, SSL_CTX_set_client_hello_cb, SSL_get_ex_data, ngx_conf_t, ngx_connection_t,
    ngx_http_conf_ctx_t, ngx_http_core_srv_conf_t, ngx_http_ssl_module, ngx_http_ssl_srv_conf_t, ngx_int_t,
    ngx_ssl_connection_index,
};
use ngx::core::Status;
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use super::resolve;
use crate::conf::{LocConf, LuaCode};
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::runtime::context::{self, Context};
use crate::runtime::ctx::Outcome;
use crate::runtime::ssl_hs::{self, HsCtx};

/// Hooks the handshake code of every server into its SSL_CTX.
///
/// # Safety
/// `cf` is the http block's configuration, after the servers' merge.
pub unsafe fn install(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: per the contract: the core module's servers and each
    // server's module confs are merged and live.
    unsafe {
        let cmcf = NgxHttpCoreModule::main_conf_mut(&*((*cf).ctx as *const ngx_http_conf_ctx_t))
            .expect("core main conf");
        let servers = cmcf.servers.elts as *mut *mut ngx_http_core_srv_conf_t;
        let lua_index = crate::conf::module().ctx_index;
        for i in 0..cmcf.servers.nelts {
            let cscf = *servers.add(i);
            let ctx = (*cscf).ctx;
            let lcf = &*(*(*ctx).loc_conf.add(lua_index) as *const LocConf);
            let sscf = *(*ctx).srv_conf.add(ngx_http_ssl_module.ctx_index) as *mut ngx_http_ssl_srv_conf_t;
            let ssl_ctx = if sscf.is_null() {
                std::ptr::null_mut()
            } else {
                (*sscf).ssl.ctx as *mut nginx_sys::SSL_CTX
            };
            if lcf.ssl_client_hello.is_some() || lcf.ssl_cert.is_some() {
                if ssl_ctx.is_null() {
                    ngx::ngx_conf_log_error!(NGX_LOG_EMERG, cf, "no ssl configured for the server");
                    return Status::NGX_ERROR.into();
                }
                if !ssl_hs::init() {
                    return Status::NGX_ERROR.into();
                }
            }
            if ssl_ctx.is_null() {
                continue;
            }
            if lcf.ssl_client_hello.is_some() {
                SSL_CTX_set_client_hello_cb(ssl_ctx, Some(client_hello_cb), std::ptr::null_mut());
            }
            if lcf.ssl_cert.is_some() {
                SSL_CTX_set_cert_cb(ssl_ctx, Some(cert_cb), std::ptr::null_mut());
            }
            if (lcf.ssl_sess_store.is_some() || lcf.ssl_sess_fetch.is_some()) && !ssl_hs::init() {
                return Status::NGX_ERROR.into();
            }
            if lcf.ssl_sess_store.is_some() {
                SSL_CTX_sess_set_new_cb(ssl_ctx, Some(super::ssl_session::store_cb));
            }
            if lcf.ssl_sess_fetch.is_some() {
                SSL_CTX_sess_set_get_cb(ssl_ctx, Some(super::ssl_session::fetch_cb));
            }
        }
        Status::NGX_OK.into()
    }
}

/// The nginx connection of an SSL object (`ngx_ssl_get_connection`).
///
/// # Safety
/// `ssl` must be an SSL object nginx created for a connection.
pub unsafe fn connection_of(ssl: *const SSL) -> *mut ngx_connection_t {
    // SAFETY: nginx stores the connection in this ex_data slot.
    unsafe { SSL_get_ex_data(ssl, ngx_ssl_connection_index) as *mut ngx_connection_t }
}

/// The handshake code of the server the handshake has chosen so far.
unsafe fn server_code(c: *mut ngx_connection_t, pick: fn(&LocConf) -> &Option<LuaCode>) -> Option<LuaCode> {
    // SAFETY: during the handshake c->data is the ngx_http_connection_t.
    unsafe {
        let hc = (*c).data as *mut nginx_sys::ngx_http_connection_t;
        let lua_index = crate::conf::module().ctx_index;
        let lcf = *(*(*hc).conf_ctx).loc_conf.add(lua_index) as *const LocConf;
        lcf.as_ref().and_then(|l| pick(l).clone())
    }
}

/// The server's name, for the alert about a server without code.
unsafe fn server_name<'a>(c: *mut ngx_connection_t) -> nlog::Lossy<'a> {
    // SAFETY: as in server_code; the server's conf lives as long as the cycle.
    unsafe {
        let hc = (*c).data as *mut nginx_sys::ngx_http_connection_t;
        let cscf = *(*(*hc).conf_ctx)
            .srv_conf
            .add(nginx_sys::ngx_http_core_module.ctx_index)
            as *const ngx_http_core_srv_conf_t;
        nlog::Lossy((*cscf).server_name.as_bytes())
    }
}

/// A phase's names for its log lines.
pub struct Names {
    pub context: Context,
    /// What `c->log->action` says while its code runs.
    pub action: &'static CStr,
    /// Prefix of its debug lines ("lua_certificate_by_lua").
    pub debug: &'static str,
    /// "cert cb" / "client hello cb".
    pub cb: &'static str,
    pub directive: &'static str,
}

const CERT: Names = Names {
    context: context::SSL_CERT,
    action: c"loading SSL certificate by lua",
    debug: "lua_certificate_by_lua",
    cb: "cert cb",
    directive: "ssl_certificate_by_lua*",
};

const CLIENT_HELLO: Names = Names {
    context: context::SSL_CLIENT_HELLO,
    action: c"loading SSL client hello by lua",
    debug: "lua_client_hello_by_lua",
    cb: "client hello cb",
    directive: "ssl_client_hello_by_lua*",
};

/// Runs the handshake code `code` of phase `names` for connection `c`:
/// Done(ok) or Wait.
///
/// # Safety
/// `c` is a live HTTP connection in its handshake and `hs` its state.
pub unsafe fn run(c: *mut ngx_connection_t, hs: &mut HsCtx, code: Option<LuaCode>, names: &Names) -> Outcome {
    // SAFETY: per the contract.
    unsafe {
        let Some(code) = code else {
            let (directive, server) = (names.directive, server_name(c));
            nlog::log_error!(
                (*c).log,
                NGX_LOG_ALERT,
                "no {directive} defined in server {server}"
            );
            hs.exit_code = 0;
            hs.done = true;
            return Outcome::Error;
        };
        let Some(r) = ssl_hs::fake_request(c) else {
            hs.exit_code = 0;
            hs.done = true;
            return Outcome::Error;
        };
        (*(*c).log).action = names.action.as_ptr() as *mut _;
        let (func, owned) = match resolve(r, &code) {
            Ok(f) => f,
            Err(e) => {
                nlog::error((*(*r).connection).log, NGX_LOG_ERR, e.msg.as_bytes());
                crate::glue::fake_request::destroy(r);
                hs.exit_code = 0;
                hs.done = true;
                (*(*c).log).action = c"SSL handshaking".as_ptr() as *mut _;
                return Outcome::Error;
            }
        };
        let outcome = if names.context == context::SSL_SESS_STORE {
            let res = ssl_hs::run_plain(hs, r, names.context, func);
            let rc = if let Err(e) = &res {
                nlog::log_error!((*c).log, NGX_LOG_ERR, "failed to run session_store_by_lua*: {e}");
                -1
            } else {
                0
            };
            let (debug, cb, code) = (names.debug, names.cb, hs.exit_code);
            nlog::log_debug_http!(
                (*c).log,
                "{debug}: handler return value: {rc}, {cb} exit code: {code}"
            );
            (*(*c).log).action = c"SSL handshaking".as_ptr() as *mut _;
            if owned && let Some(vm) = vm::current() {
                vm.unref(func);
            }
            return if res.is_ok() {
                Outcome::Done
            } else {
                Outcome::Error
            };
        } else {
            ssl_hs::start(hs, r, names.context, func)
        };
        if owned && let Some(vm) = vm::current() {
            vm.unref(func);
        }
        if outcome != Outcome::Wait {
            let (debug, cb, code) = (names.debug, names.cb, hs.exit_code);
            // What lua-nginx-module's handler returned: the ngx.exit code,
            // 500 for an error.
            let rc = match outcome {
                Outcome::Exit(code) => code,
                Outcome::Error => 500,
                _ => 0,
            };
            nlog::log_debug_http!(
                (*c).log,
                "{debug}: handler return value: {rc}, {cb} exit code: {code}"
            );
            (*(*c).log).action = c"SSL handshaking".as_ptr() as *mut _;
        }
        outcome
    }
}

/// The callbacks' common course: first call runs the code; later calls
/// (OpenSSL retrying after a wait) report how it ended, or wait on.
unsafe fn callback(
    ssl: *mut SSL,
    names: &Names,
    entered: fn(&mut HsCtx) -> &mut bool,
    pick: fn(&LocConf) -> &Option<LuaCode>,
) -> c_int {
    // SAFETY: OpenSSL calls back with nginx's SSL object of a connection.
    unsafe {
        let c = connection_of(ssl);
        if c.is_null() {
            return 0;
        }
        let what = if names.context == context::SSL_CERT {
            "ssl cert"
        } else {
            "ssl client hello"
        };
        nlog::log_debug_http!((*c).log, "{what}: connection reusable: {}", (*c).reusable());
        let Some(hs) = ssl_hs::get_or_create(c) else {
            return 0;
        };
        if *entered(hs) {
            if hs.done {
                let (debug, cb, code) = (names.debug, names.cb, hs.exit_code);
                nlog::log_debug_http!((*c).log, "{debug}: {cb} exit code: {code}");
                (*(*c).log).action = c"SSL handshaking".as_ptr() as *mut _;
                return hs.exit_code;
            }
            return -1;
        }
        *entered(hs) = true;
        hs.exit_code = 1;
        match run(c, hs, server_code(c, pick), names) {
            Outcome::Wait => -1,
            _ => hs.exit_code,
        }
    }
}

unsafe extern "C" fn cert_cb(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    crate::glue::catch(0, || {
        // SAFETY: called by OpenSSL during a handshake of nginx's.
        unsafe { callback(ssl, &CERT, |h| &mut h.entered_cert, |l| &l.ssl_cert) }
    })
}

unsafe extern "C" fn client_hello_cb(ssl: *mut SSL, al: *mut c_int, _arg: *mut c_void) -> c_int {
    crate::glue::catch(0, || {
        // SAFETY: as in cert_cb.
        unsafe {
            let rc = callback(
                ssl,
                &CLIENT_HELLO,
                |h| &mut h.entered_client_hello,
                |l| &l.ssl_client_hello,
            );
            if rc == 0 && !al.is_null() {
                *al = nginx_sys::SSL_AD_INTERNAL_ERROR as c_int;
            }
            rc
        }
    })
}
