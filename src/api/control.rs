//! ngx.exit, ngx.exec, ngx.redirect, ngx.get_phase.

use nginx_sys::{NGX_HTTP_OK, NGX_LOG_ERR, ngx_list_push, ngx_pnalloc, ngx_str_t};

use super::query_args;
use crate::glue::cconv;
use crate::glue::escape::{escape_args, escape_log, unsafe_uri_byte};
use crate::glue::log as nlog;
use crate::glue::uri;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, check_number, ffi, lua_State, push_bytes, set_fn};
use crate::runtime::context::{self, REQUEST_YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::yield_wait;

lua_fns! {
    exit => exit_impl,
    exec => exec_impl,
    redirect => redirect_impl,
    get_phase => get_phase_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_fn(l, -1, c"exit", exit);
        set_fn(l, -1, c"exec", exec);
        set_fn(l, -1, c"redirect", redirect);
        set_fn(l, -1, c"get_phase", get_phase);
    }
}

unsafe fn get_phase_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { push_bytes(l, context::current().name().as_bytes()) };
    Ok(1)
}

/// Copies bytes into the request pool (nginx keeps pointers to them).
unsafe fn pool_str(ctx: &RequestCtx, b: &[u8]) -> Result<ngx_str_t, String> {
    if b.is_empty() {
        return Ok(ngx_str_t::empty());
    }
    // SAFETY: `ctx.r` is the live request of the running context
    let p = unsafe { ngx_pnalloc((*ctx.r).pool, b.len()) } as *mut u8;
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

unsafe fn exit_impl(l: *mut lua_State) -> LuaRet {
    let p = context::check(
        context::SERVER_REWRITE
            | context::REWRITE
            | context::ACCESS
            | context::CONTENT
            | context::TIMER
            | context::HEADER_FILTER
            | context::BALANCER
            | context::SSL_ANY
            | context::PROXY_SSL,
    )?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err("expecting one argument".into());
    }
    // An FFI `int` in lua-nginx-module: 2^31 and beyond become INT_MIN,
    // which ends the request without a response, not a status line.
    // SAFETY: `l` is the running state Lua called this API function with
    let status = cconv::int32(unsafe { check_number(l, 1, "exit") }?) as isize;
    if status == nginx_sys::NGX_AGAIN as isize || status == nginx_sys::NGX_DONE as isize {
        return Err("bad argument to 'ngx.exit': does not accept NGX_AGAIN or NGX_DONE".into());
    }
    let ctx = ctx::request()?;
    if p.is(context::SSL_ANY.or(context::PROXY_SSL)) {
        nlog::log_debug_http!(
            // SAFETY: `ctx.r` is the live request of the running context
            unsafe { (*(*ctx.r).connection).log },
            "lua exit with code {status}"
        );
    }
    if p == context::SSL_SESS_STORE || p.is(context::PROXY_SSL) {
        // That code runs as a plain call (it may not wait): ngx.exit only
        // records the code there (the proxy_ssl_* hooks' code too: it runs
        // inside OpenSSL's callback, see phase/proxy_ssl.rs).
        ctx.exit_code = Some(status);
        return Ok(0);
    }
    if p.is(context::ON_FAKE_REQUEST) {
        ctx.exit_code = Some(status);
        // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
        return unsafe { yield_wait(l) };
    }
    // While subrequests of a capture are out, only statuses that end the
    // connection anyway may abort (lua-nginx-module's rule).
    if ![-1, 444, 408, 499].contains(&status) {
        ctx.check_abortable()?;
    }
    let r = ctx.r;
    let mut status = status;
    // SAFETY: `r` is the live request of the running context
    if unsafe { (*r).header_sent() } != 0 && status >= 300 && ![444, 408, 499].contains(&status) {
        // The status line is out: log the mismatch and end the response as
        // it stands (200), as lua-nginx-module does.
        // SAFETY: `r` is the live request of the running context
        if status != unsafe { (*r).headers_out.status } as isize {
            nlog::log_error!(
                // SAFETY: `r` is the live request of the running context
                unsafe { (*(*r).connection).log },
                NGX_LOG_ERR,
                "attempt to set status {} via ngx.exit after sending out the response status {}",
                status,
                // SAFETY: `r` is the live request of the running context
                unsafe { (*r).headers_out.status }
            );
        }
        status = NGX_HTTP_OK as isize;
    }
    ctx.exit_code = Some(status);
    if p == context::HEADER_FILTER || p == context::BALANCER {
        // Returns at once there (lua-nginx-module); the filter acts on it.
        return Ok(0);
    }
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

unsafe fn exec_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=2).contains(&n) {
        return Err(format!("expecting one or two arguments, but got {n}"));
    }
    let ctx = ctx::request()?;
    ctx.check_abortable()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let uri = unsafe { check_bytes(l, 1, "exec") }?.to_vec();
    if uri.is_empty() {
        return Err("The uri argument is empty".into());
    }
    // nginx's own check, as lua-nginx-module runs it: no NUL, no ".."
    // segment (the static module would serve files above the root).
    // SAFETY: `ctx.r` is the live request of the running context
    let (path, query) = unsafe { uri::split_safe(ctx.r, &uri, true) }.ok_or("unsafe uri")?;
    let mut args = query.as_bytes().to_vec();
    if n == 2 {
        // SAFETY: `l` is the running state Lua called this API function with
        let extra = match unsafe { ffi::lua_type(l, 2) } {
            ffi::LUA_TNIL => Vec::new(),
            // SAFETY: `l` is the running state Lua called this API function with
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => unsafe { check_bytes(l, 2, "exec") }?.to_vec(),
            // SAFETY: `l` is the running state Lua called this API function with
            ffi::LUA_TTABLE => unsafe { query_args::encode(l, 2, &query_args::ENCODE_ARGS) }?,
            _ => return Err("Bad args type".into()),
        };
        if !extra.is_empty() {
            if !args.is_empty() {
                args.push(b'&');
            }
            args.extend_from_slice(&extra);
        }
    }
    // The query may reach a proxied request line: escaped as set_uri_args
    // escapes strings (lua-nginx-module passes it raw).
    let args = escape_args(&args);
    // SAFETY: `ctx.r` is the live request of the running context
    if unsafe { (*ctx.r).header_sent() } != 0 {
        return Err("attempt to call ngx.exec after sending out response headers".into());
    }
    // SAFETY: `ctx.r` is the live request of the running context
    ctx.exec = Some((path, unsafe { pool_str(ctx, &args) }?));
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

