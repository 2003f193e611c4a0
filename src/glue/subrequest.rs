//! Creating a subrequest as ngx.location.capture describes it: method,
//! arguments, request body and variables.

use nginx_sys::{
    NGX_HTTP_POST, NGX_HTTP_PUT, NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_INDEXED, NGX_OK, ngx_alloc_chain_link,
    ngx_create_temp_buf, ngx_hash_find, ngx_hash_strlow, ngx_http_post_subrequest_t, ngx_http_request_body_t,
    ngx_http_request_t, ngx_http_subrequest, ngx_http_variable_value_t, ngx_palloc, ngx_pcalloc, ngx_pnalloc,
    ngx_str_t, ngx_uint_t,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use super::escape::escape_args;
use super::{headers_in, list};

/// Name/value pairs (the `vars` option).
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One subrequest as the Lua code asked for it.
pub struct Spec {
    /// A copy in the request's pool, for this subrequest alone.
    pub uri: ngx_str_t,
    pub extra_args: Vec<u8>,
    pub method: usize,
    pub body: Option<Vec<u8>>,
    pub vars: Pairs,
    pub share_vars: bool,
    pub copy_vars: bool,
    pub forward_body: bool,
    /// Registry reference of the `ctx` option's table.
    pub ctx_ref: Option<i32>,
}

/// The request line name of an ngx.HTTP_* method.
pub fn method_name(m: usize) -> Option<&'static [u8]> {
    Some(match m {
        0x0002 => b"GET",
        0x0004 => b"HEAD",
        0x0008 => b"POST",
        0x0010 => b"PUT",
        0x0020 => b"DELETE",
        0x0040 => b"MKCOL",
        0x0080 => b"COPY",
        0x0100 => b"MOVE",
        0x0200 => b"OPTIONS",
        0x0400 => b"PROPFIND",
        0x0800 => b"PROPPATCH",
        0x1000 => b"LOCK",
        0x2000 => b"UNLOCK",
        0x4000 => b"PATCH",
        0x8000 => b"TRACE",
        _ => return None,
    })
}

unsafe fn pool_str(r: *mut ngx_http_request_t, b: &[u8]) -> Result<ngx_str_t, String> {
    if b.is_empty() {
        return Ok(ngx_str_t::empty());
    }
    // SAFETY: `r` is a live request (callers' duty)
    let p = unsafe { ngx_pnalloc((*r).pool, b.len()) } as *mut u8;
    if p.is_null() {
        return Err("no memory".into());
    }
    // SAFETY: `p` has b.len() fresh bytes, apart from `b`
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len()) };
    Ok(ngx_str_t {
        len: b.len(),
        data: p,
    })
}

