//! TLS on a connected cosocket (`sslhandshake`), through nginx's own
//! OpenSSL layer (`ngx_ssl_*`): the client SSL context of a location is
//! built on first use from its `lua_ssl_*` directives.

use smallvec::smallvec;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CString, c_int, c_void};
use std::mem::MaybeUninit;

use nginx_sys::{
    NGX_AGAIN, NGX_SSL_BUFFER, NGX_SSL_CLIENT, NGX_SSL_TLSv1, NGX_SSL_TLSv1_1, NGX_SSL_TLSv1_2,
    NGX_SSL_TLSv1_3, SSL_CTRL_SET_TLSEXT_HOSTNAME, SSL_SESSION, SSL_SESSION_free, SSL_ctrl,
    SSL_get_verify_result, X509_verify_cert_error_string, ngx_add_timer, ngx_array_create, ngx_array_push,
    ngx_connection_t, ngx_create_pool, ngx_cycle, ngx_del_timer, ngx_keyval_t, ngx_ssl_certificate,
    ngx_ssl_check_host, ngx_ssl_ciphers, ngx_ssl_cleanup_ctx, ngx_ssl_conf_commands, ngx_ssl_create,
    ngx_ssl_create_connection, ngx_ssl_crl, ngx_ssl_get_session, ngx_ssl_handshake, ngx_ssl_set_session,
    ngx_ssl_t, ngx_ssl_trusted_certificate, ngx_str_t,
};

use super::tcp_sock::{Step, TcpSock, Val, Vals};
use super::tcp_tls_peer;
use crate::conf::socket::SocketConf;
use crate::lua::vm;
use crate::lua::{ffi, lua_State, to_bytes};

/// What the caller of a pending handshake asked for.
pub struct Handshake {
    name: Option<Vec<u8>>,
    verify: bool,
    want_session: bool,
}

/// SSL sessions handed to Lua and not yet freed, with how many references
/// Lua holds: each is an FFI pointer (cdata, as lua-resty-core returns them)
/// owning one reference, and a resumed handshake hands out the same session
/// again. A pointer given back is only used if it is one of these. A VM's
/// state, like its Lua values.
#[derive(Default)]
struct Sessions(RefCell<HashMap<usize, usize>>);
crate::lua::vm::vm_state!(Sessions);

impl Drop for Sessions {
    /// The VM is going (worker exit, reload): references Lua still held are
    /// freed here, since their finalizers, run by `lua_close`, may find no
    /// current VM to look them up in.
    fn drop(&mut self) {
        for (p, n) in self.0.get_mut().drain() {
            for _ in 0..n {
                // SAFETY: each count is a session reference handed to Lua
                // and not freed yet (a finalizer uncounts before freeing).
                unsafe { SSL_SESSION_free(p as *mut SSL_SESSION) };
            }
        }
    }
}

/// Client SSL contexts per location configuration, built on first use: a
/// VM's state, so they go with the configuration they were built from.
#[derive(Default)]
struct Ctxs(RefCell<HashMap<usize, SslCtx>>);
crate::lua::vm::vm_state!(Ctxs);

fn with_sessions<R>(f: impl FnOnce(&RefCell<HashMap<usize, usize>>) -> R) -> R {
    vm::with_current_state(|s: &Sessions| f(&s.0))
}

fn with_ctxs<R>(f: impl FnOnce(&RefCell<HashMap<usize, SslCtx>>) -> R) -> R {
    vm::with_current_state(|c: &Ctxs| f(&c.0))
}

/// A client SSL context and the strings nginx may keep pointers to while it
/// lives; dropping it (a failed setup, or the worker's exit) frees both.
struct SslCtx {
    ssl: Box<ngx_ssl_t>,
    strings: Vec<Vec<u8>>,
    /// lua_ssl_key_log's file, which the SSL_CTX points at (ex_data):
    /// dropped after the context (fields drop after `Drop::drop`).
    key_log: Option<Box<std::fs::File>>,
}

