//! `ngx.ssl`'s C side: lua-nginx-module's `ngx_http_lua_ffi_ssl_*` and
//! `ngx_http_lua_ffi_*cert*` / `*priv_key*` functions, with its names and C
//! signatures, called from our Lua face (lua/ssl.lua) through LuaJIT's FFI
//! and usable by code that declares them itself. None raises: each
//! returns a code and points `err` at a static message.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use nginx_sys::{
    BIO, BIO_ctrl, BIO_free, BIO_new_mem_buf, ERR_clear_error, ERR_peek_last_error, EVP_PKEY, EVP_PKEY_free,
    NGX_DECLINED, NGX_ERROR, NGX_OK, OPENSSL_STACK, OPENSSL_sk_free, OPENSSL_sk_new_null, OPENSSL_sk_num,
    OPENSSL_sk_pop_free, OPENSSL_sk_push, OPENSSL_sk_value, PEM_read_bio_PrivateKey, PEM_read_bio_X509,
    PEM_read_bio_X509_AUX, SSL, SSL_certs_clear, SSL_ctrl, SSL_get_servername, SSL_use_PrivateKey,
    SSL_use_certificate, SSL_version, X509, X509_free, d2i_PrivateKey_bio, d2i_X509_bio, i2d_PrivateKey,
    i2d_X509, ngx_connection_local_sockaddr, ngx_http_request_t, ngx_inet_get_port,
};

type Err = *mut *const c_char;

pub(crate) const OK: c_int = NGX_OK as c_int;
pub(crate) const ERROR: c_int = NGX_ERROR as c_int;

/// Points `*err` at `msg` (a static string, as lua-nginx-module's are).
pub(crate) unsafe fn fail(err: Err, msg: &'static CStr) -> c_int {
    if !err.is_null() {
        // SAFETY: the caller's `char **`.
        unsafe { *err = msg.as_ptr() };
    }
    ERROR
}

/// The SSL object of the handshake `r` runs in.
///
/// # Safety
/// `r` must be null or a live request.
pub(crate) unsafe fn ssl_of(r: *mut ngx_http_request_t) -> Result<*mut SSL, &'static CStr> {
    // SAFETY: per the contract.
    unsafe {
        if r.is_null() || (*r).connection.is_null() || (*(*r).connection).ssl.is_null() {
            return Err(c"bad request");
        }
        let ssl = (*(*(*r).connection).ssl).connection as *mut SSL;
        if ssl.is_null() {
            return Err(c"bad ssl conn");
        }
        Ok(ssl)
    }
}

/// The real connection of the handshake (`ngx_ssl_get_connection`).
pub(crate) unsafe fn conn_of(ssl: *mut SSL) -> *mut nginx_sys::ngx_connection_t {
    // SAFETY: nginx's SSL objects carry their connection in this slot.
    unsafe { nginx_sys::SSL_get_ex_data(ssl, nginx_sys::ngx_ssl_connection_index) as *mut _ }
}

/// Copies `src` into the caller's buffer `out` of `*out_size` bytes: OK
/// with `*out_size` set to its length, or NGX_BUSY with the buffer filled
/// when `src` is longer (lua-nginx-module's "truncated" answer).
///
/// # Safety
/// `out` has `*out_size` writable bytes.
pub(crate) unsafe fn copy_out(src: &[u8], out: *mut u8, out_size: *mut usize) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let (len, rc) = if src.len() > *out_size {
            (*out_size, nginx_sys::NGX_BUSY as c_int)
        } else {
            *out_size = src.len();
            (src.len(), OK)
        };
        ptr::copy_nonoverlapping(src.as_ptr(), out, len);
        rc
    }
}

macro_rules! ssl_or_fail {
    ($r:expr, $err:expr) => {
        match ssl_of($r) {
            Ok(s) => s,
            Err(m) => return fail($err, m),
        }
    };
}

