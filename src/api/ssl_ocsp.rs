//! `ngx.ocsp`'s C side (lua-nginx-module's names and signatures): the
//! OCSP responder of a DER chain, an OCSP request for its leaf, checking a
//! response against the chain, and stapling a response in the handshake.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use nginx_sys::{
    ASN1_GENERALIZEDTIME, BIO, BIO_ctrl, BIO_free, BIO_new_mem_buf, CRYPTO_malloc, ERR_clear_error, NGX_BUSY,
    NGX_DECLINED, OCSP_BASICRESP_free, OCSP_CERTID_free, OCSP_REQUEST_free, OCSP_REQUEST_new,
    OCSP_RESPONSE_free, OCSP_basic_verify, OCSP_cert_status_str, OCSP_cert_to_id, OCSP_check_validity,
    OCSP_request_add0_id, OCSP_resp_find_status, OCSP_response_get1_basic, OCSP_response_status,
    OCSP_response_status_str, OPENSSL_sk_free, OPENSSL_sk_new_null, OPENSSL_sk_push, OPENSSL_sk_value, SSL,
    SSL_CTX_callback_ctrl, SSL_ctrl, SSL_get_SSL_CTX, X509, X509_check_issued, X509_email_free, X509_free,
    X509_get1_ocsp, d2i_OCSP_RESPONSE, d2i_X509_bio, i2d_OCSP_REQUEST, ngx_http_request_t,
};

use super::ssl::{ERROR, OK, fail, ssl_of};

type Err = *mut *const c_char;

const BIO_CTRL_EOF: c_int = 2;
const OCSP_NOVERIFY: u64 = 0x10;
const SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB: c_int = 63;
const SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP: c_int = 71;
const SSL_CTRL_GET_TLSEXT_STATUS_REQ_TYPE: c_int = 127;

/// The leaf and (when `want_issuer`) its issuer from a DER chain; freed
/// on drop.
struct Chain {
    bio: *mut BIO,
    cert: *mut X509,
    issuer: *mut X509,
}

impl Drop for Chain {
    fn drop(&mut self) {
        // SAFETY: each is null or owned by this Chain.
        unsafe {
            if !self.issuer.is_null() {
                X509_free(self.issuer);
            }
            if !self.cert.is_null() {
                X509_free(self.cert);
            }
            if !self.bio.is_null() {
                BIO_free(self.bio);
            }
        }
    }
}