impl SslCtx {
    /// An ngx_str_t over `v` that is also a C string: nginx hands these
    /// strings to OpenSSL as `char *`, and may keep the pointer (the
    /// certificate name) as long as the context lives, so the context
    /// keeps them.
    fn c_string(&mut self, mut v: Vec<u8>) -> ngx_str_t {
        let len = v.len();
        v.push(0);
        let data = v.as_mut_ptr();
        // moving the Vec does not move its heap buffer
        self.strings.push(v);
        ngx_str_t { len, data }
    }
}

impl Drop for SslCtx {
    fn drop(&mut self) {
        if !self.ssl.ctx.is_null() {
            // SAFETY: the context came from ngx_ssl_create and is no longer
            // handed out (its entry or its failed setup is going away);
            // connections still using it hold their own OpenSSL reference.
            // This frees the certificates and the SSL_CTX, as nginx's pool
            // cleanup of its own contexts does.
            unsafe { ngx_ssl_cleanup_ctx((&mut *self.ssl as *mut ngx_ssl_t).cast()) };
        }
    }
}

fn protocol_bits(names: Option<&Vec<Vec<u8>>>) -> Result<usize, String> {
    // lua-nginx-module's default: SSLv3 (never offered by a current
    // OpenSSL), TLSv1, TLSv1.1, TLSv1.2.
    let Some(names) = names else {
        return Ok((4 | NGX_SSL_TLSv1 | NGX_SSL_TLSv1_1 | NGX_SSL_TLSv1_2) as usize);
    };
    let mut bits = 0;
    for n in names {
        bits |= match n.as_slice() {
            b"SSLv2" => 2,
            b"SSLv3" => 4,
            b"TLSv1" => NGX_SSL_TLSv1,
            b"TLSv1.1" => NGX_SSL_TLSv1_1,
            b"TLSv1.2" => NGX_SSL_TLSv1_2,
            b"TLSv1.3" => NGX_SSL_TLSv1_3,
            _ => return Err(format!("unknown ssl protocol \"{}\"", String::from_utf8_lossy(n))),
        } as usize;
    }
    Ok(bits)
}