/// A read-only memory BIO over `len` bytes at `data`, or None with `err`
/// set ("BIO_new_mem_buf() failed") and OpenSSL's errors cleared.
///
/// # Safety
/// `data` has `len` bytes that outlive the BIO (the caller frees it).
pub(crate) unsafe fn mem_bio_or_fail(data: *const c_void, len: usize, err: Err) -> Option<*mut BIO> {
    // SAFETY: per the contract.
    unsafe {
        let bio = BIO_new_mem_buf(data, len as c_int);
        if bio.is_null() {
            ERR_clear_error();
            fail(err, c"BIO_new_mem_buf() failed");
            return None;
        }
        Some(bio)
    }
}

const BIO_CTRL_EOF: c_int = 2;
const SSL_CTRL_CHAIN_CERT: c_int = 89;
const ERR_LIB_PEM: u64 = 9;
const PEM_R_NO_START_LINE: u64 = 108;

/// The last OpenSSL error is "no PEM start line": the input simply ended.
fn pem_ended() -> bool {
    // SAFETY: reads this thread's OpenSSL error queue.
    let e = unsafe { ERR_peek_last_error() } as u64;
    // OpenSSL 3's packing: a system error has bit 31 set; else the library
    // is bits 23..31 and the reason the low 23 bits.
    e & 0x8000_0000 == 0 && (e >> 23) & 0xff == ERR_LIB_PEM && e & 0x7f_ffff == PEM_R_NO_START_LINE
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_tls1_version(
    r: *mut ngx_http_request_t,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            SSL_version(ssl)
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_clear_certs(r: *mut ngx_http_request_t, err: Err) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            SSL_certs_clear(ssl);
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_set_der_certificate(
    r: *mut ngx_http_request_t,
    data: *const c_char,
    len: usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; data has len bytes.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            let Some(bio) = mem_bio_or_fail(data.cast(), len, err) else {
                return ERROR;
            };
            let rc = set_der_chain(ssl, bio, err, true);
            BIO_free(bio);
            if rc != OK {
                ERR_clear_error();
            }
            rc
        }
    })
}

/// The leaf then the rest of a DER chain from `bio` into the handshake;
/// `server`: the handshake's own certificate (noted for $ssl_server_*).
pub(crate) unsafe fn set_der_chain(ssl: *mut SSL, bio: *mut BIO, err: Err, server: bool) -> c_int {
    // SAFETY: live SSL and BIO; each X509 is freed or handed over.
    unsafe {
        let x509 = d2i_X509_bio(bio, ptr::null_mut());
        if x509.is_null() {
            return fail(err, c"d2i_X509_bio() failed");
        }
        if SSL_use_certificate(ssl, x509) == 0 {
            X509_free(x509);
            return fail(err, c"SSL_use_certificate() failed");
        }
        // nginx's $ssl_server_* variables read the certificate here.
        if server && !crate::glue::ngx_version::note_server_certificate(ssl, x509) {
            X509_free(x509);
            return fail(err, c"SSL_set_ex_data() failed");
        }
        X509_free(x509);
        while BIO_ctrl(bio, BIO_CTRL_EOF, 0, ptr::null_mut()) == 0 {
            let x = d2i_X509_bio(bio, ptr::null_mut());
            if x.is_null() {
                return fail(err, c"d2i_X509_bio() failed");
            }
            // add0: the chain takes our reference.
            if SSL_ctrl(ssl, SSL_CTRL_CHAIN_CERT, 0, x.cast()) == 0 {
                X509_free(x);
                return fail(err, c"SSL_add0_chain_cert() failed");
            }
        }
        OK
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_set_der_private_key(
    r: *mut ngx_http_request_t,
    data: *const c_char,
    len: usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; data has len bytes.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            let Some(bio) = mem_bio_or_fail(data.cast(), len, err) else {
                return ERROR;
            };
            let pkey = d2i_PrivateKey_bio(bio, ptr::null_mut());
            BIO_free(bio);
            if pkey.is_null() {
                ERR_clear_error();
                return fail(err, c"d2i_PrivateKey_bio() failed");
            }
            let rc = set_pkey(ssl, pkey.cast(), err);
            EVP_PKEY_free(pkey);
            rc
        }
    })
}

