//! What a cosocket's TLS connection takes from Lua besides the handshake
//! arguments (`setclientcert`'s certificate chain and key, the
//! `settrustedstore` store) and what it hands back as raw OpenSSL objects
//! (`getsslpointer`, `getsslctx`, `getsslsession`, `getfd`), with
//! lua-nginx-module master's error texts.

use std::ffi::{c_int, c_void};

use nginx_sys::{
    ERR_clear_error, EVP_PKEY, OPENSSL_STACK, OPENSSL_sk_num, OPENSSL_sk_value, SSL, SSL_CTRL_CHAIN_CERT,
    SSL_CTRL_SET_VERIFY_CERT_STORE, SSL_CTX, SSL_SESSION, SSL_SESSION_free, SSL_SESSION_is_resumable,
    SSL_ctrl, SSL_use_PrivateKey, SSL_use_certificate, X509, X509_STORE, X509_STORE_free, X509_STORE_up_ref,
    ngx_ssl_get_session,
};

use super::tcp_sock::TcpSock;

/// The store given to `settrustedstore`, until the next handshake takes
/// it: we hold a reference of our own, so the Lua value may go.
pub struct TrustedStore(*mut X509_STORE);

impl TrustedStore {
    /// Takes a reference to `p` (not null).
    ///
    /// # Safety
    /// `p` must be a live `X509_STORE`.
    pub unsafe fn new(p: *mut c_void) -> Result<TrustedStore, &'static str> {
        // SAFETY: the caller gives a live store.
        if unsafe { X509_STORE_up_ref(p.cast()) } == 0 {
            return Err("X509_STORE_up_ref() failed");
        }
        Ok(TrustedStore(p.cast()))
    }
}

impl Drop for TrustedStore {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `new`, released once.
        unsafe { X509_STORE_free(self.0) }
    }
}

/// Presents `chain` (a `STACK_OF(X509)`, leaf first) and `pkey` in the
/// handshake of `ssl`.
///
/// # Safety
/// `ssl` is a live connection not yet handshaked; `chain` and `pkey` are
/// null or the objects `ngx.ssl.parse_*` made (kept alive by the socket
/// object until this returns).
pub unsafe fn use_client_cert(
    ssl: *mut SSL,
    chain: *mut c_void,
    pkey: *mut c_void,
) -> Result<(), &'static str> {
    let chain = chain as *mut OPENSSL_STACK;
    // SAFETY: per the contract above; each failure clears OpenSSL's queue
    // so that it does not show in a later, unrelated error.
    unsafe {
        let fail = |m| {
            ERR_clear_error();
            Err(m)
        };
        if OPENSSL_sk_num(chain) < 1 {
            return fail("invalid client certificate chain");
        }
        let leaf = OPENSSL_sk_value(chain, 0) as *mut X509;
        if leaf.is_null() {
            return fail("ssl fetch client certificate from chain failed");
        }
        if SSL_use_certificate(ssl, leaf) == 0 {
            return fail("ssl set client certificate failed");
        }
        for i in 1..OPENSSL_sk_num(chain) {
            let x = OPENSSL_sk_value(chain, i);
            if x.is_null() {
                return fail("ssl fetch client intermediate certificate from chain failed");
            }
            // SSL_add1_chain_cert: the connection takes its own reference.
            if SSL_ctrl(ssl, SSL_CTRL_CHAIN_CERT as c_int, 1, x) == 0 {
                return fail("ssl set client intermediate certificate failed");
            }
        }
        if pkey.is_null() || SSL_use_PrivateKey(ssl, pkey as *mut EVP_PKEY) == 0 {
            return fail("ssl set client private key failed");
        }
    }
    Ok(())
}

/// Verifies the peer of `ssl` against `store` instead of the location's
/// `lua_ssl_trusted_certificate` (SSL_set1_verify_cert_store).
///
/// # Safety
/// `ssl` is a live connection not yet handshaked.
pub unsafe fn use_store(ssl: *mut SSL, store: &TrustedStore) -> Result<(), &'static str> {
    // SAFETY: set1 takes the connection's own reference to a live store.
    unsafe {
        if SSL_ctrl(ssl, SSL_CTRL_SET_VERIFY_CERT_STORE as c_int, 1, store.0.cast()) == 0 {
            ERR_clear_error();
            return Err("SSL_set1_verify_cert_store() failed");
        }
    }
    Ok(())
}

/// Whether the socket's connection is gone for the `getssl*` methods
/// (both halves closed, as lua-nginx-module checks there).
fn gone(s: &TcpSock) -> bool {
    s.conn.is_null() || (s.read_closed && s.write_closed)
}

/// `getsslpointer`: the connection's `SSL *`.
pub fn ssl_pointer(s: &TcpSock) -> Result<*mut SSL, &'static str> {
    if gone(s) {
        return Err("closed");
    }
    // SAFETY: a live connection; its ssl is null or nginx's.
    unsafe {
        let ssl = (*s.conn).ssl;
        if ssl.is_null() || (*ssl).connection.is_null() {
            return Err("no ssl connection");
        }
        Ok((*ssl).connection)
    }
}

/// `getsslctx`: the `SSL_CTX *` the connection was made from.
pub fn ssl_ctx(s: &TcpSock) -> Result<*mut SSL_CTX, &'static str> {
    if gone(s) {
        return Err("closed");
    }
    // SAFETY: as in ssl_pointer.
    unsafe {
        let ssl = (*s.conn).ssl;
        if ssl.is_null() || (*ssl).session_ctx.is_null() {
            return Err("no ssl context");
        }
        Ok((*ssl).session_ctx.cast())
    }
}

/// `getsslsession`: a new reference to the connection's current session,
/// if it can be resumed.
pub fn ssl_session(s: &TcpSock) -> Result<*mut SSL_SESSION, &'static str> {
    if gone(s) {
        return Err("closed");
    }
    // SAFETY: a live connection; ngx_ssl_get_session returns a reference
    // of its own (freed here if it is not handed on).
    unsafe {
        let c = s.conn;
        // lua-nginx-module does not check this (and crashes on a plain
        // connection): there is no session then.
        if (*c).ssl.is_null() {
            return Err("no session");
        }
        let sess = ngx_ssl_get_session(c);
        if sess.is_null() {
            return Err("no session");
        }
        if SSL_SESSION_is_resumable(sess) == 0 {
            SSL_SESSION_free(sess);
            return Err("not resumable");
        }
        Ok(sess)
    }
}

/// `getfd`: the connection's file descriptor.
pub fn fd(s: &TcpSock) -> Result<c_int, &'static str> {
    if s.conn.is_null() {
        return Err("closed");
    }
    // SAFETY: a live connection.
    let fd = unsafe { (*s.conn).fd };
    if fd == -1 {
        return Err("faked connection");
    }
    Ok(fd)
}