/// The client SSL context for `conf`.
unsafe fn ssl_ctx(key: *const SocketConf) -> Result<*mut ngx_ssl_t, String> {
    if let Some(p) = with_ctxs(|m| {
        m.borrow_mut()
            .get_mut(&(key as usize))
            .map(|c| &mut *c.ssl as *mut _)
    }) {
        return Ok(p);
    }
    // SAFETY: `key` is null or the live SocketConf of a location (callers' duty)
    let conf = unsafe { key.as_ref() }.cloned().unwrap_or_default();
    let mut ctx = SslCtx {
        // SAFETY: ngx_ssl_t is plain C data; all-zero is nginx's initial state
        ssl: Box::new(unsafe { MaybeUninit::zeroed().assume_init() }),
        strings: Vec::new(),
        key_log: None,
    };
    // SAFETY: ngx_cycle is the live current cycle
    let cycle = unsafe { ngx_cycle } as *mut nginx_sys::ngx_cycle_t;
    // SAFETY: ngx_cycle is the live current cycle
    ctx.ssl.log = unsafe { (*cycle).log };
    // SAFETY: `ctx.ssl` is a live, zeroed ngx_ssl_t of ours
    if unsafe {
        ngx_ssl_create(
            &mut *ctx.ssl,
            protocol_bits(conf.ssl_protocols.as_ref())?,
            std::ptr::null_mut(),
        )
    } != 0
    {
        return Err("failed to create the ssl context".into());
    }
    // The ngx_ssl_* configuration helpers only use the cycle, pool and log
    // (glue::ngx_version says why the cycle is a copy).
    // SAFETY: `cycle` is the live current cycle
    let mut rc = unsafe { crate::glue::ngx_version::RuntimeConf::new(cycle) };
    let cf = &mut rc.cf;
    let mut cs = ctx.c_string(conf.ssl_ciphers.clone().unwrap_or_else(|| b"DEFAULT".to_vec()));
    // SAFETY: `cf` is the runtime conf over the live cycle; `ctx.ssl` was created above
    if unsafe { ngx_ssl_ciphers(cf, &mut *ctx.ssl, &mut cs, 0) } != 0 {
        return Err("failed to set the ssl ciphers".into());
    }
    if let Some(cert) = conf.ssl_certificate.clone() {
        let Some(key) = conf.ssl_certificate_key.clone() else {
            return Err("no \"lua_ssl_certificate_key\" is defined for the certificate".into());
        };
        let mut cs = ctx.c_string(cert);
        let mut ks = ctx.c_string(key);
        // SAFETY: `cf` is the runtime conf over the live cycle; `ctx.ssl` was created above
        if unsafe { ngx_ssl_certificate(cf, &mut *ctx.ssl, &mut cs, &mut ks, std::ptr::null_mut()) } != 0 {
            return Err("failed to load the client certificate".into());
        }
    }
    if let Some(path) = conf.ssl_trusted_certificate.clone() {
        let mut ps = ctx.c_string(path);
        let depth = conf.ssl_verify_depth() as isize;
        // SAFETY: `cf` is the runtime conf over the live cycle; `ctx.ssl` was created above
        if unsafe { ngx_ssl_trusted_certificate(cf, &mut *ctx.ssl, &mut ps, depth) } != 0 {
            return Err("failed to load the trusted certificates".into());
        }
    }
    if let Some(crl) = conf.ssl_crl.clone() {
        let mut cs = ctx.c_string(crl);
        // SAFETY: `cf` is the runtime conf over the live cycle; `ctx.ssl` was created above
        if unsafe { ngx_ssl_crl(cf, &mut *ctx.ssl, &mut cs) } != 0 {
            return Err("failed to load the certificate revocation list".into());
        }
    }
    if let Some(cmds) = conf.ssl_conf_commands.as_ref() {
        // SAFETY: the cycle's pool is live
        let arr = unsafe { ngx_array_create((*cycle).pool, cmds.len(), std::mem::size_of::<ngx_keyval_t>()) };
        if arr.is_null() {
            return Err("no memory".into());
        }
        for (k, v) in cmds {
            // SAFETY: `arr` is the live array just created
            let kv = unsafe { ngx_array_push(arr) } as *mut ngx_keyval_t;
            if kv.is_null() {
                return Err("no memory".into());
            }
            // SAFETY: `kv` is the non-null slot ngx_array_push returned; the strings live in `ctx`
            unsafe {
                (*kv).key = ctx.c_string(k.clone());
                (*kv).value = ctx.c_string(v.clone());
            }
        }
        // SAFETY: `cf` is the runtime conf over the live cycle; `arr` holds the commands
        if unsafe { ngx_ssl_conf_commands(cf, &mut *ctx.ssl, arr) } != 0 {
            return Err("failed to apply lua_ssl_conf_command".into());
        }
    }
    if let Some(path) = conf.ssl_key_log.as_ref() {
        // SAFETY: `ctx.ssl` was created above
        (unsafe { set_key_log(&mut ctx, path) })?;
    }
    let p: *mut ngx_ssl_t = &mut *ctx.ssl;
    with_ctxs(|m| m.borrow_mut().insert(key as usize, ctx));
    Ok(p)
}

/// SSL_CTX ex_data slot of the key log file (taken once per process).
static KEY_LOG_INDEX: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn key_log_index() -> c_int {
    use std::sync::atomic::Ordering;
    let i = KEY_LOG_INDEX.load(Ordering::Relaxed);
    if i >= 0 {
        return i;
    }
    // SAFETY: CRYPTO_EX_INDEX_SSL_CTX (1) with no callbacks: a plain slot.
    let i = unsafe { nginx_sys::CRYPTO_get_ex_new_index(1, 0, std::ptr::null_mut(), None, None, None) };
    KEY_LOG_INDEX.store(i, Ordering::Relaxed);
    i
}

