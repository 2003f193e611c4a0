//! ngx.req.read_body, discard_body, get_body_data, get_body_file,
//! set_body_data, set_body_file, init_body, append_body, finish_body.

use std::mem::size_of;

use nginx_sys::{
    NGX_AGAIN, NGX_ERROR, NGX_HTTP_SPECIAL_RESPONSE, ngx_buf_t, ngx_chain_t, ngx_http_discard_request_body,
    ngx_http_read_client_request_body, ngx_http_request_body_t, ngx_http_request_t, ngx_pcalloc,
    ngx_pool_cleanup_add, ngx_pool_cleanup_file, ngx_pool_cleanup_file_t, ngx_pool_delete_file,
    ngx_temp_file_t, ngx_write_chain_to_temp_file,
};
use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use super::req::{push_req_table, request};
use crate::glue::buf::chain_from_bytes;
use crate::glue::headers::pool_str;
use crate::glue::headers_in;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, check_number, ffi, lua_State, push_bytes, set_fn};
use crate::runtime::body_wait;
use crate::runtime::context::{self, Context, REQUEST_YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::yield_wait;

lua_fns! {
    read_body => read_body_impl,
    discard_body => discard_body_impl,
    get_body_data => get_body_data_impl,
    get_body_file => get_body_file_impl,
    set_body_data => set_body_data_impl,
    set_body_file => set_body_file_impl,
    init_body => init_body_impl,
    append_body => append_body_impl,
    finish_body => finish_body_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushcfunction(l, read_body) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { crate::runtime::need_body::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        push_req_table(l);
        set_fn(l, -1, c"read_body", read_body);
        set_fn(l, -1, c"discard_body", discard_body);
        set_fn(l, -1, c"get_body_data", get_body_data);
        set_fn(l, -1, c"get_body_file", get_body_file);
        set_fn(l, -1, c"set_body_data", set_body_data);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"set_body_file", set_body_file);
        set_fn(l, -1, c"init_body", init_body);
        set_fn(l, -1, c"append_body", append_body);
        set_fn(l, -1, c"finish_body", finish_body);
        ffi::lua_pop(l, 1);
    }
    Ok(())
}

const BODY_PHASES: Context = REQUEST_YIELDABLE;

/// The in-memory part of a read body.
///
/// # Safety
/// `rb` must be a live request body.
pub unsafe fn memory_body(rb: *mut ngx_http_request_body_t) -> Vec<u8> {
    let mut out = Vec::new();
    // SAFETY: `rb` is a live request body (caller's contract)
    let mut cl = unsafe { (*rb).bufs };
    while !cl.is_null() {
        // SAFETY: `cl` is a live link of the body's chain
        let b = unsafe { (*cl).buf };
        // SAFETY: `b` is the link's live buffer, checked non-null first
        if !b.is_null() && unsafe { (*b).in_file() == 0 && !(*b).pos.is_null() && (*b).last > (*b).pos } {
            // SAFETY: `b` is in memory with pos < last inside its memory
            let n = unsafe { (*b).last.offset_from((*b).pos) } as usize;
            // SAFETY: `b` holds `n` bytes from `pos`
            out.extend_from_slice(unsafe { std::slice::from_raw_parts((*b).pos, n) });
        }
        // SAFETY: `cl` is a live link of the body's chain
        cl = unsafe { (*cl).next };
    }
    out
}

