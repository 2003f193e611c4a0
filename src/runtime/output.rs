//! The response path of Lua code: headers sent lazily, body data through the
//! output filter chain, HTTP/1.0 buffering, and the final eof.
//!
//! Body data is copied into the request's output buffers (`ctx.out_bufs`),
//! which come back for reuse once nginx has sent them: a streamed response
//! holds the few buffers in flight at a time, whatever its length.
//!
//! The latest write is held back while the Lua code keeps running
//! (`ctx.held_out`): the next write, `ngx.flush` or the end of the body
//! passes it on, and so does the scheduler whenever the code stops without
//! ending the content phase. Content code whose last write comes just
//! before it ends (the common case) then sends data and eof through the
//! body filters once, not twice. Only a write that nginx's write filter
//! would keep back anyway (postpone_output) is held, so what the client
//! gets, and what the write returns, is the same; only where Lua reads the
//! body chain (body_filter_by_lua*) would the split show, and there nothing
//! is held.

use std::ffi::c_void;

use nginx_sys::{
    NGX_ERROR, NGX_HTTP_LAST, NGX_HTTP_OK, NGX_OK, ngx_chain_t, ngx_http_output_filter, ngx_http_request_t,
    ngx_http_send_header, ngx_http_send_special, ngx_http_set_content_type, ngx_int_t, ngx_uint_t,
};

use ngx::http::{HttpModuleLocationConf, NgxHttpCoreModule};

use super::ctx::RequestCtx;
use crate::conf::LocConf;
use crate::conf::loc_conf;
use crate::glue::buf::{chain_from_bytes, chain_size};

/// Tags the buffers of `ctx.out_bufs`: only these return to its free list.
/// (Its value differs from the body filter's tag, so that the two statics
/// can never be merged into one address.)
static TAG: u8 = 1;

fn tag() -> *mut c_void {
    &TAG as *const u8 as *mut c_void
}

fn version_1_0_or_older(r: &ngx_http_request_t) -> bool {
    r.http_version < nginx_sys::NGX_HTTP_VERSION_11 as _
}

/// Sends the response header unless it went already (status 200 and the
/// location's default type when the code set none).
pub fn send_header_if_needed(ctx: &mut RequestCtx) -> ngx_int_t {
    let r = ctx.r;
    // SAFETY: r is the live request of ctx.
    unsafe {
        if ctx.header_sent() {
            return NGX_OK as ngx_int_t;
        }
        if (*r).headers_out.status == 0 {
            (*r).headers_out.status = NGX_HTTP_OK as _;
        }
        let lcf: &LocConf = loc_conf(r);
        // (a 304 gets no default type either, as in lua-nginx-module)
        if lcf.use_default_type()
            && !ctx.mime_set
            && (*r).headers_out.status != nginx_sys::NGX_HTTP_NOT_MODIFIED as ngx_uint_t
            && (*r).headers_out.content_type.len == 0
            && ngx_http_set_content_type(r) != NGX_OK as ngx_int_t
        {
            return NGX_ERROR as ngx_int_t;
        }
        if lcf.http10_buffering()
            && version_1_0_or_older(&*r)
            && (*r).headers_out.content_length_n < 0
            && (*r).headers_out.content_length.is_null()
        {
            // Held until eof, so the response can carry Content-Length.
            ctx.buffering = true;
            return NGX_OK as ngx_int_t;
        }
        let rc = ngx_http_send_header(r);
        ctx.header_sent = true;
        rc
    }
}

/// Writes `data` to the client (through all body filters).
pub fn write(ctx: &mut RequestCtx, data: &[u8], flush: bool) -> Result<(), &'static str> {
    write_parts(ctx, &[data], flush)
}