/// lua_ssl_key_log: appends each handshake's secrets to `path`.
unsafe fn set_key_log(ctx: &mut SslCtx, path: &[u8]) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::ffi::OsStr::from_bytes(path))
        .map_err(|e| {
            format!(
                "failed to open lua_ssl_key_log \"{}\": {e}",
                String::from_utf8_lossy(path)
            )
        })?;
    let file = Box::new(file);
    let idx = key_log_index();
    // SAFETY: the context is live; the file outlives it (SslCtx field).
    unsafe {
        let fp: *const std::fs::File = &*file;
        if idx < 0 || nginx_sys::SSL_CTX_set_ex_data(ctx.ssl.ctx.cast(), idx, fp as *mut c_void) == 0 {
            return Err("SSL_CTX_set_ex_data() failed".into());
        }
        nginx_sys::SSL_CTX_set_keylog_callback(ctx.ssl.ctx.cast(), Some(key_log_line));
    }
    ctx.key_log = Some(file);
    Ok(())
}

unsafe extern "C" fn key_log_line(ssl: *const nginx_sys::SSL, line: *const std::ffi::c_char) {
    crate::glue::catch((), || {
        use std::io::Write;
        // SAFETY: OpenSSL calls back with a live SSL whose SSL_CTX carries
        // our file pointer (set_key_log) and a C string line.
        unsafe {
            let f = nginx_sys::SSL_CTX_get_ex_data(nginx_sys::SSL_get_SSL_CTX(ssl), key_log_index())
                as *const std::fs::File;
            let Some(mut f) = f.as_ref() else { return };
            let mut l = std::ffi::CStr::from_ptr(line).to_bytes().to_vec();
            l.push(b'\n');
            let _ = f.write_all(&l);
        }
    })
}

