//! set_by_lua*: runs inside the rewrite module's script (see
//! conf/set_by_lua.rs) and pushes the value the next instruction assigns.

use nginx_sys::{
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_ERR, ngx_http_request_t, ngx_http_script_engine_t, ngx_pnalloc,
};

use ngx::http::Request;

use super::resolve;
use crate::conf::SetCode;
use crate::glue::{complex, log as nlog};
use crate::lua::vm;
use crate::lua::{ffi, push_bytes, to_bytes};
use crate::runtime::context;
use crate::runtime::ctx::RequestCtx;
use crate::runtime::run_sync;

/// A zero word: pointing the script at it ends the script.
static EXIT_CODE: usize = 0;

pub unsafe extern "C" fn run(e: *mut ngx_http_script_engine_t) {
    crate::glue::catch((), || {
        // SAFETY: the rewrite module runs our instruction with its engine,
        // whose ip points at our SetCode.
        unsafe { run_inner(e) }
    })
}

unsafe fn run_inner(e: *mut ngx_http_script_engine_t) {
    // SAFETY: the engine's ip points at our SetCode, put in the codes by set_by_lua
    let code = unsafe { &*((*e).ip as *const SetCode) };
    // SAFETY: the SetCode is followed by the next instruction in the codes array
    unsafe {
        (*e).ip = (*e).ip.add(std::mem::size_of::<SetCode>());
    }
    // SAFETY: the engine runs for its live request
    let r = unsafe { (*e).request };
    // SAFETY: `r` is a live request (callers' duty)
    match unsafe { value(r, code) } {
        Ok(v) => {
            // SAFETY: the engine's value stack has room for the value this instruction pushes
            let sp = unsafe { (*e).sp };
            // SAFETY: `sp` is the engine's current, writable stack slot
            unsafe { std::ptr::write_bytes(sp, 0, 1) };
            if !v.is_empty() {
                // SAFETY: `r` is a live request (callers' duty)
                let p = unsafe { ngx_pnalloc((*r).pool, v.len()) } as *mut u8;
                if p.is_null() {
                    // SAFETY: `e` is the live script engine
                    unsafe { fail(e) };
                    return;
                }
                // SAFETY: `p` has v.len() fresh bytes; `sp` is the current stack slot
                unsafe {
                    std::ptr::copy_nonoverlapping(v.as_ptr(), p, v.len());
                    (*sp).data = p;
                }
            }
            // SAFETY: `sp` is the current stack slot; the next one exists for the following code
            unsafe {
                (*sp).set_len(v.len() as u32);
                (*sp).set_valid(1);
                (*e).sp = sp.add(1);
            }
        }
        Err(msg) => {
            // SAFETY: the engine's request is live.
            let log = unsafe { (*(*r).connection).log };
            nlog::log_error!(log, NGX_LOG_ERR, "failed to run set_by_lua*: {msg}");
            // SAFETY: `e` is the live script engine
            unsafe { fail(e) };
        }
    }
}

unsafe fn fail(e: *mut ngx_http_script_engine_t) {
    // SAFETY: `e` is the live script engine; EXIT_CODE is a static exit instruction
    unsafe {
        (*e).status = NGX_HTTP_INTERNAL_SERVER_ERROR as _;
        (*e).ip = &EXIT_CODE as *const usize as *mut u8;
    }
}

/// Runs the code with `ngx.arg` set to the evaluated arguments and returns
/// its first result as a string (nil gives "").
unsafe fn value(r: *mut ngx_http_request_t, code: &SetCode) -> Result<Vec<u8>, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let ctx = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }).ok_or("no memory")?;
    let _vm = ctx.enter_vm();
    let mut args = Vec::new();
    // SAFETY: `code.args` is the configuration's arguments, allocated in the conf pool
    for &cv in unsafe { (*code.args).iter() } {
        // SAFETY: `r` is a live request (callers' duty)
        args.push(unsafe { complex::eval(r, cv) }.ok_or("failed to evaluate an argument")?);
    }
    // SAFETY: `r` is a live request (callers' duty); `code.lua` is the
    // configuration's LuaCode, in the conf pool
    let (func, owned) = unsafe { resolve(r, &*code.lua) }?;
    let vm = vm::current().ok_or("no Lua VM")?;
    let l = vm.main();
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { set_args(l, &args) };
    // SAFETY: the request's VM is current; `func` is the resolved code and its arguments are set
    let res = unsafe { run_sync::in_request(ctx, context::SET, func, 0, 1) }.map(|l| {
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        let v = unsafe { to_bytes(l, -1) }.unwrap_or_default().to_vec();
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        unsafe { ffi::lua_pop(l, 1) };
        v
    });
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { crate::api::arg::clear(l, args.len()) };
    if owned {
        vm.unref(func);
    }
    res
}

/// Fills `ngx.arg` with the arguments of the running set_by_lua code.
unsafe fn set_args(l: *mut ffi::lua_State, args: &[Vec<u8>]) {
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { crate::api::arg::push(l) };
    for (i, v) in args.iter().enumerate() {
        // SAFETY: `l` is the current VM's main state, which runs this phase's code
        unsafe {
            push_bytes(l, v);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
    }
    // SAFETY: `l` is the current VM's main state, which runs this phase's code
    unsafe { ffi::lua_pop(l, 1) };
}