impl Chain {
    /// Reads the leaf.
    unsafe fn leaf(data: *const c_char, len: usize) -> Result<Chain, &'static CStr> {
        // SAFETY: data has len bytes, alive while the Chain is.
        unsafe {
            let mut ch = Chain {
                bio: BIO_new_mem_buf(data.cast(), len as c_int),
                cert: ptr::null_mut(),
                issuer: ptr::null_mut(),
            };
            if ch.bio.is_null() {
                return Err(c"BIO_new_mem_buf() failed");
            }
            ch.cert = d2i_X509_bio(ch.bio, ptr::null_mut());
            if ch.cert.is_null() {
                return Err(c"d2i_X509_bio() failed");
            }
            Ok(ch)
        }
    }

    /// Reads the next certificate, the leaf's issuer.
    unsafe fn read_issuer(&mut self) -> Result<(), &'static CStr> {
        // SAFETY: the Chain's live BIO.
        unsafe {
            if BIO_ctrl(self.bio, BIO_CTRL_EOF, 0, ptr::null_mut()) != 0 {
                return Err(c"no issuer certificate in chain");
            }
            self.issuer = d2i_X509_bio(self.bio, ptr::null_mut());
            if self.issuer.is_null() {
                return Err(c"d2i_X509_bio() failed");
            }
            Ok(())
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_get_ocsp_responder_from_der_chain(
    chain_data: *const c_char,
    chain_len: usize,
    out: *mut u8,
    out_size: *mut usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: chain_data has chain_len bytes; out has *out_size.
        unsafe {
            let mut ch = match Chain::leaf(chain_data, chain_len) {
                Ok(c) => c,
                Err(m) => {
                    ERR_clear_error();
                    return fail(err, m);
                }
            };
            let aia = X509_get1_ocsp(ch.cert);
            if aia.is_null() {
                return NGX_DECLINED as c_int;
            }
            let s = OPENSSL_sk_value(aia as *const _, 0) as *const c_char;
            if s.is_null() {
                X509_email_free(aia);
                return NGX_DECLINED as c_int;
            }
            let rc = super::ssl::copy_out(
                std::slice::from_raw_parts(s.cast::<u8>(), libc::strlen(s)),
                out,
                out_size,
            );
            X509_email_free(aia);
            if let Err(m) = ch.read_issuer() {
                ERR_clear_error();
                return fail(err, m);
            }
            if X509_check_issued(ch.issuer, ch.cert) != 0 {
                ERR_clear_error();
                return fail(err, c"issuer certificate not next to leaf");
            }
            rc
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_create_ocsp_request(
    chain_data: *const c_char,
    chain_len: usize,
    out: *mut u8,
    out_size: *mut usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: chain_data has chain_len bytes; out has *out_size.
        unsafe {
            let res = (|| {
                let mut ch = Chain::leaf(chain_data, chain_len).map_err(|m| (m, ERROR))?;
                ch.read_issuer().map_err(|m| (m, ERROR))?;
                let req = OCSP_REQUEST_new();
                if req.is_null() {
                    return Err((c"OCSP_REQUEST_new() failed", ERROR));
                }
                let done = |r| {
                    OCSP_REQUEST_free(req);
                    r
                };
                let id = OCSP_cert_to_id(ptr::null(), ch.cert, ch.issuer);
                if id.is_null() {
                    return done(Err((c"OCSP_cert_to_id() failed", ERROR)));
                }
                if OCSP_request_add0_id(req, id).is_null() {
                    OCSP_CERTID_free(id);
                    return done(Err((c"OCSP_request_add0_id() failed", ERROR)));
                }
                let len = i2d_OCSP_REQUEST(req, ptr::null_mut());
                if len <= 0 {
                    return done(Err((c"i2d_OCSP_REQUEST() failed", ERROR)));
                }
                if len as usize > *out_size {
                    *out_size = len as usize;
                    return done(Err((c"output buffer too small", NGX_BUSY as c_int)));
                }
                let mut p = out;
                let len = i2d_OCSP_REQUEST(req, &mut p);
                if len <= 0 {
                    return done(Err((c"i2d_OCSP_REQUEST() failed", ERROR)));
                }
                *out_size = len as usize;
                done(Ok(()))
            })();
            match res {
                Ok(()) => OK,
                Err((m, rc)) => {
                    ERR_clear_error();
                    fail(err, m);
                    rc
                }
            }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_validate_ocsp_response(
    resp: *const u8,
    resp_len: usize,
    chain_data: *const c_char,
    chain_len: usize,
    errbuf: *mut u8,
    errbuf_size: *mut usize,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: the buffers have their stated sizes.
        unsafe {
            match validate(resp, resp_len, chain_data, chain_len) {
                Ok(()) => OK,
                Err(msg) => {
                    ERR_clear_error();
                    let n = msg.len().min(*errbuf_size);
                    ptr::copy_nonoverlapping(msg.as_ptr(), errbuf, n);
                    *errbuf_size = n;
                    ERROR
                }
            }
        }
    })
}

unsafe fn validate(
    resp: *const u8,
    resp_len: usize,
    chain_data: *const c_char,
    chain_len: usize,
) -> Result<(), String> {
    // SAFETY: the buffers have their stated sizes; every object made here
    // is freed before returning.
    unsafe {
        let mut p = resp;
        let ocsp = d2i_OCSP_RESPONSE(ptr::null_mut(), &mut p, resp_len as _);
        if ocsp.is_null() {
            return Err("d2i_OCSP_RESPONSE() failed".into());
        }
        let basic_res = (|| {
            let n = OCSP_response_status(ocsp);
            if n != 0 {
                let s = CStr::from_ptr(OCSP_response_status_str(n as _)).to_string_lossy();
                return Err(format!("OCSP response not successful ({n}: {s})"));
            }
            let basic = OCSP_response_get1_basic(ocsp);
            if basic.is_null() {
                return Err("OCSP_response_get1_basic() failed".into());
            }
            let r = check_basic(basic, chain_data, chain_len);
            OCSP_BASICRESP_free(basic);
            r
        })();
        OCSP_RESPONSE_free(ocsp);
        basic_res
    }
}

unsafe fn check_basic(
    basic: *mut nginx_sys::OCSP_BASICRESP,
    chain_data: *const c_char,
    chain_len: usize,
) -> Result<(), String> {
    // SAFETY: basic is live; see validate.
    unsafe {
        let mut ch = Chain::leaf(chain_data, chain_len).map_err(|m| m.to_string_lossy().into_owned())?;
        ch.read_issuer().map_err(|m| m.to_string_lossy().into_owned())?;
        let stack = OPENSSL_sk_new_null();
        if stack.is_null() {
            return Err("sk_X509_new_null() failed".into());
        }
        OPENSSL_sk_push(stack, ch.issuer.cast());
        let verified = OCSP_basic_verify(basic, stack.cast(), ptr::null_mut(), OCSP_NOVERIFY as _) == 1;
        OPENSSL_sk_free(stack);
        if !verified {
            return Err("OCSP_basic_verify() failed".into());
        }
        let id = OCSP_cert_to_id(ptr::null(), ch.cert, ch.issuer);
        if id.is_null() {
            return Err("OCSP_cert_to_id() failed".into());
        }
        let mut status: c_int = 0;
        let mut this_upd: *mut ASN1_GENERALIZEDTIME = ptr::null_mut();
        let mut next_upd: *mut ASN1_GENERALIZEDTIME = ptr::null_mut();
        let found = OCSP_resp_find_status(
            basic,
            id,
            &mut status,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut this_upd,
            &mut next_upd,
        ) == 1;
        OCSP_CERTID_free(id);
        if !found {
            return Err("certificate status not found in the OCSP response".into());
        }
        if status != 0 {
            let s = CStr::from_ptr(OCSP_cert_status_str(status as _)).to_string_lossy();
            return Err(format!("certificate status \"{s}\" in the OCSP response"));
        }
        if OCSP_check_validity(this_upd, next_upd, 300, -1) != 1 {
            return Err("OCSP_check_validity() failed".into());
        }
        Ok(())
    }
}

unsafe extern "C" fn empty_status_cb(_ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    0 // SSL_TLSEXT_ERR_OK
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ssl_set_ocsp_status_resp(
    r: *mut ngx_http_request_t,
    resp: *const u8,
    resp_len: usize,
    err: Err,
) -> c_int {
    crate::glue::catch(ERROR, || {
        // SAFETY: r comes from get_request; resp has resp_len bytes; the
        // copy goes to OpenSSL, which frees it.
        unsafe {
            let ssl = match ssl_of(r) {
                Ok(s) => s,
                Err(m) => return fail(err, m),
            };
            if SSL_ctrl(ssl, SSL_CTRL_GET_TLSEXT_STATUS_REQ_TYPE, 0, ptr::null_mut()) == -1 {
                return NGX_DECLINED as c_int;
            }
            // OpenSSL sends a staple only when a status callback is set.
            let cb: unsafe extern "C" fn(*mut SSL, *mut c_void) -> c_int = empty_status_cb;
            SSL_CTX_callback_ctrl(
                SSL_get_SSL_CTX(ssl),
                SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                Some(std::mem::transmute::<
                    unsafe extern "C" fn(*mut SSL, *mut c_void) -> c_int,
                    unsafe extern "C" fn(),
                >(cb)),
            );
            let p = CRYPTO_malloc(resp_len.max(1), c"ssl_ocsp".as_ptr(), 0) as *mut u8;
            if p.is_null() {
                return fail(err, c"OPENSSL_malloc() failed");
            }
            ptr::copy_nonoverlapping(resp, p, resp_len);
            SSL_ctrl(
                ssl,
                SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP,
                resp_len as _,
                p.cast(),
            );
            OK
        }
    })
}
