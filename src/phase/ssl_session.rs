//! ssl_session_fetch_by_lua* and ssl_session_store_by_lua*: OpenSSL's
//! session cache callbacks (`SSL_CTX_sess_set_get_cb` / `_new_cb`) run the
//! code. TLS 1.3 sessions skip both, as in lua-nginx-module. Fetch code may
//! not wait on this OpenSSL (it has no pending-session support):
//! lua-nginx-module logs the same and lets the handshake go on without a
//! session.

use std::ffi::c_int;

use nginx_sys::{NGX_LOG_CRIT, SSL, SSL_SESSION, SSL_SESSION_get_id, SSL_version, TLS1_3_VERSION};

use super::ssl::{Names, connection_of};
use crate::glue::log as nlog;
use crate::runtime::context;
use crate::runtime::ctx::Outcome;
use crate::runtime::ssl_hs;

const FETCH: Names = Names {
    context: context::SSL_SESS_FETCH,
    action: c"fetching SSL session by lua",
    debug: "ssl_session_fetch_by_lua*",
    cb: "sess get cb",
    directive: "ssl_session_fetch_by_lua*",
};

const STORE: Names = Names {
    context: context::SSL_SESS_STORE,
    action: c"storing SSL session by lua",
    debug: "ssl_session_store_by_lua*",
    cb: "sess new cb",
    directive: "ssl_session_store_by_lua*",
};

/// TLS 1.3 or later: the session hooks do not run.
unsafe fn skipped(ssl: *mut SSL, c: *mut nginx_sys::ngx_connection_t, what: &str) -> bool {
    // SAFETY: ssl is a live SSL object.
    let v = unsafe { SSL_version(ssl) };
    if v >= TLS1_3_VERSION as c_int {
        // SAFETY: c is ssl's live connection.
        let log = unsafe { (*c).log };
        nlog::log_debug_http!(log, "{what}: skipped since TLS version >= 1.3 ({v:x})");
        return true;
    }
    false
}

pub unsafe extern "C" fn fetch_cb(
    ssl: *mut SSL,
    id: *const u8,
    len: c_int,
    copy: *mut c_int,
) -> *mut SSL_SESSION {
    crate::glue::catch(std::ptr::null_mut(), || {
        // SAFETY: called by OpenSSL during a handshake of nginx's with the
        // session id the client offered.
        unsafe {
            *copy = 0;
            let c = connection_of(ssl);
            if c.is_null() || skipped(ssl, c, "ssl_session_fetch_by_lua*") {
                return std::ptr::null_mut();
            }
            nlog::log_debug_http!(
                (*c).log,
                "ssl session fetch: connection reusable: {}",
                (*c).reusable()
            );
            let Some(hs) = ssl_hs::get_or_create(c) else {
                return std::ptr::null_mut();
            };
            if hs.entered_fetch {
                return std::mem::replace(&mut hs.session, std::ptr::null_mut());
            }
            hs.entered_fetch = true;
            hs.exit_code = 1;
            hs.session_id = if id.is_null() || len <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(id, len as usize).to_vec()
            };
            let code = server_code(c, true);
            if super::ssl::run(c, hs, code, &FETCH) == Outcome::Wait {
                nlog::error(
                    (*c).log,
                    NGX_LOG_CRIT,
                    b"lua: cannot yield in sess get cb: missing async sess get cb support in OpenSSL",
                );
                ssl_hs::abandon(hs);
                (*(*c).log).action = c"SSL handshaking".as_ptr() as *mut _;
                return std::ptr::null_mut();
            }
            // OpenSSL takes the reference (copy = 0).
            std::mem::replace(&mut hs.session, std::ptr::null_mut())
        }
    })
}

pub unsafe extern "C" fn store_cb(ssl: *mut SSL, sess: *mut SSL_SESSION) -> c_int {
    crate::glue::catch(0, || {
        // SAFETY: called by OpenSSL with a new session of nginx's SSL
        // object; the session is only borrowed during the run.
        unsafe {
            let c = connection_of(ssl);
            if c.is_null() || skipped(ssl, c, "ssl_session_store_by_lua*") {
                return 0;
            }
            nlog::log_debug_http!(
                (*c).log,
                "ssl session store: connection reusable: {}",
                (*c).reusable()
            );
            let Some(hs) = ssl_hs::get_or_create(c) else {
                return 0;
            };
            let mut n: u32 = 0;
            let id = SSL_SESSION_get_id(sess, &mut n);
            hs.session_id = if id.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(id, n as usize).to_vec()
            };
            hs.new_session = sess;
            let code = server_code(c, false);
            super::ssl::run(c, hs, code, &STORE);
            hs.new_session = std::ptr::null_mut();
            // OpenSSL keeps ownership of the session.
            0
        }
    })
}

unsafe fn server_code(c: *mut nginx_sys::ngx_connection_t, fetch: bool) -> Option<crate::conf::LuaCode> {
    // SAFETY: c is a live connection in its handshake.
    unsafe {
        let hc = (*c).data as *mut nginx_sys::ngx_http_connection_t;
        let lua_index = crate::conf::module().ctx_index;
        let lcf = *(*(*hc).conf_ctx).loc_conf.add(lua_index) as *const crate::conf::LocConf;
        let l = lcf.as_ref()?;
        if fetch {
            l.ssl_sess_fetch.clone()
        } else {
            l.ssl_sess_store.clone()
        }
    }
}
