//! One file per nginx hook. A phase handler finds the Lua code of the
//! location, runs it through the scheduler and turns how it ended into what
//! nginx expects from that phase.

pub mod access;
pub mod balancer;
mod before_content;
pub mod body_filter;
pub mod content;
pub mod header_filter;
pub mod init;
pub mod init_worker;
pub mod log;
pub mod proxy_ssl;
pub mod rewrite;
pub mod server_rewrite;
pub mod set;
pub mod ssl;
mod ssl_session;

use nginx_sys::{
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NO_CONTENT, NGX_HTTP_NOT_FOUND, NGX_HTTP_OK,
    NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR, ngx_http_internal_redirect, ngx_http_named_location,
    ngx_http_request_t, ngx_int_t,
};
use ngx::core::Status;
use ngx::http::Request;

use crate::conf::LuaCode;
use crate::conf::code::{FilePath, Source};
use crate::conf::loc_conf;
use crate::glue::{complex, log as nlog};
use crate::lua::vm::{self, LoadError};
use crate::runtime::context::Context;
use crate::runtime::ctx::{OnFinish, Outcome, RequestCtx};

/// The registry reference of the code's function, loading a file if needed.
/// The bool says whether the caller must drop the reference after use.
///
/// # Safety
/// `r` must be a live request (a file path may be a complex value evaluated
/// for it).
pub unsafe fn resolve(r: *mut ngx_http_request_t, code: &LuaCode) -> Result<(i32, bool), LoadError> {
    let failed = |msg: String| LoadError {
        msg,
        unreadable: false,
    };
    let vm = vm::current().ok_or_else(|| failed("no Lua VM".into()))?;
    let path = match &code.0.source {
        Source::Inline { .. } => return inline_func(vm, code).map(|f| (f, false)).map_err(failed),
        Source::File(FilePath::Fixed(p)) => p.clone(),
        // SAFETY: r is live (caller's contract) and cv was compiled for its
        // configuration.
        Source::File(FilePath::Complex(cv)) => unsafe {
            let v =
                complex::eval(r, *cv).ok_or_else(|| failed("failed to evaluate the Lua file path".into()))?;
            complex::prefix_join((*nginx_sys::ngx_cycle).prefix.as_bytes(), &v)
        },
    };
    // SAFETY: r is live (caller's contract).
    let cache = unsafe { loc_conf(r) }.code_cache();
    vm.load_file(&path, cache)
        .map(|f| (f, !cache))
        .map_err(|e| LoadError {
            msg: format!(
                "failed to load external Lua file \"{}\": {}",
                String::from_utf8_lossy(&path),
                e.msg
            ),
            unreadable: e.unreadable,
        })
}

/// The function of inline code, compiled at its first use and kept.
#[inline]
pub fn inline_func(vm: &vm::Vm, code: &LuaCode) -> Result<i32, String> {
    compiled_inline(vm, code).map_err(|e| format!("failed to load inlined Lua code: {e}"))
}

/// [`inline_func`] with the compiler's message as it is. (Inlined: the
/// request path gets here through `resolve`, which reads the same
/// thread-local VM pointers.)
#[inline]
pub fn compiled_inline(vm: &vm::Vm, code: &LuaCode) -> Result<i32, String> {
    let Source::Inline { code: src, name } = &code.0.source else {
        return Err("not inline code".into());
    };
    if !vm::is_cycle(vm) {
        // A request's own VM (lua_code_cache off) compiles the code anew
        // and keeps it until the request ends.
        let key = std::rc::Rc::as_ptr(&code.0) as usize;
        return vm.compile_once(key, src, name);
    }
    let f = code.0.func.get();
    if f != crate::lua::ffi::LUA_NOREF {
        return Ok(f);
    }
    let f = vm.compile(src, name).map_err(|e| e.to_string())?;
    code.0.func.set(f);
    Ok(f)
}

/// Runs `code` as the entry thread of `phase` for the request of `ctx`;
/// `on_finish` ends the phase if the code ends after waiting.
pub fn run(ctx: &mut RequestCtx, code: &LuaCode, phase: Context, on_finish: OnFinish) -> Outcome {
    ctx.context = phase;
    ctx.on_finish = Some(on_finish);
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    let (func, owned) = match unsafe { resolve(ctx.r, code) } {
        Ok(f) => f,
        Err(e) => {
            nlog::error(ctx.log(), NGX_LOG_ERR, e.msg.as_bytes());
            // A file that cannot be read is "not found", as in lua-nginx-module.
            return if e.unreadable {
                Outcome::Exit(NGX_HTTP_NOT_FOUND as ngx_int_t)
            } else {
                Outcome::Error
            };
        }
    };
    let outcome = crate::runtime::need_body::start(ctx, func, phase);
    if owned && let Some(vm) = vm::current() {
        vm.unref(func);
    }
    outcome
}