/// Issues a subrequest of `r` finalized through `ps`.
///
/// # Safety
/// `r` must be a live request; `ps` must live as long as its pool.
pub unsafe fn issue(
    r: *mut ngx_http_request_t,
    ps: *mut ngx_http_post_subrequest_t,
    spec: &Spec,
) -> Result<*mut ngx_http_request_t, String> {
    // SAFETY: `r` is a live request (caller's contract)
    let Some((mut uri, args)) = (unsafe { super::uri::split_safe_copy(r, spec.uri, false) }) else {
        // lua-nginx-module prints the uri as a C string: up to a NUL.
        let shown = spec.uri.as_bytes().split(|&c| c == 0).next().unwrap_or_default();
        return Err(format!(
            "unsafe uri in argument #1: {}",
            String::from_utf8_lossy(shown)
        ));
    };
    let mut all = args.as_bytes().to_vec();
    if !spec.extra_args.is_empty() {
        if !all.is_empty() {
            all.push(b'&');
        }
        all.extend_from_slice(&spec.extra_args);
    }
    // Query strings from Lua strings get set_uri_args' escaping, so that no
    // byte of them can end the request line a proxied subrequest sends
    // (lua-nginx-module passes them raw); encoded tables are unchanged.
    // SAFETY: `r` is a live request (caller's contract)
    let mut args = unsafe { pool_str(r, &escape_args(&all)) }?;
    // nginx would refuse (and log) this too; lua-nginx-module checks first,
    // with its own wording.
    // SAFETY: `r` is a live request (caller's contract)
    if unsafe { (*r).subrequests() } == 0 {
        let mut msg = b"lua subrequests cycle while processing \"".to_vec();
        msg.extend_from_slice(uri.as_bytes());
        msg.push(b'"');
        // SAFETY: `r` is a live request (caller's contract)
        super::log::error(unsafe { (*(*r).connection).log }, nginx_sys::NGX_LOG_ERR, &msg);
        return Err("failed to issue subrequest: -1".into());
    }
    // SAFETY: `r` is a live request (caller's contract)
    let c = unsafe { (*r).connection };
    super::log::log_debug_http!(
        // SAFETY: `c` is the live request's connection
        unsafe { (*c).log },
        "lua http subrequest \"{}?{}\"",
        crate::glue::log::Lossy(uri.as_bytes()),
        crate::glue::log::Lossy(args.as_bytes())
    );
    // SAFETY: `c` is the live request's connection
    let active = unsafe { (*c).data };
    let mut sr: *mut ngx_http_request_t = std::ptr::null_mut();
    // SAFETY: `r` is live; `ps` lives as long as its pool (caller's contract)
    let rc = unsafe { ngx_http_subrequest(r, &mut uri, &mut args, &mut sr, ps, 0) };
    if rc != NGX_OK as isize || sr.is_null() {
        return Err(format!("failed to issue subrequest: {rc}"));
    }
    // The output of our subrequests is captured before the postpone filter
    // (runtime/capture.rs): they take no place in the parent's output order.
    // SAFETY: `c` is live, `sr` the subrequest nginx just made of `r`
    unsafe {
        (*c).data = active;
        unlink_postponed(r, sr);
    }
    // SAFETY: `r` is live and `sr` its new subrequest
    if let Err(why) = unsafe { adjust(r, sr, spec) } {
        // As lua-nginx-module: the reason in the log, the subrequest
        // undone (nginx would otherwise run it and wake a parent whose
        // code has ended, leaving the connection open), a general error.
        // SAFETY: `c` is the live request's connection
        super::log::error(unsafe { (*c).log }, nginx_sys::NGX_LOG_ERR, why.as_bytes());
        // SAFETY: `sr` was just made and posted; nothing has run it
        unsafe { cancel(sr) };
        return Err("failed to adjust the subrequest: -1".into());
    }
    Ok(sr)
}

/// Undoes `ngx_http_subrequest` for `sr`, which nothing has run yet: its
/// entry in the main request's posted requests and the reference to the
/// main request it took.
///
/// # Safety
/// `sr` is a subrequest `ngx_http_subrequest` just made, of a live request.
pub unsafe fn cancel(sr: *mut ngx_http_request_t) {
    // SAFETY: `sr` and its main request are live (the contract); the
    // posted list is the main request's, of live entries.
    unsafe {
        let main = (*sr).main;
        let mut p = &mut (*main).posted_requests as *mut *mut nginx_sys::ngx_http_posted_request_t;
        while !(*p).is_null() {
            if (**p).request == sr {
                *p = (**p).next;
                break;
            }
            p = &mut (**p).next;
        }
        (*main).set_count((*main).count() - 1);
    }
}

unsafe fn unlink_postponed(r: *mut ngx_http_request_t, sr: *mut ngx_http_request_t) {
    // SAFETY: `r` is a live request (issue's contract)
    let mut p = unsafe { &mut (*r).postponed } as *mut *mut nginx_sys::ngx_http_postponed_request_t;
    // SAFETY: `p` points at `r.postponed` or the `next` of a live entry
    while !unsafe { (*p).is_null() } {
        // SAFETY: `*p` is a live, non-null postponed entry
        if unsafe { (**p).request } == sr {
            // SAFETY: `*p` is a live entry; unlinking keeps the list well formed
            unsafe {
                *p = (**p).next;
            }
            return;
        }
        // SAFETY: `*p` is a live, non-null postponed entry
        p = unsafe { &mut (**p).next };
    }
}