/// Writes the concatenation of `parts` as one buffer.
pub fn write_parts(ctx: &mut RequestCtx, parts: &[&[u8]], flush: bool) -> Result<(), &'static str> {
    if ctx.eof_sent {
        return Err("seen eof");
    }
    let r = ctx.r;
    mark_head(ctx);
    let rc = send_header_if_needed(ctx);
    if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
        return Err("nginx output filter error");
    }
    // SAFETY: r is live.
    if unsafe { (*r).header_only() } != 0 {
        return match end_header_only(ctx) {
            rc if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t => {
                Err("nginx output filter error")
            }
            _ => Ok(()),
        };
    }
    if ctx.buffering {
        // SAFETY: r is live.
        let log = unsafe { (*(*r).connection).log };
        crate::glue::log::log_debug_http!(log, "lua buffering output bufs for the HTTP 1.0 request");
        parts.iter().for_each(|p| ctx.buffered.extend_from_slice(p));
        return Ok(());
    }
    if parts.iter().all(|p| p.is_empty()) && !flush {
        return Ok(());
    }
    let len = parts.iter().map(|p| p.len()).sum();
    // SAFETY: r is live; out_bufs hands out buffers of its pool with room
    // for len bytes.
    unsafe {
        let cl = if len == 0 {
            ctx.out_bufs.special((*r).pool, flush, false, false)
        } else {
            ctx.out_bufs.get((*r).pool, len, tag())
        }
        .ok_or("no memory")?;
        let b = (*cl).buf;
        // (a flags-only buffer has no memory: the parts are all empty)
        for p in parts.iter().filter(|p| !p.is_empty()) {
            std::ptr::copy_nonoverlapping(p.as_ptr(), (*b).last, p.len());
            (*b).last = (*b).last.add(p.len());
        }
        if flush {
            (*b).set_flush(1);
        }
        // The previous write goes first; this one waits for what follows
        // if nginx would keep it back anyway.
        send_held(ctx)?;
        if !flush && loc_conf(r).body_filter.is_none() && postponed_anyway(r, len) {
            ctx.held_out = cl;
            return Ok(());
        }
        send(ctx, cl)
    }
}

/// Whether nginx's write filter would keep `len` more bytes of body back
/// too (postpone_output), so that holding them changes nothing the client
/// or the Lua code sees. A write nginx passes to the socket at once may fail
/// at once, and ngx.say must then return that error (as in
/// lua-nginx-module); so must a write on a connection already known broken.
///
/// # Safety
/// `r` must be a live request.
unsafe fn postponed_anyway(r: *mut ngx_http_request_t, len: usize) -> bool {
    // A chunk's size line and CRLF, at most.
    const CHUNK_FRAMING: usize = 32;
    // SAFETY: `r` is live (callers' duty), and so is its connection.
    if unsafe { (*(*r).connection).error() } != 0 {
        return false;
    }
    // A subrequest's output reaches the write filter as its main request's.
    // SAFETY: `r` is live (callers' duty), its main request too
    let main = unsafe { (*r).main };
    // SAFETY: as above
    let Some(clcf) = NgxHttpCoreModule::location_conf(unsafe { &*main }) else {
        return false;
    };
    // SAFETY: as above: its out chain is nginx's, live
    let pending = unsafe { chain_size((*main).out) } as usize;
    pending + len + CHUNK_FRAMING < clcf.postpone_output
}

/// Passes on the write held back (see the module's doc), if any.
#[inline]
pub fn send_held(ctx: &mut RequestCtx) -> Result<(), &'static str> {
    let cl = std::mem::replace(&mut ctx.held_out, std::ptr::null_mut());
    if cl.is_null() {
        return Ok(());
    }
    // SAFETY: a held link comes from `ctx.out_bufs.get` and was not sent.
    unsafe { send(ctx, cl) }
}

/// Passes `cl` (from `ctx.out_bufs`) to the output filters, then takes back
/// what they have sent.
///
/// # Safety
/// `cl` must come from `ctx.out_bufs.get` and not be used afterwards.
unsafe fn send(ctx: &mut RequestCtx, cl: *mut ngx_chain_t) -> Result<(), &'static str> {
    let r = ctx.r;
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { ngx_http_output_filter(r, cl) } == NGX_ERROR as ngx_int_t {
        return Err("nginx output filter error");
    }
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { ctx.out_bufs.update((*r).pool, cl, tag()) };
    Ok(())
}

/// lua-nginx-module makes a HEAD request header-only as soon as Lua output
/// starts (nginx itself would only when sending the header): HTTP/1.0
/// buffering then holds no body and computes no Content-Length for it.
fn mark_head(ctx: &RequestCtx) {
    let r = ctx.r;
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    unsafe {
        if (*r).method == nginx_sys::NGX_HTTP_HEAD as ngx_uint_t && (*r).header_only() == 0 {
            (*r).set_header_only(1);
        }
    }
}