const ADDR_UNIX: c_int = 0;
const ADDR_INET: c_int = 1;
const ADDR_INET6: c_int = 2;

/// Points `addr`/`addrlen`/`addrtype` at the raw address in `sa`.
unsafe fn raw_addr(
    sa: *const libc::sockaddr,
    len: libc::socklen_t,
    addr: *mut *const c_char,
    addrlen: *mut usize,
    addrtype: *mut c_int,
) {
    // SAFETY: sa is a live sockaddr of `len` bytes of the connection.
    unsafe {
        match (*sa).sa_family as c_int {
            libc::AF_INET6 => {
                let sin6 = sa as *const libc::sockaddr_in6;
                *addr = ptr::addr_of!((*sin6).sin6_addr.s6_addr).cast();
                *addrlen = 16;
                *addrtype = ADDR_INET6;
            }
            libc::AF_UNIX => {
                let sun = sa as *const libc::sockaddr_un;
                let off = std::mem::offset_of!(libc::sockaddr_un, sun_path);
                if (len as usize) <= off {
                    *addr = c"".as_ptr();
                    *addrlen = 0;
                } else {
                    let p = ptr::addr_of!((*sun).sun_path) as *const c_char;
                    *addr = p;
                    *addrlen = libc::strnlen(p, len as usize - off);
                }
                *addrtype = ADDR_UNIX;
            }
            _ => {
                let sin = sa as *const libc::sockaddr_in;
                *addr = ptr::addr_of!((*sin).sin_addr.s_addr).cast();
                *addrlen = 4;
                *addrtype = ADDR_INET;
            }
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_raw_server_addr(
    r: *mut ngx_http_request_t,
    addr: *mut *const c_char,
    addrlen: *mut usize,
    addrtype: *mut c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; out pointers are the caller's.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            let c = conn_of(ssl);
            if c.is_null() || ngx_connection_local_sockaddr(c, ptr::null_mut(), 0) != NGX_OK as isize {
                return 0;
            }
            raw_addr(
                (*c).local_sockaddr.cast(),
                (*c).local_socklen,
                addr,
                addrlen,
                addrtype,
            );
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_raw_client_addr(
    r: *mut ngx_http_request_t,
    addr: *mut *const c_char,
    addrlen: *mut usize,
    addrtype: *mut c_int,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; out pointers are the caller's.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            let c = conn_of(ssl);
            if c.is_null() {
                return fail(err, c"bad ssl conn");
            }
            raw_addr((*c).sockaddr.cast(), (*c).socklen, addr, addrlen, addrtype);
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_server_port(
    r: *mut ngx_http_request_t,
    port: *mut u16,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; port is the caller's.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            let c = conn_of(ssl);
            if c.is_null() || ngx_connection_local_sockaddr(c, ptr::null_mut(), 0) != NGX_OK as isize {
                return fail(err, c"bad ssl conn");
            }
            if (*(*c).local_sockaddr).sa_family as c_int == libc::AF_UNIX {
                return fail(err, c"unix domain has no port");
            }
            *port = ngx_inet_get_port((*c).local_sockaddr) as u16;
            OK
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_server_name(
    r: *mut ngx_http_request_t,
    name: *mut *const c_char,
    namelen: *mut usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; out pointers are the caller's.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            let n = SSL_get_servername(ssl, 0);
            if n.is_null() {
                return NGX_DECLINED as c_int;
            }
            *name = n;
            *namelen = libc::strlen(n);
            OK
        }
    })
}

/// Reads the PEM certificates of `bio` after the first, calling `each`.
unsafe fn rest_of_pem_chain(bio: *mut BIO, mut each: impl FnMut(*mut X509) -> bool) -> bool {
    loop {
        // SAFETY: a live BIO; each certificate goes to `each` (which owns it).
        let x = unsafe { PEM_read_bio_X509(bio, ptr::null_mut(), None, ptr::null_mut()) };
        if x.is_null() {
            return pem_ended();
        }
        if !each(x) {
            return false;
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_cert_pem_to_der(
    pem: *const u8,
    pem_len: usize,
    der: *mut u8,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: pem has pem_len bytes; der has room for at least as many
        // (DER is shorter than its PEM armour).
        unsafe {
            let Some(bio) = mem_bio_or_fail(pem.cast(), pem_len, err) else {
                return ERROR;
            };
            let x = PEM_read_bio_X509_AUX(bio, ptr::null_mut(), None, ptr::null_mut());
            if x.is_null() {
                BIO_free(bio);
                ERR_clear_error();
                return fail(err, c"PEM_read_bio_X509_AUX() failed");
            }
            let mut out = der;
            let mut total = i2d_X509(x, &mut out);
            X509_free(x);
            if total < 0 {
                BIO_free(bio);
                ERR_clear_error();
                return fail(err, c"i2d_X509() failed");
            }
            let mut bad: Option<&'static CStr> = None;
            let ended = rest_of_pem_chain(bio, |x| {
                let n = i2d_X509(x, &mut out);
                X509_free(x);
                if n < 0 {
                    bad = Some(c"i2d_X509() failed");
                    return false;
                }
                total += n;
                true
            });
            BIO_free(bio);
            ERR_clear_error();
            if let Some(m) = bad {
                return fail(err, m);
            }
            if !ended {
                return fail(err, c"PEM_read_bio_X509() failed");
            }
            total
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_priv_key_pem_to_der(
    pem: *const u8,
    pem_len: usize,
    passphrase: *const u8,
    der: *mut u8,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: as in cert_pem_to_der; passphrase is null or a C string.
        unsafe {
            let Some(bio) = mem_bio_or_fail(pem.cast(), pem_len, err) else {
                return ERROR;
            };
            let pkey = PEM_read_bio_PrivateKey(bio, ptr::null_mut(), None, passphrase as *mut c_void);
            BIO_free(bio);
            if pkey.is_null() {
                ERR_clear_error();
                return fail(err, c"PEM_read_bio_PrivateKey() failed");
            }
            let mut out = der;
            let len = i2d_PrivateKey(pkey, &mut out);
            EVP_PKEY_free(pkey);
            if len < 0 {
                ERR_clear_error();
                return fail(err, c"i2d_PrivateKey() failed");
            }
            len
        }
    })
}

unsafe extern "C" fn free_x509(p: *mut c_void) {
    // SAFETY: an X509 of a chain being freed.
    unsafe { X509_free(p.cast()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_parse_pem_cert(
    pem: *const u8,
    pem_len: usize,
    err: Err,
) -> *mut c_void {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: pem has pem_len bytes; the stack and its certificates
        // are freed here on failure, else by ngx_http_lua_ffi_free_cert.
        unsafe {
            let Some(bio) = mem_bio_or_fail(pem.cast(), pem_len, err) else {
                return ptr::null_mut();
            };
            let x = PEM_read_bio_X509_AUX(bio, ptr::null_mut(), None, ptr::null_mut());
            if x.is_null() {
                BIO_free(bio);
                ERR_clear_error();
                fail(err, c"PEM_read_bio_X509_AUX() failed");
                return ptr::null_mut();
            }
            let chain = OPENSSL_sk_new_null();
            if chain.is_null() || OPENSSL_sk_push(chain, x.cast()) == 0 {
                X509_free(x);
                if !chain.is_null() {
                    OPENSSL_sk_free(chain);
                }
                BIO_free(bio);
                ERR_clear_error();
                fail(err, c"sk_X509_push() failed");
                return ptr::null_mut();
            }
            let mut pushed = true;
            let ended = rest_of_pem_chain(bio, |x| {
                if OPENSSL_sk_push(chain, x.cast()) == 0 {
                    X509_free(x);
                    pushed = false;
                    return false;
                }
                true
            });
            BIO_free(bio);
            ERR_clear_error();
            if !pushed || !ended {
                OPENSSL_sk_pop_free(chain, Some(free_x509));
                fail(
                    err,
                    if pushed {
                        c"PEM_read_bio_X509() failed"
                    } else {
                        c"sk_X509_push() failed"
                    },
                );
                return ptr::null_mut();
            }
            chain.cast()
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_free_cert(cdata: *mut c_void) {
    crate::glue::catch((), || {
        if !cdata.is_null() {
            // SAFETY: a chain from ngx_http_lua_ffi_parse_pem_cert, freed once (ffi.gc).
            unsafe { OPENSSL_sk_pop_free(cdata as *mut OPENSSL_STACK, Some(free_x509)) }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_parse_pem_priv_key(
    pem: *const u8,
    pem_len: usize,
    err: Err,
) -> *mut c_void {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: pem has pem_len bytes; the key is freed by free_priv_key.
        unsafe {
            let Some(bio) = mem_bio_or_fail(pem.cast(), pem_len, err) else {
                return ptr::null_mut();
            };
            let pkey = PEM_read_bio_PrivateKey(bio, ptr::null_mut(), None, ptr::null_mut());
            BIO_free(bio);
            if pkey.is_null() {
                ERR_clear_error();
                fail(err, c"PEM_read_bio_PrivateKey() failed");
                return ptr::null_mut();
            }
            pkey.cast()
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_free_priv_key(cdata: *mut c_void) {
    crate::glue::catch((), || {
        if !cdata.is_null() {
            // SAFETY: a key from parse_pem_priv_key, freed once (ffi.gc).
            unsafe { EVP_PKEY_free(cdata as *mut EVP_PKEY) }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_set_cert(
    r: *mut ngx_http_request_t,
    cdata: *mut c_void,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; cdata is a parsed chain.
        unsafe { set_chain(ssl_or_fail!(r, err), cdata, err) }
    })
}

/// A parsed chain (`ngx_http_lua_ffi_parse_*_cert`) into the handshake.
///
/// # Safety
/// `ssl` is live; `cdata` is null or a chain of ours.
pub(crate) unsafe fn set_chain(ssl: *mut SSL, cdata: *mut c_void, err: Err) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let chain = cdata as *mut OPENSSL_STACK;
        if chain.is_null() || OPENSSL_sk_num(chain) < 1 {
            return fail(err, c"invalid certificate chain");
        }
        let leaf = OPENSSL_sk_value(chain, 0) as *mut X509;
        if leaf.is_null() {
            return fail(err, c"sk_X509_value() failed");
        }
        if SSL_use_certificate(ssl, leaf) == 0 {
            ERR_clear_error();
            return fail(err, c"SSL_use_certificate() failed");
        }
        for i in 1..OPENSSL_sk_num(chain) {
            let x = OPENSSL_sk_value(chain, i);
            // add1: the chain takes a reference of its own.
            if x.is_null() || SSL_ctrl(ssl, SSL_CTRL_CHAIN_CERT, 1, x) == 0 {
                ERR_clear_error();
                return fail(err, c"SSL_add1_chain_cert() failed");
            }
        }
        OK
    }
}

/// A private key into the handshake (which takes a reference of its own).
///
/// # Safety
/// `ssl` is live; `pkey` a live EVP_PKEY.
pub(crate) unsafe fn set_pkey(ssl: *mut SSL, pkey: *mut c_void, err: Err) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        if SSL_use_PrivateKey(ssl, pkey as *mut EVP_PKEY) == 0 {
            ERR_clear_error();
            return fail(err, c"SSL_use_PrivateKey() failed");
        }
        OK
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_set_priv_key(
    r: *mut ngx_http_request_t,
    cdata: *mut c_void,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; cdata is a parsed key.
        unsafe {
            let ssl = ssl_or_fail!(r, err);
            if cdata.is_null() {
                return fail(err, c"invalid private key failed");
            }
            set_pkey(ssl, cdata, err)
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_get_req_ssl_pointer(r: *mut ngx_http_request_t) -> *mut SSL {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: r comes from get_request.
        unsafe { ssl_of(r).unwrap_or(ptr::null_mut()) }
    })
}