/// Method, request body and variables of the new subrequest.
unsafe fn adjust(r: *mut ngx_http_request_t, sr: *mut ngx_http_request_t, spec: &Spec) -> Result<(), String> {
    let name = method_name(spec.method).ok_or("bad method")?;
    // SAFETY: `sr` is the live subrequest nginx just made
    unsafe {
        (*sr).method = spec.method as _;
    }
    // SAFETY: `sr` is live; `name` is a static method name
    unsafe {
        (*sr).method_name = ngx_str_t {
            len: name.len(),
            data: name.as_ptr() as *mut u8,
        };
    }
    if let Some(body) = &spec.body {
        // SAFETY: `sr` is live and `r` its live parent
        unsafe {
            (*sr).request_body = request_body(r, body)?;
        }
        // SAFETY: `r` and `sr` are the live parent and subrequest
        (unsafe { set_content_length(r, sr, body.len()) })?;
    } else if !spec.forward_body
        && spec.method != NGX_HTTP_PUT as usize
        && spec.method != NGX_HTTP_POST as usize
        // SAFETY: `r` is a live request (issue's contract)
        && unsafe { (*r).headers_in.content_length_n } > 0
    {
        // SAFETY: `sr` is the live subrequest nginx just created
        unsafe { (*sr).request_body = std::ptr::null_mut() };
        // SAFETY: `r` and `sr` are the live parent and subrequest
        (unsafe { set_content_length(r, sr, 0) })?;
    } else {
        // SAFETY: `r` and `sr` are the live parent and subrequest
        unsafe { headers_in::copy_to_subrequest(r, sr, &[]) }.ok_or("no memory")?;
    }
    if !spec.share_vars {
        // SAFETY: `r` is a live request; the borrow ends within this statement's use of the conf
        let cmcf = NgxHttpCoreModule::main_conf(unsafe { &*r }).ok_or("no core conf")?;
        let size = cmcf.variables.nelts * std::mem::size_of::<ngx_http_variable_value_t>();
        // SAFETY: `r` is a live request
        let v = unsafe { ngx_pcalloc((*r).pool, size) } as *mut ngx_http_variable_value_t;
        if v.is_null() {
            return Err("no memory".into());
        }
        if spec.copy_vars {
            // SAFETY: both arrays have one slot per variable of the core main conf
            unsafe { std::ptr::copy_nonoverlapping((*r).variables, v, cmcf.variables.nelts) };
        }
        // SAFETY: `sr` is live; `v` lives in the parent's pool, which outlives it
        unsafe {
            (*sr).variables = v;
        }
    }
    for (k, val) in &spec.vars {
        // SAFETY: `sr` is the live subrequest
        (unsafe { set_var(sr, k, val) })?;
    }
    Ok(())
}

unsafe fn request_body(
    r: *mut ngx_http_request_t,
    body: &[u8],
) -> Result<*mut ngx_http_request_body_t, String> {
    // SAFETY: `r` is a live request (adjust's caller's contract)
    let pool = unsafe { (*r).pool };
    // SAFETY: `pool` is the live request's pool
    let rb = unsafe { ngx_pcalloc(pool, std::mem::size_of::<ngx_http_request_body_t>()) };
    let rb = rb as *mut ngx_http_request_body_t;
    if rb.is_null() {
        return Err("no memory".into());
    }
    if !body.is_empty() {
        // SAFETY: `pool` is the live request's pool
        let b = unsafe { ngx_create_temp_buf(pool, body.len()) };
        // SAFETY: `pool` is the live request's pool
        let cl = unsafe { ngx_alloc_chain_link(pool) };
        if b.is_null() || cl.is_null() {
            return Err("no memory".into());
        }
        // SAFETY: `b` has body.len() bytes of room; `b`, `cl`, `rb` were allocated and checked
        unsafe {
            std::ptr::copy_nonoverlapping(body.as_ptr(), (*b).last, body.len());
            (*b).last = (*b).last.add(body.len());
            (*b).set_last_buf(1);
            (*cl).buf = b;
            (*cl).next = std::ptr::null_mut();
            (*rb).bufs = cl;
        }
        // SAFETY: `rb` and `b` were allocated and checked
        unsafe {
            (*rb).buf = b;
        }
    }
    Ok(rb)
}

