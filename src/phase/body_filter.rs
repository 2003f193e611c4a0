//! body_filter_by_lua*: runs once per chain passed down the body filters,
//! with `ngx.arg[1]` (the chain's data) and `ngx.arg[2]` (eof); what the code
//! leaves there replaces the chain. Captured subrequests' bodies end here.

use std::cell::Cell;
use std::ffi::c_void;

use nginx_sys::{
    NGX_LOG_ERR, ngx_buf_t, ngx_chain_t, ngx_http_output_body_filter_pt, ngx_http_request_t, ngx_int_t,
};
use ngx::core::Status;
use ngx::http::Request;

use super::resolve;
use crate::conf::LuaCode;
use crate::conf::{req_loc_conf, req_main_conf};
use crate::glue::buf::{consume, in_memory, link};
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::lua::{ffi, lua_State, push_bytes, to_bytes};
use crate::runtime::context;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::lent_out::LEND_MIN;
use crate::runtime::{capture, run_sync};

static mut NEXT: ngx_http_output_body_filter_pt = None;

/// Tags our output buffers, so that nginx hands them back for reuse.
static TAG: u8 = 0;

/// Puts our filter on top of the body filter chain.
///
/// # Safety
/// Only from postconfiguration.
pub unsafe fn install() {
    // SAFETY: runs once from postconfiguration, on nginx's one thread, before any request
    unsafe { NEXT = nginx_sys::ngx_http_top_body_filter };
    // SAFETY: runs once from postconfiguration, on nginx's one thread, before any request
    unsafe { nginx_sys::ngx_http_top_body_filter = Some(filter) };
}

unsafe extern "C" fn filter(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: nginx calls body filters with a live request.
    if unsafe { super::filters_idle(r) } {
        // SAFETY: as above, with its chain
        return unsafe { next(r, input) };
    }
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: nginx calls body filters with a live request and its chain.
        unsafe { run(r, input) }
    })
}

unsafe fn next(r: *mut ngx_http_request_t, cl: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: NEXT is written only at postconfiguration, before any request
    match unsafe { NEXT } {
        // SAFETY: `r` is a live request (callers' duty)
        Some(f) => unsafe { f(r, cl) },
        None => Status::NGX_ERROR.into(),
    }
}

/// # Safety
/// `r` must be a live request and `input` its chain.
unsafe fn run(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: `r` is a live request (callers' duty)
    let req: &Request = unsafe { Request::from_ngx_http_request(r) };
    let lmcf = req_main_conf(req);
    if lmcf.uses_body_filter {
        super::debug_filter(req, "body filter for user lua code");
    }
    let code = req_loc_conf(req).body_filter.clone();
    let (out, ctx) = match code {
        Some(code) if !input.is_null() => {
            // SAFETY: `r` is a live request (callers' duty)
            let Some(ctx) = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }) else {
                return Status::NGX_ERROR.into();
            };
            let _vm = ctx.enter_vm();
            // SAFETY: `ctx` is the live request's context, `input` the chain nginx passed
            match unsafe { filter_chain(ctx, &code, input) } {
                Ok(Some(out)) => (out, Some(ctx)),
                Ok(None) => return Status::NGX_ERROR.into(),
                Err(e) => {
                    nlog::log_error!(ctx.log(), NGX_LOG_ERR, "failed to run body_filter_by_lua*: {e}");
                    return Status::NGX_ERROR.into();
                }
            }
        }
        _ => (input, None),
    };
    if lmcf.uses_capture {
        super::debug_filter(req, "capture body filter");
    }
    // SAFETY: `r` is a live request (callers' duty)
    let rc = if unsafe { capture::is_captured(r) } {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { capture::body(r, out) }
    } else {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { next(r, out) }
    };
    if let Some(ctx) = ctx {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { ctx.filter_bufs.update((*r).pool, out, tag()) };
    }
    rc
}

/// What the chain carries, for `ngx.arg`.
struct ChainData<'a> {
    data: &'a [u8],
    eof: bool,
    flush: bool,
}