/// lua-nginx-module's debug line on entering a phase handler
/// (`lua rewrite handler, uri:"/t" c:1`): people grep debug logs for it.
pub fn debug_entry(req: &Request, handler: &str) {
    // SAFETY: a live request's main request outlives it.
    let count = unsafe { (*req.as_ref().main).count() };
    nlog::log_debug_http!(
        req.log(),
        "lua {handler} handler, uri:\"{}\" c:{count}",
        nlog::Lossy(req.as_ref().uri.as_bytes())
    );
}

/// Whether our header and body filters have nothing to do for `r`: its
/// location runs no Lua filter, it is no captured subrequest, and no debug
/// line is due. Checked before anything else, as most responses pass
/// straight through (it reads only fields, so it cannot panic outside the
/// filters' `catch`).
///
/// # Safety
/// `r` must be a live request.
#[inline]
pub unsafe fn filters_idle(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (callers' duty)
    let Some(lcf) = (unsafe { crate::conf::try_loc_conf(r) }) else {
        return false;
    };
    lcf.header_filter.is_none()
        && lcf.body_filter.is_none()
        // SAFETY: `r` is a live request (callers' duty)
        && !unsafe { crate::runtime::capture::is_captured(r) }
        // SAFETY: `r` is a live request, its connection too
        && !nlog::debug_http_enabled(unsafe { (*(*r).connection).log })
}

/// lua-nginx-module's debug line on entering one of its output filters
/// (`lua capture header filter, uri "/t"`).
pub fn debug_filter(req: &Request, filter: &str) {
    nlog::log_debug_http!(
        req.log(),
        "lua {filter}, uri \"{}\"",
        nlog::Lossy(req.as_ref().uri.as_bytes())
    );
}

/// The rc of a phase whose code called `ngx.exit(code)`, as lua-nginx-module
/// computes it (ngx_http_lua_handle_exit): 2xx codes (and 0 in content) end
/// the response body here; once the header is out, a positive code can no
/// longer become a status line and the phase just ends.
pub fn exit_rc(ctx: &mut RequestCtx, code: ngx_int_t, in_content: bool) -> ngx_int_t {
    let r = ctx.r;
    let ends_connection = [Status::NGX_ERROR.0, 408, 499, 444].contains(&code);
    let success = code >= NGX_HTTP_OK as ngx_int_t
        && code < NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t
        && code != NGX_HTTP_NO_CONTENT as ngx_int_t;
    let ends_body = (code == Status::NGX_OK.0 && in_content) || success;
    if !ends_body {
        // A write content code held back (runtime/output.rs) goes now: no
        // eof will take it along. (A failure shows in what follows.)
        let _ = crate::runtime::output::send_held(ctx);
    }
    // SAFETY: r is live.
    unsafe {
        if (*r).header_sent() == 0 && (*r).headers_out.status == 0 && code >= NGX_HTTP_OK as ngx_int_t {
            (*r).headers_out.status = code as _;
        }
        if ctx.buffering && (*r).headers_out.status != 0 && !ends_connection {
            let rc = crate::runtime::output::send_eof(ctx);
            if rc == Status::NGX_ERROR.0 || rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
                return rc;
            }
            return if code >= NGX_HTTP_OK as ngx_int_t {
                NGX_HTTP_OK as ngx_int_t
            } else {
                code
            };
        }
    }
    if ends_body {
        let rc = crate::runtime::output::send_eof(ctx);
        if rc == Status::NGX_ERROR.0 || rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
    }
    // SAFETY: r is live.
    let header_sent = unsafe { (*r).header_sent() } != 0;
    if header_sent && code > Status::NGX_OK.0 && !ends_connection {
        return if in_content {
            Status::NGX_OK.into()
        } else {
            NGX_HTTP_OK as ngx_int_t
        };
    }
    code
}

/// The rc for an aborted entry thread: 500, or a closed connection when the
/// response has started.
pub fn error_rc(ctx: &RequestCtx) -> ngx_int_t {
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    if unsafe { (*ctx.r).header_sent() } != 0 {
        Status::NGX_ERROR.into()
    } else {
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
    }
}

/// Performs a pending `ngx.exec`. Returns NGX_DONE (or NGX_ERROR); the
/// request may already be finished and freed when this returns.
pub fn exec(ctx: &mut RequestCtx) -> ngx_int_t {
    let r = ctx.r;
    let Some((mut uri, mut args)) = ctx.exec.take() else {
        return Status::NGX_ERROR.into();
    };
    // SAFETY: r is live; uri and args are in its pool.
    unsafe {
        if uri.as_bytes().first() == Some(&b'@') {
            ngx_http_named_location(r, &mut uri);
            return Status::NGX_DONE.into();
        }
        let rc = ngx_http_internal_redirect(r, &mut uri, &mut args);
        if rc == Status::NGX_ERROR.0 || rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
    }
    Status::NGX_DONE.into()
}
