//! body_filter_by_lua*: runs once per chain passed down the body filters,
//! with `ngx.arg[1]` (the chain's data) and `ngx.arg[2]` (eof); what the code
//! leaves there replaces the chain. Captured subrequests' bodies end here.

use std::ffi::c_void;

use nginx_sys::{
    ngx_chain_get_free_buf, ngx_chain_t, ngx_chain_update_chains, ngx_http_output_body_filter_pt,
    ngx_http_request_t, ngx_int_t, ngx_palloc, NGX_ERROR, NGX_LOG_ERR,
};

use super::{request_log, resolve};
use crate::conf::LuaCode;
use crate::glue::buf::{consume, in_memory};
use crate::glue::log as nlog;
use crate::module::loc_conf;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::lua::{ffi, lua_State, push_bytes, to_bytes};
use crate::runtime::phase::Phase;
use crate::runtime::{capture, run_sync, vm};

static mut NEXT: ngx_http_output_body_filter_pt = None;

/// Tags our output buffers, so that nginx hands them back for reuse.
static TAG: u8 = 0;

/// Puts our filter on top of the body filter chain.
///
/// # Safety
/// Only from postconfiguration.
pub unsafe fn install() {
    NEXT = nginx_sys::ngx_http_top_body_filter;
    nginx_sys::ngx_http_top_body_filter = Some(filter);
}

unsafe extern "C" fn filter(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls body filters with a live request and its chain.
        unsafe { run(r, input) }
    })
}

unsafe fn next(r: *mut ngx_http_request_t, cl: *mut ngx_chain_t) -> ngx_int_t {
    match NEXT {
        Some(f) => f(r, cl),
        None => NGX_ERROR as ngx_int_t,
    }
}

unsafe fn run(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    let code = loc_conf(r).body_filter.clone();
    let (out, ctx) = match code {
        Some(code) if !input.is_null() => {
            let Some(ctx) = RequestCtx::get_or_create(r) else {
                return NGX_ERROR as ngx_int_t;
            };
            match filter_chain(ctx, &code, input) {
                Ok(out) => (out, Some(ctx)),
                Err(e) => {
                    let msg = format!("failed to run body_filter_by_lua*: {e}");
                    nlog::error(request_log(r), NGX_LOG_ERR, msg.as_bytes());
                    return NGX_ERROR as ngx_int_t;
                }
            }
        }
        _ => (input, None),
    };
    let rc = if capture::is_captured(r) {
        capture::body(r, out)
    } else {
        next(r, out)
    };
    if let Some(ctx) = ctx {
        let mut out = out;
        ngx_chain_update_chains(
            (*r).pool,
            &mut ctx.filter_free,
            &mut ctx.filter_busy,
            &mut out,
            &TAG as *const u8 as *mut c_void,
        );
    }
    rc
}

/// What the chain carries, for `ngx.arg`.
struct ChainData {
    data: Vec<u8>,
    eof: bool,
    flush: bool,
}

/// Reads the chain's data and marks its buffers consumed.
unsafe fn take_chain(mut cl: *mut ngx_chain_t) -> ChainData {
    let mut d = ChainData {
        data: Vec::new(),
        eof: false,
        flush: false,
    };
    while !cl.is_null() {
        let b = (*cl).buf;
        if in_memory(b) && (*b).last > (*b).pos {
            let n = (*b).last.offset_from((*b).pos) as usize;
            d.data.extend_from_slice(std::slice::from_raw_parts((*b).pos, n));
        }
        d.eof |= (*b).last_buf() != 0 || (*b).last_in_chain() != 0;
        d.flush |= (*b).flush() != 0;
        consume(b);
        cl = (*cl).next;
    }
    d
}