// A thread-local, not a `loop_local!`: it holds heap memory, and a static
// of this library is unmapped when nginx unloads the module at exit, which
// valgrind's leak check (scripts/test.sh) then reports as lost; a
// thread-local's block stays reachable.
thread_local! {
    /// A buffer kept between calls for gathering chain data and the code's
    /// result, so a streamed body costs no heap allocation per call: a
    /// per-process scratch allocation, empty between calls.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Above this the scratch buffer is not kept (a rare huge chain should not
/// pin its size in the worker for ever).
const SCRATCH_KEEP: usize = 4 << 20;

fn scratch() -> Vec<u8> {
    SCRATCH.with(|s| s.take())
}

fn keep_scratch(mut v: Vec<u8>) {
    if v.capacity() <= SCRATCH_KEEP {
        v.clear();
        SCRATCH.with(|s| s.set(v));
    }
}

/// Reads the chain's data and marks its buffers consumed. The data is
/// borrowed from the buffer when only one holds any (the usual case; it
/// stays valid until the filter returns), else gathered into `gather`.
unsafe fn take_chain(mut cl: *mut ngx_chain_t, gather: &mut Vec<u8>) -> ChainData<'_> {
    let mut d = ChainData {
        data: &[],
        eof: false,
        flush: false,
    };
    let mut pieces = 0;
    while !cl.is_null() {
        // SAFETY: `cl` is a live link of the chain nginx passed
        let b = unsafe { (*cl).buf };
        // SAFETY: `b` is the live buffer of a link of the chain nginx passed
        if unsafe { in_memory(b) } && unsafe { (*b).last } > unsafe { (*b).pos } {
            // SAFETY: `b` is the live buffer of a link of the chain nginx passed
            let n = unsafe { (*b).last.offset_from((*b).pos) } as usize;
            // SAFETY: `b` is the live buffer of a link of the chain nginx passed
            let piece = unsafe { std::slice::from_raw_parts((*b).pos, n) };
            pieces += 1;
            if pieces == 2 {
                gather.extend_from_slice(d.data);
            }
            if pieces >= 2 {
                gather.extend_from_slice(piece);
            } else {
                d.data = piece;
            }
        }
        // SAFETY: `b` is the live buffer of a link of the chain nginx passed
        d.eof |= unsafe { (*b).last_buf() } != 0 || unsafe { (*b).last_in_chain() } != 0;
        // SAFETY: `b` is the live buffer of a link of the chain nginx passed
        d.flush |= unsafe { (*b).flush() } != 0;
        // SAFETY: `b` is the live buffer of a link of the chain nginx passed
        unsafe { consume(b) };
        // SAFETY: `cl` is a live link of the chain nginx passed
        cl = unsafe { (*cl).next };
    }
    if pieces >= 2 {
        // SAFETY: `gather` holds its len() bytes; the slice borrows it as ChainData's lifetime says
        d.data = unsafe { std::slice::from_raw_parts(gather.as_ptr(), gather.len()) };
    }
    d
}

/// Pops the code's return value: true when it is ngx.ERROR or an HTTP
/// status of 300 or more, with which lua-nginx-module aborts the output
/// (the filter returns NGX_ERROR, nothing logged).
unsafe fn returned_error(st: *mut lua_State) -> bool {
    // SAFETY: `st` is the thread that just ran the code, its return value on top (callers' duty)
    let rc = unsafe { ffi::lua_tointeger(st, -1) };
    // SAFETY: as above: the return value is there to pop
    unsafe { ffi::lua_pop(st, 1) };
    rc == Status::NGX_ERROR.0 as i64 || rc >= nginx_sys::NGX_HTTP_SPECIAL_RESPONSE as i64
}

/// Runs the code on one chain and returns the chain to pass on, `None`
/// when the code's return value aborts the output.
unsafe fn filter_chain(
    ctx: &mut RequestCtx,
    code: &LuaCode,
    input: *mut ngx_chain_t,
) -> Result<Option<*mut ngx_chain_t>, String> {
    let r = ctx.r;
    if ctx.filter_eof {
        // The code ended the body already: later data is dropped.
        let mut cl = input;
        while !cl.is_null() {
            // SAFETY: `cl` is a live link of the chain nginx passed
            unsafe { consume((*cl).buf) };
            // SAFETY: `cl` is a live link of the chain nginx passed
            cl = unsafe { (*cl).next };
        }
        return Ok(Some(std::ptr::null_mut()));
    }
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    let (func, owned) = unsafe { resolve(r, code) }?;
    let vm = vm::current().ok_or("no Lua VM")?;
    let l = vm.main();
    let mut buf = scratch();
    // SAFETY: `input` is the live chain nginx passed to the filter
    let chain = unsafe { take_chain(input, &mut buf) };
    let (in_eof, in_flush) = (chain.eof, chain.flush);
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { set_arg(l, Some((chain.data, in_eof))) };
    buf.clear();
    // SAFETY: the request's VM is current; `func` is the resolved filter code
    let res = unsafe { run_sync::in_request(ctx, context::BODY_FILTER, func, 0, 1) }.and_then(|st| {
        // SAFETY: `st` ran the code and holds its one return value
        let verdict = unsafe { returned_error(st) };
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        unsafe { read_arg(l, &mut buf) }.map(|arg| (arg, verdict))
    });
    // A result that is one Lua string is read where Lua keeps it: ngx.arg
    // still holds it (and Lua strings do not move) until set_arg(None).
    let out = res.and_then(|((end, single), abort)| {
        if abort {
            return Ok(None);
        }
        let (data, lent) = match single {
            // SAFETY: `l` is the current VM's main state; ngx.arg[1] holds `s`
            Some(s) => (s, unsafe { lend(ctx, l, s) }),
            None => (&buf[..], None),
        };
        // SAFETY: `ctx` is the live request's context
        unsafe { pass_on(ctx, data, lent, end, in_eof, in_flush) }.map(Some)
    });
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { set_arg(l, None) };
    if owned {
        vm.unref(func);
    }
    keep_scratch(buf);
    out
}