/// Whether the request has a body still to read.
unsafe fn has_body(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (callers' duty)
    (unsafe { (*r).headers_in.content_length_n }) > 0 || unsafe { (*r).headers_in.chunked() } != 0
}

unsafe fn read_body_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 0 {
        return Err("expecting 0 arguments".into());
    }
    let ctx = ctx::request()?;
    let r = ctx.r;
    // SAFETY: `r` is the live request of the running context
    if !unsafe { (*r).request_body.is_null() } || unsafe { (*r).discard_body() } != 0 {
        return Ok(0);
    }
    // SAFETY: `r` is the live request of the running context
    if !unsafe { has_body(r) } {
        // SAFETY: `r` is the live request of the running context
        let rb = unsafe { ngx_pcalloc((*r).pool, size_of::<ngx_http_request_body_t>()) };
        if rb.is_null() {
            return Err("no memory".into());
        }
        // SAFETY: `r` is the live request of the running context
        unsafe {
            (*r).request_body = rb.cast();
        }
        return Ok(0);
    }
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).set_request_body_in_single_buf(1);
        (*r).set_request_body_in_persistent_file(1);
        (*r).set_request_body_in_clean_file(1);
    }
    // SAFETY: `r` is the live request of the running context
    let rc = unsafe { ngx_http_read_client_request_body(r, Some(body_wait::post_read)) };
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as isize || rc == NGX_ERROR as isize {
        // 413 for a body over client_max_body_size, 400 for bad chunks...
        ctx.exit_code = Some(rc);
        // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
        return unsafe { yield_wait(l) };
    }
    // Our own hold on the request (taken when the code waits) replaces the
    // one nginx took for reading.
    // SAFETY: `r` is the live request of the running context
    unsafe { (*(*r).main).set_count((*(*r).main).count() - 1) };
    if rc != NGX_AGAIN as isize {
        return Ok(0);
    }
    let ctx_ptr: *mut RequestCtx = ctx;
    let co = ctx.running;
    // SAFETY: `ctx_ptr` is the live running context; no other reference to it is used across the call
    let w = body_wait::arm(unsafe { &mut *ctx_ptr }, co);
    match ctx.running_thread() {
        Some(t) => t.wait = Some(w.into()),
        None => {
            // Not reachable from request code; keep nginx's reader from
            // resuming nothing.
            ctx.body_waiter = std::ptr::null_mut();
            return Err("no request thread to suspend".into());
        }
    }
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

unsafe fn discard_body_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(BODY_PHASES)?;
    let r = request()?;
    // SAFETY: `r` is the live request of the running context
    let rc = unsafe { ngx_http_discard_request_body(r) };
    if rc != 0 && rc != NGX_AGAIN as isize {
        let ctx = ctx::request()?;
        ctx.exit_code = Some(rc);
        // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
        return unsafe { yield_wait(l) };
    }
    Ok(0)
}

unsafe fn get_body_data_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let max = if unsafe { ffi::lua_gettop(l) } >= 1 && unsafe { ffi::lua_isnil(l, 1) } == 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        Some(unsafe { check_number(l, 1, "get_body_data") }?.max(0.0) as usize)
    } else {
        None
    };
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { (*r).request_body };
    // SAFETY: `rb` is the live body of the running request (checked non-null first)
    if rb.is_null() || unsafe { (*rb).bufs.is_null() } || !unsafe { (*rb).temp_file.is_null() } {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    }
    // SAFETY: `rb` is the live body of the running request
    let mut data = unsafe { memory_body(rb) };
    if let Some(m) = max {
        data.truncate(m);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, &data) };
    Ok(1)
}

unsafe fn get_body_file_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { (*r).request_body };
    // SAFETY: `rb` is the live body of the running request (checked non-null first)
    if rb.is_null() || unsafe { (*rb).temp_file.is_null() } {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    }
    // SAFETY: `rb` and its temp file are live (checked non-null)
    unsafe { push_bytes(l, (*(*rb).temp_file).file.name.as_bytes()) };
    Ok(1)
}

/// The request body, which must have been read (or initialised) first.
unsafe fn read_body_struct(r: *mut ngx_http_request_t) -> Result<*mut ngx_http_request_body_t, String> {
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { (*r).discard_body() } != 0 {
        return Err("request body already discarded asynchronously".into());
    }
    // SAFETY: `r` is a live request (callers' duty)
    let rb = unsafe { (*r).request_body };
    if rb.is_null() {
        return Err("request body not read yet".into());
    }
    Ok(rb)
}