/// The first output of a header-only response ends it: the header held by
/// HTTP/1.0 buffering goes now, without a Content-Length, and later output
/// sees eof, as in lua-nginx-module.
fn end_header_only(ctx: &mut RequestCtx) -> ngx_int_t {
    ctx.eof_sent = true;
    if !ctx.buffering {
        return NGX_OK as ngx_int_t;
    }
    ctx.buffering = false;
    ctx.buffered.clear();
    // SAFETY: r is live; send_header_if_needed held the header back.
    let rc = unsafe { ngx_http_send_header(ctx.r) };
    ctx.header_sent = true;
    rc
}

/// Ends the response body (headers first if none went).
pub fn send_eof(ctx: &mut RequestCtx) -> ngx_int_t {
    if ctx.eof_sent {
        return NGX_OK as ngx_int_t;
    }
    mark_head(ctx);
    let rc = send_header_if_needed(ctx);
    if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
        return rc;
    }
    let r = ctx.r;
    // SAFETY: r is live.
    if unsafe { (*r).header_only() } != 0 {
        return end_header_only(ctx);
    }
    ctx.eof_sent = true;
    // A body nobody read is discarded with the last buffer, as
    // lua-nginx-module does: else a pipelined next request would be read
    // from its bytes.
    // SAFETY: r is live.
    unsafe {
        if (*r).header_only() == 0
            && (*r).request_body.is_null()
            && (*r).main == r
            && nginx_sys::ngx_http_discard_request_body(r) != NGX_OK as ngx_int_t
        {
            return NGX_ERROR as ngx_int_t;
        }
    }
    if ctx.buffering {
        ctx.buffering = false;
        let body = std::mem::take(&mut ctx.buffered);
        // SAFETY: r is live; headers were held back by send_header_if_needed.
        unsafe {
            (*r).headers_out.content_length_n = body.len() as _;
            let rc = ngx_http_send_header(r);
            ctx.header_sent = true;
            if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || (*r).header_only() != 0 {
                return rc;
            }
            let Some(cl) = chain_from_bytes((*r).pool, &body) else {
                return NGX_ERROR as ngx_int_t;
            };
            let b = (*cl).buf;
            if (*r).main == r {
                (*b).set_last_buf(1);
            } else {
                (*b).set_last_in_chain(1);
            }
            return ngx_http_output_filter(r, cl);
        }
    }
    // SAFETY: r is live.
    unsafe {
        if (*r).header_only() != 0 {
            return NGX_OK as ngx_int_t;
        }
        let cl = std::mem::replace(&mut ctx.held_out, std::ptr::null_mut());
        if cl.is_null() {
            return ngx_http_send_special(r, NGX_HTTP_LAST as _);
        }
        // The held write carries the end of the body, flagged as
        // ngx_http_send_special flags its empty buffer.
        let b = (*cl).buf;
        if (*r).main == r && (*r).post_action() == 0 {
            (*b).set_last_buf(1);
        } else {
            (*b).set_last_in_chain(1);
        }
        let rc = ngx_http_output_filter(r, cl);
        if rc != NGX_ERROR as ngx_int_t {
            ctx.out_bufs.update((*r).pool, cl, tag());
        }
        rc
    }
}

/// `ngx.flush()`: pushes buffered data out.
pub fn flush(ctx: &mut RequestCtx) -> Result<(), &'static str> {
    if ctx.buffering {
        return Ok(());
    }
    let r = ctx.r;
    // SAFETY: r is live.
    unsafe {
        if !ctx.header_sent() || ctx.eof_sent {
            return Ok(());
        }
        let held = std::mem::replace(&mut ctx.held_out, std::ptr::null_mut());
        if !held.is_null() {
            // The held write carries the flush.
            (*(*held).buf).set_flush(1);
            return send(ctx, held);
        }
        // A flags-only buffer, the same one each time (nginx's
        // send_special would take new pool memory on every call).
        let cl = ctx
            .out_bufs
            .special((*r).pool, true, false, false)
            .ok_or("no memory")?;
        send(ctx, cl)
    }
}