/// Starts `sslhandshake(reused_session, server_name, ssl_verify,
/// send_status_req)` for the method call in `l`, presenting `cert` (a
/// certificate chain) and `key` when `cert` is not null.
///
/// # Safety
/// `l` is the running state of the method call, with the socket at 1;
/// `cert` and `key` are null or live objects of `ngx.ssl.parse_*`.
pub unsafe fn start(
    l: *mut lua_State,
    s: &mut TcpSock,
    cert: *mut c_void,
    key: *mut c_void,
) -> Result<Step, String> {
    // SAFETY: `l` is the running state (callers' duty)
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=5).contains(&n) {
        return Err(format!(
            "ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen {n}"
        ));
    }
    // SAFETY: `l` is the running state (callers' duty)
    let want_session =
        !(unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TBOOLEAN && unsafe { ffi::lua_toboolean(l, 2) } == 0);
    // SAFETY: `l` is the running state (callers' duty)
    let session = unsafe { session_arg(l, 2) };
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_gettop(l) } > 5 {
        return Err(format!(
            "ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen {}",
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_gettop(l) }
        ));
    }
    // SAFETY: `l` is the running state (callers' duty)
    let name = match unsafe { ffi::lua_type(l, 3) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => None,
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING => Some(unsafe { to_bytes(l, 3) }.unwrap_or_default().to_vec()),
        _ => return Err("bad server name argument".into()),
    };
    // SAFETY: `l` is the running state (callers' duty)
    let verify = unsafe { ffi::lua_toboolean(l, 4) } != 0;
    let c = s.conn;
    if c.is_null() {
        return Ok(Step::Ready(Val::err("closed")));
    }
    let hs = Handshake {
        name,
        verify,
        want_session,
    };
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if !unsafe { (*c).ssl.is_null() } && unsafe { (*(*c).ssl).handshaked() } != 0 {
        if !session.is_null() {
            // Already done: the session given is the answer.
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushvalue(l, 2) };
            return Ok(Step::Ready(smallvec![Val::Arg]));
        }
        // SAFETY: `c` is the socket's live connection, its handshake done
        return Ok(Step::Ready(unsafe { outcome(s, c, &hs) }));
    }
    // SAFETY: the socket's conf pointer is null or its location's live SocketConf
    let ssl = unsafe { ssl_ctx(s.conf_ptr()) }?;
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if unsafe { (*c).pool.is_null() } {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        unsafe {
            (*c).pool = ngx_create_pool(128, (*c).log);
        }
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        if unsafe { (*c).pool.is_null() } {
            return Ok(Step::Ready(Val::err("no memory")));
        }
    }
    // SAFETY: `ssl` is a live client context; `c` the socket's live connection
    if unsafe { ngx_ssl_create_connection(ssl, c, (NGX_SSL_BUFFER | NGX_SSL_CLIENT) as usize) } != 0 {
        return Ok(Step::Ready(Val::err("failed to create ssl connection")));
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    let sslc = unsafe { (*(*c).ssl).connection };
    if !session.is_null() {
        // SAFETY: `c` has a fresh TLS connection; `session` is a live SSL_SESSION the caller passed
        if unsafe { ngx_ssl_set_session(c, session) } != 0 {
            return Ok(Step::Ready(Val::err("ssl set session failed")));
        }
        s.debug(format_args!("lua ssl set session: {:016X}", session as usize));
    }
    if !cert.is_null() {
        // SAFETY: `sslc` is the connection's live SSL object
        if let Err(e) = unsafe { tcp_tls_peer::use_client_cert(sslc, cert, key) } {
            return Ok(Step::Ready(Val::err(e)));
        }
    }
    if let Some(n) = &hs.name {
        s.debug(format_args!(
            "lua ssl server name: \"{}\"",
            crate::glue::log::Lossy(n)
        ));
        let cname = CString::new(n.clone()).map_err(|_| "bad server name")?;
        // SAFETY: `sslc` is the live SSL object; `cname` is NUL-terminated and outlives the call
        if unsafe {
            SSL_ctrl(
                sslc,
                SSL_CTRL_SET_TLSEXT_HOSTNAME as c_int,
                0,
                cname.as_ptr() as *mut c_void,
            )
        } == 0
        {
            return Ok(Step::Ready(Val::err("SSL_set_tlsext_host_name failed")));
        }
    }
    // The store serves this handshake only (lua-nginx-module forgets it).
    if let Some(store) = s.trusted_store.take() {
        // SAFETY: `sslc` is the connection's live SSL object
        if let Err(e) = unsafe { tcp_tls_peer::use_store(sslc, &store) } {
            return Ok(Step::Ready(Val::err(e)));
        }
    }
    // SAFETY: `c` is the live connection with its TLS connection set up
    let rc = unsafe { ngx_ssl_handshake(c) };
    if rc == NGX_AGAIN as isize {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        if unsafe { (*(*c).read).timer_set() } == 0 {
            // SAFETY: `c` is a live connection of ours (callers' duty), with live events
            unsafe { ngx_add_timer((*c).read, s.timeout(0)) };
        }
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        unsafe {
            (*(*c).ssl).handler = Some(handshake_done);
        }
        s.tls = Some(Box::new(hs));
        s.set_handshaking(true);
        return Ok(Step::Wait);
    }
    // SAFETY: `c` is the socket's live connection
    Ok(Step::Ready(unsafe { outcome(s, c, &hs) }))
}

/// The session argument: the address of a session we handed out (the
/// Lua wrapper turns the cdata back into a number), else none.
unsafe fn session_arg(l: *mut lua_State, idx: c_int) -> *mut SSL_SESSION {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, idx) } != ffi::LUA_TNUMBER {
        return std::ptr::null_mut();
    }
    // SAFETY: `l` is the running state (callers' duty)
    let p = unsafe { ffi::lua_tonumber(l, idx) } as usize;
    if with_sessions(|m| m.borrow().contains_key(&p)) {
        p as *mut SSL_SESSION
    } else {
        std::ptr::null_mut()
    }
}