/// Closes the body's current file now, deleting it if it was set to be
/// cleaned (lua-nginx-module runs the file's pool cleanup at once when a
/// body is replaced, rather than at the end of the request).
unsafe fn release_body_file(r: *mut ngx_http_request_t, rb: *mut ngx_http_request_body_t) {
    // SAFETY: `rb` is the live body of request `r` (callers' duty)
    let tf = unsafe { (*rb).temp_file };
    // SAFETY: a non-null temp file of the body is live
    if tf.is_null() || unsafe { (*tf).file.fd } == -1 {
        return;
    }
    // SAFETY: a non-null temp file of the body is live
    let fd = unsafe { (*tf).file.fd };
    // SAFETY: `r` is a live request (callers' duty)
    let mut c = unsafe { (*(*r).pool).cleanup };
    while !c.is_null() {
        // SAFETY: `c` walks the live cleanup list of the request's pool
        let h = unsafe { (*c).handler };
        let ours = h.is_some_and(|f| {
            std::ptr::fn_addr_eq(f, ngx_pool_cleanup_file as unsafe extern "C" fn(_))
                || std::ptr::fn_addr_eq(f, ngx_pool_delete_file as unsafe extern "C" fn(_))
        });
        // SAFETY: a file cleanup's data is its ngx_pool_cleanup_file_t
        if ours && unsafe { (*((*c).data as *mut ngx_pool_cleanup_file_t)).fd } == fd {
            if let Some(f) = h {
                // SAFETY: runs the file cleanup once with its own data; it is disarmed below
                unsafe { f((*c).data) };
            }
            // SAFETY: `c` is a live cleanup entry of the request's pool
            unsafe {
                (*c).handler = None;
            }
            break;
        }
        // SAFETY: `c` is a live cleanup entry of the request's pool
        c = unsafe { (*c).next };
    }
    // SAFETY: `tf` and `rb` are live; the file was closed above
    unsafe {
        (*tf).file.fd = -1;
        (*rb).temp_file = std::ptr::null_mut();
    }
}

/// Makes `cl` the whole body and `len` its length for later modules.
unsafe fn replace_body(
    r: *mut ngx_http_request_t,
    rb: *mut ngx_http_request_body_t,
    cl: *mut ngx_chain_t,
    tf: *mut ngx_temp_file_t,
    len: usize,
) -> Result<(), String> {
    // SAFETY: `rb` is the live body of request `r` (callers' duty)
    unsafe {
        (*rb).bufs = cl;
    }
    // With a temp file, upstreams reuse `rb->buf` as their copy buffer: it
    // must be a memory buffer or absent, never the file buffer itself.
    // SAFETY: `rb` is live; a non-null `cl` is a live chain from the request's pool
    unsafe {
        (*rb).buf = if cl.is_null() || !tf.is_null() {
            std::ptr::null_mut()
        } else {
            (*cl).buf
        };
    }
    // SAFETY: `r` is a live request (callers' duty)
    unsafe {
        (*rb).temp_file = tf;
        (*rb).rest = 0;
        (*r).headers_in.set_chunked(0);
    }
    // SAFETY: `r` is a live request (callers' duty)
    (unsafe { headers_in::set(r, b"Transfer-Encoding", &[]) }).ok_or("no memory")?;
    // SAFETY: `r` is a live request (callers' duty)
    (unsafe { headers_in::set(r, b"Content-Length", &[len.to_string().into_bytes().into()]) })
        .ok_or("no memory")?;
    Ok(())
}

unsafe fn memory_chain(r: *mut ngx_http_request_t, data: &[u8]) -> Result<*mut ngx_chain_t, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let cl = unsafe { chain_from_bytes((*r).pool, data) }.ok_or("no memory")?;
    // SAFETY: chain_from_bytes gave a live link with a live buffer
    let b: *mut ngx_buf_t = unsafe { (*cl).buf };
    if data.is_empty() {
        // SAFETY: `b` is the live buffer just made
        unsafe { (*b).set_sync(1) };
    }
    // SAFETY: `b` is the live buffer just made
    unsafe {
        (*b).set_last_buf(1);
        (*b).set_last_in_chain(1);
    }
    Ok(cl)
}

unsafe fn set_body_data_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(BODY_PHASES)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err("expecting 1 argument".into());
    }
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let data = unsafe { check_bytes(l, 1, "set_body_data") }?;
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { read_body_struct(r) }?;
    // SAFETY: `r` is the live request of the running context
    let cl = unsafe { memory_chain(r, data) }?;
    // SAFETY: `r` is the live request of the running context
    (unsafe { replace_body(r, rb, cl, std::ptr::null_mut(), data.len()) })?;
    Ok(0)
}