/// The chain to pass on for the code's result `data` and its eof flag
/// `end` (the code may set it, or clear it as lua-nginx-module lets it:
/// the body then does not end here), given the flags of the chain it was
/// called with.
unsafe fn pass_on(
    ctx: &mut RequestCtx,
    data: &[u8],
    lent: Option<*mut ngx_buf_t>,
    end: bool,
    in_eof: bool,
    in_flush: bool,
) -> Result<*mut ngx_chain_t, String> {
    let r = ctx.r;
    if end && !in_eof {
        ctx.filter_eof = true;
    }
    let eof = end;
    if data.is_empty() && !eof && !in_flush {
        return Ok(std::ptr::null_mut());
    }
    // SAFETY: `r` is a live request (callers' duty)
    let main = unsafe { (*r).main } == r;
    let cl = match lent {
        // SAFETY: `r` is the live request of the running context; `b` a live buffer
        Some(b) => unsafe { link((*r).pool, b) },
        // SAFETY: `r` is the live request whose pool the list uses
        None if data.is_empty() => unsafe {
            ctx.filter_bufs
                .special((*r).pool, in_flush, eof && main, eof && !main)
        },
        // SAFETY: `ctx` is the live request's context
        None => unsafe { out_buf(ctx, data) },
    }
    .ok_or("no memory")?;
    // SAFETY: out_buf gives a live link with a live buffer
    let b = unsafe { (*cl).buf };
    if eof {
        if main {
            // SAFETY: `b` is the live buffer of our output link
            unsafe { (*b).set_last_buf(1) };
        } else {
            // SAFETY: `b` is the live buffer of our output link
            unsafe { (*b).set_last_in_chain(1) };
        }
    }
    if in_flush {
        // SAFETY: `b` is the live buffer of our output link
        unsafe { (*b).set_flush(1) };
    }
    Ok(cl)
}

/// A buffer over `data`, the bytes of the string ngx.arg[1] holds, lent
/// to nginx without a copy (runtime/lent_out.rs); `None` when small, or no
/// slot is free: the caller copies.
///
/// # Safety
/// `l` must be the VM state running the filter, its ngx.arg[1] the string
/// whose bytes `data` borrows.
unsafe fn lend(ctx: &mut RequestCtx, l: *mut lua_State, data: &[u8]) -> Option<*mut ngx_buf_t> {
    if data.len() < LEND_MIN {
        return None;
    }
    // SAFETY: `l` is the filter's VM state; raw lookups of tables set_arg made
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
        crate::lua::get_raw(l, -1, c"arg");
        ffi::lua_rawgeti(l, -1, 1);
        ffi::lua_replace(l, -3);
        ffi::lua_pop(l, 1);
    }
    // SAFETY: `l` is the filter's VM state with the value on top
    let same = unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TSTRING
        // SAFETY: a string is on top: no conversion
        && unsafe { ffi::lua_tolstring(l, -1, std::ptr::null_mut()) } as *const u8 == data.as_ptr();
    // SAFETY: `ctx.r` is the live request of the running context
    let pool = unsafe { (*ctx.r).pool };
    let lent = if same {
        // SAFETY: the string on top is ngx.arg[1], from this request's VM
        unsafe { ctx.filter_lent.lend(l, pool) }
    } else {
        None
    };
    if lent.is_none() {
        // SAFETY: the value pushed above is still on top
        unsafe { ffi::lua_pop(l, 1) };
    }
    lent
}