/// Gives the subrequest a copy of the parent's request headers with its
/// own Content-Length.
unsafe fn set_content_length(
    r: *mut ngx_http_request_t,
    sr: *mut ngx_http_request_t,
    len: usize,
) -> Result<(), String> {
    // SAFETY: `r` and `sr` are the live parent and subrequest (caller's contract)
    unsafe { headers_in::copy_to_subrequest(r, sr, &[b"Content-Length", b"Transfer-Encoding"]) }
        .ok_or("no memory")?;
    // SAFETY: `sr` is a live subrequest; no other reference to its headers_in is held
    let hi = unsafe { &mut (*sr).headers_in };
    // SAFETY: `r` is a live request (caller's contract)
    let value = unsafe { pool_str(r, len.to_string().as_bytes()) }?;
    // SAFETY: as above
    let lower = unsafe { pool_str(r, b"content-length") }?;
    // SAFETY: as above
    let key = unsafe { pool_str(r, b"Content-Length") }?;
    let h = super::ngx_version::table_elt(
        // SAFETY: `lower` is a pool string of `len` bytes
        unsafe { nginx_sys::ngx_hash_key(lower.data, lower.len) },
        key,
        value,
        lower.data,
    );
    // SAFETY: the subrequest's list was just initialised
    let p = unsafe { list::push_header(&mut hi.headers, h) };
    if p.is_null() {
        return Err("no memory".into());
    }
    hi.content_length = p;
    hi.content_length_n = len as _;
    hi.transfer_encoding = std::ptr::null_mut();
    hi.set_chunked(0);
    Ok(())
}

/// The `vars` option: sets a variable of the subrequest.
unsafe fn set_var(sr: *mut ngx_http_request_t, name: &[u8], value: &[u8]) -> Result<(), String> {
    // SAFETY: `sr` is the live subrequest (adjust's caller's contract)
    let cmcf = NgxHttpCoreModule::main_conf_mut(unsafe { &*sr }).ok_or("no core conf")?;
    // SAFETY: `sr` is the live subrequest
    let lname = unsafe { ngx_palloc((*sr).pool, name.len().max(1)) } as *mut u8;
    if lname.is_null() {
        return Err("no memory".into());
    }
    // SAFETY: `lname` has name.len() bytes; ngx_hash_strlow only reads `name`
    let key = unsafe { ngx_hash_strlow(lname, name.as_ptr() as *mut u8, name.len()) };
    // SAFETY: the core conf's variables hash is built; `lname` holds the lower-cased name
    let v = unsafe { ngx_hash_find(&mut cmcf.variables_hash, key, lname, name.len()) }
        as *mut nginx_sys::ngx_http_variable_t;
    let shown = String::from_utf8_lossy(name);
    if v.is_null() {
        return Err(format!(
            "variable \"{shown}\" cannot be assigned a value (maybe you forgot to define it first?) "
        ));
    }
    // SAFETY: `v` is a live variable definition found in the hash
    if unsafe { (*v).flags } & NGX_HTTP_VAR_CHANGEABLE as ngx_uint_t == 0 {
        return Err(format!("variable \"{shown}\" not changeable"));
    }
    // SAFETY: `sr` is the live subrequest
    let data = unsafe { pool_str(sr, value) }?;
    // SAFETY: the struct is plain C data; all-zero is valid
    let mut vv: ngx_http_variable_value_t = unsafe { std::mem::zeroed() };
    vv.set_len(data.len as u32);
    vv.set_valid(1);
    vv.data = data.data;
    // SAFETY: `v` is a live variable definition found in the hash
    if let Some(set) = unsafe { (*v).set_handler } {
        // SAFETY: `sr` is the live subrequest
        let p = unsafe { ngx_palloc((*sr).pool, std::mem::size_of::<ngx_http_variable_value_t>()) }
            as *mut ngx_http_variable_value_t;
        if p.is_null() {
            return Err("no memory".into());
        }
        // SAFETY: `p` was allocated and checked; the handler gets the live subrequest and its own data
        unsafe {
            *p = vv;
            set(sr, p, (*v).data);
        }
        return Ok(());
    }
    // SAFETY: `v` is a live variable definition found in the hash
    if unsafe { (*v).flags } & NGX_HTTP_VAR_INDEXED as ngx_uint_t != 0 {
        // SAFETY: `sr`'s variables have a slot per indexed variable, `index` among them
        unsafe {
            *(*sr).variables.add((*v).index) = vv;
        }
        return Ok(());
    }
    Err(format!(
        "variable \"{shown}\" cannot be assigned a value (maybe you forgot to define it first?) "
    ))
}