unsafe fn redirect_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=2).contains(&n) {
        return Err(format!("expecting one or two arguments, but got {n}"));
    }
    let ctx = ctx::request()?;
    ctx.check_abortable()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let uri = unsafe { check_bytes(l, 1, "redirect") }?.to_vec();
    let status = if n == 2 {
        // SAFETY: `l` is the running state Lua called this API function with
        (unsafe { check_number(l, 2, "redirect") })? as isize
    } else {
        302
    };
    if ![301, 302, 303, 307, 308].contains(&status) {
        return Err("only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed".into());
    }
    let r = ctx.r;
    // SAFETY: `r` is the live request of the running context
    if unsafe { (*r).header_sent() } != 0 {
        return Err("attempt to call ngx.redirect after sending out the headers".into());
    }
    // A CR or LF would split the Location header: refused, as
    // lua-nginx-module refuses it.
    if let Some(c) = unsafe_uri_byte(&uri) {
        return Err(format!(
            "unsafe byte \"0x{c:02x}\" in redirect uri \"{}\"",
            escape_log(&uri)
        ));
    }
    // SAFETY: `ctx.r` is the live request of the running context
    let value = unsafe { pool_str(ctx, &uri) }?;
    // SAFETY: `r` is the live request of the running context
    let h = unsafe { ngx_list_push(&mut (*r).headers_out.headers) } as *mut nginx_sys::ngx_table_elt_t;
    if h.is_null() {
        return Err("no memory".into());
    }
    // SAFETY: `h` is the fresh, non-null element ngx_list_push returned
    unsafe {
        (*h).hash = 1;
    }
    // SAFETY: `h` is the fresh, non-null element; the key is a static string
    unsafe {
        (*h).key = ngx_str_t {
            len: 8,
            data: c"Location".as_ptr() as *mut u8,
        };
    }
    // SAFETY: `h` is the fresh element; `value` lives in the request's pool
    unsafe {
        (*h).value = value;
        (*h).lowcase_key = c"location".as_ptr() as *mut u8;
        crate::glue::ngx_version::clear_next(h);
    }
    // As lua-nginx-module: only a URI that does not start with "/" becomes
    // `headers_out.location`, so nginx leaves a relative one relative.
    if uri.first().is_some_and(|&c| c != b'/') {
        // SAFETY: `r` is the live request of the running context
        unsafe {
            (*r).headers_out.location = h;
        }
    }
    // SAFETY: `r` is the live request of the running context
    unsafe {
        (*r).headers_out.status = status as _;
    }
    ctx.exit_code = Some(status);
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}