/// A one-link chain with `data` (not empty): a reused buffer of ours when
/// one fits.
unsafe fn out_buf(ctx: &mut RequestCtx, data: &[u8]) -> Option<*mut ngx_chain_t> {
    // SAFETY: `ctx.r` is the live request of the running context
    let pool = unsafe { (*ctx.r).pool };
    // SAFETY: `pool` is the request's pool, from which every buffer of filter_bufs came
    let cl = unsafe { ctx.filter_bufs.get(pool, data.len(), tag()) }?;
    // SAFETY: BufList::get gives a live link with a live buffer
    let b = unsafe { (*cl).buf };
    // SAFETY: `b` is the live buffer of our output link, with room for `data`
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), (*b).last, data.len());
        (*b).last = (*b).last.add(data.len());
    }
    Some(cl)
}

fn tag() -> *mut c_void {
    &TAG as *const u8 as *mut c_void
}

/// Fills `ngx.arg` with the chain's data and eof flag, or empties it.
unsafe fn set_arg(l: *mut lua_State, arg: Option<(&[u8], bool)>) {
    match arg {
        // SAFETY: `l` is the current VM's main state, which runs this phase's code;
        // nothing here raises but allocation failure, as everywhere in the VM
        Some((data, eof)) => unsafe {
            crate::api::arg::push(l);
            push_bytes(l, data);
            ffi::lua_rawseti(l, -2, 1);
            ffi::lua_pushboolean(l, eof as _);
            ffi::lua_rawseti(l, -2, 2);
            ffi::lua_pop(l, 1);
        },
        // SAFETY: as above
        None => unsafe { crate::api::arg::clear(l, 2) },
    }
}

/// What the code left in `ngx.arg`: the eof flag, and the data (nil drops
/// it): a string is returned as is, borrowed from the Lua string that
/// `ngx.arg[1]` keeps alive; anything else is appended to `data`.
unsafe fn read_arg<'a>(l: *mut lua_State, data: &mut Vec<u8>) -> Result<(bool, Option<&'a [u8]>), String> {
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
        crate::lua::get_raw(l, -1, c"arg");
    }
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TTABLE {
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        unsafe { ffi::lua_pop(l, 2) };
        return Err("ngx.arg is not a table any more".into());
    }
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { ffi::lua_rawgeti(l, -1, 1) };
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    let res = match unsafe { ffi::lua_type(l, -1) } {
        ffi::LUA_TNIL => Ok(None),
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        ffi::LUA_TSTRING => Ok(
            unsafe { to_bytes(l, -1) }.map(|b| unsafe { std::slice::from_raw_parts(b.as_ptr(), b.len()) })
        ),
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        _ => unsafe { append_value(l, data, 0) }.map(|_| None),
    };
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { ffi::lua_rawgeti(l, -2, 2) };
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    let eof = unsafe { ffi::lua_toboolean(l, -1) } != 0;
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { ffi::lua_pop(l, 4) };
    res.map(|single| (eof, single))
}

/// Appends the value on top of the stack: a string, a number, or an array
/// of them (nested, as `ngx.print` takes them).
unsafe fn append_value(l: *mut lua_State, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    match unsafe { ffi::lua_type(l, -1) } {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            // SAFETY: `l` is the current VM's main state, which runs this phase's code
            out.extend_from_slice(unsafe { to_bytes(l, -1) }.unwrap_or_default());
            Ok(())
        }
        ffi::LUA_TTABLE if depth < 32 => {
            // SAFETY: `l` is the current VM's main state, which runs this phase's code
            for i in 1..=unsafe { ffi::lua_objlen(l, -1) } {
                // SAFETY: `l` is the current VM's main state, which runs this phase's code
                unsafe { ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer) };
                // SAFETY: `l` is the current VM's main state, which runs this phase's code
                let r = unsafe { append_value(l, out, depth + 1) };
                // SAFETY: `l` is the current VM's main state, which runs this phase's code
                unsafe { ffi::lua_pop(l, 1) };
                r?;
            }
            Ok(())
        }
        _ => Err(format!(
            "bad ngx.arg[1] value type: {} (string, number, table or nil expected)",
            // SAFETY: `l` is the current VM's main state, which runs this phase's code
            unsafe { crate::lua::type_name(l, -1) }
        )),
    }
}