/// Runs the code on one chain and returns the chain to pass on.
unsafe fn filter_chain(
    ctx: &mut RequestCtx,
    code: &LuaCode,
    input: *mut ngx_chain_t,
) -> Result<*mut ngx_chain_t, String> {
    let r = ctx.r;
    if ctx.filter_eof {
        // The code ended the body already: later data is dropped.
        let mut cl = input;
        while !cl.is_null() {
            consume((*cl).buf);
            cl = (*cl).next;
        }
        return Ok(std::ptr::null_mut());
    }
    let chain = take_chain(input);
    let (func, owned) = resolve(r, code)?;
    let vm = vm::current().ok_or("no Lua VM")?;
    let l = vm.main();
    set_arg(l, Some((&chain.data, chain.eof)));
    let res = run_sync::in_request(ctx, Phase::BodyFilter, func, 0, 0).and_then(|_| read_arg(l));
    set_arg(l, None);
    if owned {
        vm.unref(func);
    }
    let (data, end) = res?;
    if end && !chain.eof {
        ctx.filter_eof = true;
    }
    let eof = chain.eof || end;
    if data.is_empty() && !eof && !chain.flush {
        return Ok(std::ptr::null_mut());
    }
    let cl = out_buf(ctx, &data).ok_or("no memory")?;
    let b = (*cl).buf;
    if eof {
        if (*r).main == r {
            (*b).set_last_buf(1);
        } else {
            (*b).set_last_in_chain(1);
        }
    }
    if chain.flush {
        (*b).set_flush(1);
    }
    Ok(cl)
}

/// A one-link chain with `data`: a reused buffer of ours when one fits.
unsafe fn out_buf(ctx: &mut RequestCtx, data: &[u8]) -> Option<*mut ngx_chain_t> {
    let pool = (*ctx.r).pool;
    if data.is_empty() {
        // A fresh zeroed buffer without memory: nginx treats it as a
        // special (flags only) one.
        let cl = ngx_chain_get_free_buf(pool, &mut std::ptr::null_mut());
        return (!cl.is_null()).then_some(cl);
    }
    let cl = ngx_chain_get_free_buf(pool, &mut ctx.filter_free);
    if cl.is_null() {
        return None;
    }
    let b = (*cl).buf;
    let cap = if (*b).start.is_null() {
        0
    } else {
        (*b).end.offset_from((*b).start) as usize
    };
    if cap < data.len() {
        let p = ngx_palloc(pool, data.len()) as *mut u8;
        if p.is_null() {
            return None;
        }
        (*b).start = p;
        (*b).end = p.add(data.len());
    }
    (*b).pos = (*b).start;
    std::ptr::copy_nonoverlapping(data.as_ptr(), (*b).start, data.len());
    (*b).last = (*b).start.add(data.len());
    (*b).set_temporary(1);
    (*b).set_last_buf(0);
    (*b).set_last_in_chain(0);
    (*b).set_flush(0);
    (*b).tag = &TAG as *const u8 as *mut c_void;
    Some(cl)
}

/// Sets `ngx.arg` to `{data, eof}` (or back to nil).
unsafe fn set_arg(l: *mut lua_State, arg: Option<(&[u8], bool)>) {
    crate::runtime::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
    match arg {
        Some((data, eof)) => {
            ffi::lua_createtable(l, 2, 0);
            push_bytes(l, data);
            ffi::lua_rawseti(l, -2, 1);
            ffi::lua_pushboolean(l, eof as _);
            ffi::lua_rawseti(l, -2, 2);
        }
        None => ffi::lua_pushnil(l),
    }
    crate::runtime::lua::set_raw(l, -2, c"arg");
    ffi::lua_pop(l, 1);
}

/// What the code left in `ngx.arg`: the data (nil drops it) and the eof flag.
unsafe fn read_arg(l: *mut lua_State) -> Result<(Vec<u8>, bool), String> {
    crate::runtime::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
    crate::runtime::lua::get_raw(l, -1, c"arg");
    if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
        ffi::lua_pop(l, 2);
        return Err("ngx.arg is not a table any more".into());
    }
    ffi::lua_rawgeti(l, -1, 1);
    let mut data = Vec::new();
    let res = if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
        Ok(())
    } else {
        append_value(l, &mut data, 0)
    };
    ffi::lua_rawgeti(l, -2, 2);
    let eof = ffi::lua_toboolean(l, -1) != 0;
    ffi::lua_pop(l, 4);
    res.map(|_| (data, eof))
}

/// Appends the value on top of the stack: a string, a number, or an array
/// of them (nested, as `ngx.print` takes them).
unsafe fn append_value(l: *mut lua_State, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            out.extend_from_slice(to_bytes(l, -1).unwrap_or_default());
            Ok(())
        }
        ffi::LUA_TTABLE if depth < 32 => {
            for i in 1..=ffi::lua_objlen(l, -1) {
                ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer);
                let r = append_value(l, out, depth + 1);
                ffi::lua_pop(l, 1);
                r?;
            }
            Ok(())
        }
        _ => Err(format!(
            "bad ngx.arg[1] value type: {} (string, number, table or nil expected)",
            crate::runtime::lua::type_name(l, -1)
        )),
    }
}