/// A chain of one file buffer covering `len` bytes of `tf`.
unsafe fn file_chain(
    r: *mut ngx_http_request_t,
    tf: *mut ngx_temp_file_t,
    len: usize,
) -> Result<*mut ngx_chain_t, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let cl = unsafe { chain_from_bytes((*r).pool, b"") }.ok_or("no memory")?;
    // SAFETY: chain_from_bytes gave a live link with a live buffer
    let b = unsafe { (*cl).buf };
    // SAFETY: `b` is the live buffer just made; `tf` the live temp file (callers' duty)
    unsafe {
        (*b).set_sync(0);
        (*b).set_in_file(1);
        (*b).file = &mut (*tf).file;
        (*b).file_pos = 0;
        (*b).file_last = len as _;
    }
    Ok(cl)
}

unsafe fn set_body_file_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(BODY_PHASES)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=2).contains(&n) {
        return Err(format!("expecting 1 or 2 arguments but seen {n}"));
    }
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let path = unsafe { check_bytes(l, 1, "set_body_file") }?.to_vec();
    // SAFETY: `l` is the running state Lua called this API function with
    let clean = n == 2 && unsafe { ffi::lua_toboolean(l, 2) } != 0;
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { read_body_struct(r) }?;
    // SAFETY: `r` is the live request of the running context
    unsafe { release_body_file(r, rb) };
    let mut cpath = path.clone();
    cpath.push(0);
    // SAFETY: `r` is the live request of the running context
    let name = unsafe { pool_str((*r).pool, &cpath) }.ok_or("no memory")?;
    // SAFETY: `r` is the live request of the running context
    let tf = unsafe { ngx_pcalloc((*r).pool, size_of::<ngx_temp_file_t>()) } as *mut ngx_temp_file_t;
    // SAFETY: `r` is the live request of the running context
    let cln = unsafe { ngx_pool_cleanup_add((*r).pool, size_of::<ngx_pool_cleanup_file_t>()) };
    if tf.is_null() || cln.is_null() {
        return Err("no memory".into());
    }
    // SAFETY: `cpath` is NUL-terminated
    let fd = unsafe { libc::open(cpath.as_ptr().cast(), libc::O_RDONLY) };
    if fd < 0 {
        return Err(format!(
            "failed to open file {}: {}",
            String::from_utf8_lossy(&path),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: libc::stat is plain C data; all-zero is valid
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is the descriptor just opened; `st` is a live stat
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        // SAFETY: `fd` is ours, opened above and not kept
        unsafe { libc::close(fd) };
        return Err("failed to stat the body file".into());
    }
    if st.st_size == 0 {
        // An empty file is an empty body without buffers (a zero-size file
        // buffer would reach the output as nginx's "zero size buf" alert).
        // SAFETY: `fd` is ours, opened above and not kept
        unsafe { libc::close(fd) };
        if clean {
            // SAFETY: `cpath` is NUL-terminated
            unsafe { libc::unlink(cpath.as_ptr().cast()) };
        }
        // SAFETY: `r` is the live request of the running context
        (unsafe { replace_body(r, rb, std::ptr::null_mut(), std::ptr::null_mut(), 0) })?;
        return Ok(0);
    }
    // SAFETY: `tf` was allocated and checked non-null
    unsafe {
        (*tf).file.fd = fd;
    }
    // SAFETY: `tf` was allocated and checked; `name` lives in the request's pool
    unsafe {
        (*tf).file.name = nginx_sys::ngx_str_t {
            len: path.len(),
            data: name.data,
        };
    }
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*tf).file.log = (*(*r).connection).log;
    }
    // SAFETY: ngx_pool_cleanup_add gave room for one ngx_pool_cleanup_file_t
    let cf = unsafe { (*cln).data } as *mut ngx_pool_cleanup_file_t;
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*cf).fd = fd;
        (*cf).name = name.data;
        (*cf).log = (*(*r).connection).log;
    }
    // SAFETY: `cln` is the live cleanup just added
    unsafe {
        (*cln).handler = Some(if clean {
            ngx_pool_delete_file
        } else {
            ngx_pool_cleanup_file
        });
    }
    let len = st.st_size as usize;
    // SAFETY: `r` is the live request of the running context
    let cl = unsafe { file_chain(r, tf, len) }?;
    // SAFETY: `r` is the live request of the running context
    (unsafe { replace_body(r, rb, cl, tf, len) })?;
    Ok(0)
}