/// The results of a finished handshake (checking the certificate as asked).
unsafe fn outcome(s: &mut TcpSock, c: *mut ngx_connection_t, hs: &Handshake) -> Vals {
    s.restore_handlers();
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    for ev in [unsafe { (*c).read }, unsafe { (*c).write }] {
        // SAFETY: `ev` is a live event of the connection
        if unsafe { (*ev).timer_set() } != 0 {
            // SAFETY: `ev` is the live connection's event, whose timer is set
            unsafe { ngx_del_timer(ev) };
        }
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if unsafe { (*(*c).read).timedout() } != 0 || unsafe { (*(*c).write).timedout() } != 0 {
        s.close_now();
        return Val::err("timeout");
    }
    // SAFETY: `c` is a live connection of ours (callers' duty), with live events
    if unsafe { (*c).ssl.is_null() } || unsafe { (*(*c).ssl).handshaked() } == 0 {
        s.close_now();
        return Val::err("handshake failed");
    }
    if hs.verify {
        // SAFETY: `c` is a live connection of ours (callers' duty), with live events
        let rc = unsafe { SSL_get_verify_result((*(*c).ssl).connection) };
        if rc != 0 {
            // SAFETY: X509_verify_cert_error_string returns a static NUL-terminated string
            let why =
                unsafe { std::ffi::CStr::from_ptr(X509_verify_cert_error_string(rc)) }.to_string_lossy();
            s.log_err(format_args!("lua ssl certificate verify error: ({rc}: {why})"));
            s.close_now();
            return Val::err(&format!("{rc}: {why}"));
        }
        if let Some(n) = &hs.name {
            let mut name = n.clone();
            let mut ns = ngx_str_t {
                len: name.len(),
                data: name.as_mut_ptr(),
            };
            // SAFETY: `c` is the live connection, its handshake done
            if unsafe { ngx_ssl_check_host(c, &mut ns) } != 0 {
                s.log_err(format_args!(
                    "lua ssl certificate does not match host \"{}\"",
                    crate::glue::log::Lossy(n)
                ));
                s.close_now();
                return Val::err("certificate host mismatch");
            }
        }
    }
    if hs.want_session {
        // SAFETY: `c` is the live connection, its handshake done
        let sess = unsafe { ngx_ssl_get_session(c) };
        if !sess.is_null() {
            s.debug(format_args!("lua ssl save session: {:016X}", sess as usize));
        }
        return smallvec![if sess.is_null() {
            Val::Nil
        } else {
            Val::Session(sess)
        }];
    }
    smallvec![Val::True]
}

unsafe extern "C" fn handshake_done(c: *mut ngx_connection_t) {
    crate::glue::catch((), || {
        // SAFETY: c is our socket's connection (its data is the socket).
        unsafe {
            let s = &mut *((*c).data as *mut TcpSock);
            let Some(hs) = s.tls.take() else { return };
            let vals = outcome(s, c, &hs);
            s.finish(super::tcp_sock::Side::Write, vals);
        }
    })
}

/// Pushes an SSL session (a reference we hand over) as a light userdata
/// for the Lua wrapper, which makes it a garbage-collected FFI pointer.
///
/// # Safety
/// `l` must be valid with room for a value.
pub unsafe fn push_session(l: *mut lua_State, sess: *mut SSL_SESSION) {
    with_sessions(|m| *m.borrow_mut().entry(sess as usize).or_insert(0) += 1);
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushlightuserdata(l, sess.cast()) };
}

crate::lua::lua_fns! { session_free => session_free_impl }

/// Frees the reference of one session cdata handed out by `push_session`
/// (its finalizer), given its address.
unsafe fn session_free_impl(l: *mut lua_State) -> crate::lua::LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let p = unsafe { ffi::lua_tonumber(l, 1) } as usize;
    let counted = with_sessions(|m| {
        let mut m = m.borrow_mut();
        match m.get_mut(&p) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => m.remove(&p).is_some(),
            None => false,
        }
    });
    if counted {
        crate::glue::log::log_debug_http!(crate::glue::log::cycle_log(), "lua ssl free session: {p:016X}");
        // SAFETY: the session was counted in our registry: we hold its reference, freed once here
        unsafe { SSL_SESSION_free(p as *mut SSL_SESSION) };
    }
    Ok(0)
}

/// Pushes the function that frees a session by address.
///
/// # Safety
/// `l` must be valid with room for a value.
pub unsafe fn push_session_free(l: *mut lua_State) {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushcfunction(l, session_free) };
}