unsafe fn init_body_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(BODY_PHASES)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n > 1 {
        return Err(format!("expecting 0 or 1 argument but seen {n}"));
    }
    let ctx = ctx::request()?;
    let r = ctx.r;
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { read_body_struct(r) }?;
    // SAFETY: `r` is the live request of the running context
    let clcf = NgxHttpCoreModule::location_conf(unsafe { &*r }).ok_or("no core location conf")?;
    let mut limit = clcf.client_body_buffer_size;
    if n == 1 {
        // luaL_checkinteger: a number, truncated; 0 keeps the body in a file.
        // SAFETY: `l` is the running state Lua called this API function with
        let v = unsafe { check_number(l, 1, "init_body") }? as i64;
        if v < 0 {
            return Err(format!("bad size argument: {v}"));
        }
        limit = v as usize;
    }
    // SAFETY: `r` is the live request of the running context
    unsafe { release_body_file(r, rb) };
    ctx.body_builder = Some((Vec::new(), limit));
    Ok(0)
}

unsafe fn append_body_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(BODY_PHASES)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err("expecting 1 argument".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let data = unsafe { check_bytes(l, 1, "append_body") }?;
    let ctx = ctx::request()?;
    let Some((b, _)) = ctx.body_builder.as_mut() else {
        return Err("request body not initialized by ngx.req.init_body()".into());
    };
    b.extend_from_slice(data);
    Ok(0)
}

/// Writes `data` to a temporary file in client_body_temp_path, removed
/// with the request.
unsafe fn temp_file_body(r: *mut ngx_http_request_t, data: &[u8]) -> Result<*mut ngx_temp_file_t, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let clcf = NgxHttpCoreModule::location_conf(unsafe { &*r }).ok_or("no core location conf")?;
    // SAFETY: `r` is a live request (callers' duty)
    let tf = unsafe { ngx_pcalloc((*r).pool, size_of::<ngx_temp_file_t>()) } as *mut ngx_temp_file_t;
    if tf.is_null() {
        return Err("no memory".into());
    }
    // SAFETY: `r` is a live request (callers' duty)
    unsafe {
        (*tf).file.fd = -1;
        (*tf).file.log = (*(*r).connection).log;
        (*tf).path = clcf.client_body_temp_path;
        (*tf).pool = (*r).pool;
        (*tf).warn = c"a client request body is buffered to a temporary file"
            .as_ptr()
            .cast_mut();
        (*tf).set_log_level((*r).request_body_file_log_level());
    }
    // SAFETY: `tf` was allocated and checked non-null
    unsafe {
        (*tf).set_persistent(1);
        (*tf).set_clean(1);
    }
    // SAFETY: `r` is a live request (callers' duty)
    let cl = unsafe { chain_from_bytes((*r).pool, data) }.ok_or("no memory")?;
    // SAFETY: `tf` is set up for the request's temp path; `cl` is a live chain
    if unsafe { ngx_write_chain_to_temp_file(tf, cl) } == NGX_ERROR as isize {
        return Err("failed to write the request body to a temporary file".into());
    }
    Ok(tf)
}

unsafe fn finish_body_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(BODY_PHASES)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 0 {
        return Err("expecting 0 arguments".into());
    }
    let ctx = ctx::request()?;
    let r = ctx.r;
    let Some((data, limit)) = ctx.body_builder.take() else {
        return Err("request body not initialized by ngx.req.init_body()".into());
    };
    // SAFETY: `r` is the live request of the running context
    let rb = unsafe { read_body_struct(r) }?;
    if data.len() > limit || limit == 0 {
        // SAFETY: `r` is the live request of the running context
        let tf = unsafe { temp_file_body(r, &data) }?;
        // SAFETY: `r` is the live request of the running context
        let cl = unsafe { file_chain(r, tf, data.len()) }?;
        // SAFETY: `r` is the live request of the running context
        (unsafe { replace_body(r, rb, cl, tf, data.len()) })?;
    } else {
        // SAFETY: `r` is the live request of the running context
        let cl = unsafe { memory_chain(r, &data) }?;
        // SAFETY: `r` is the live request of the running context
        (unsafe { replace_body(r, rb, cl, std::ptr::null_mut(), data.len()) })?;
    }
    Ok(0)
}
