//! set_by_lua*: runs inside the rewrite module's script (see
//! conf/set_by_lua.rs) and pushes the value the next instruction assigns.

use nginx_sys::{
    ngx_http_request_t, ngx_http_script_engine_t, ngx_pnalloc, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_ERR,
};

use super::{request_log, resolve};
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
    let code = &*((*e).ip as *const SetCode);
    (*e).ip = (*e).ip.add(std::mem::size_of::<SetCode>());
    let r = (*e).request;
    match value(r, code) {
        Ok(v) => {
            let sp = (*e).sp;
            std::ptr::write_bytes(sp, 0, 1);
            if !v.is_empty() {
                let p = ngx_pnalloc((*r).pool, v.len()) as *mut u8;
                if p.is_null() {
                    fail(e);
                    return;
                }
                std::ptr::copy_nonoverlapping(v.as_ptr(), p, v.len());
                (*sp).data = p;
            }
            (*sp).set_len(v.len() as u32);
            (*sp).set_valid(1);
            (*e).sp = sp.add(1);
        }
        Err(msg) => {
            nlog::error(
                request_log(r),
                NGX_LOG_ERR,
                format!("failed to run set_by_lua*: {msg}").as_bytes(),
            );
            fail(e);
        }
    }
}

unsafe fn fail(e: *mut ngx_http_script_engine_t) {
    (*e).status = NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    (*e).ip = &EXIT_CODE as *const usize as *mut u8;
}

/// Runs the code with `ngx.arg` set to the evaluated arguments and returns
/// its first result as a string (nil gives "").
unsafe fn value(r: *mut ngx_http_request_t, code: &SetCode) -> Result<Vec<u8>, String> {
    let ctx = RequestCtx::get_or_create(r).ok_or("no memory")?;
    let _vm = ctx.enter_vm();
    let mut args = Vec::new();
    for &cv in (*code.args).iter() {
        args.push(complex::eval(r, cv).ok_or("failed to evaluate an argument")?);
    }
    let (func, owned) = resolve(r, &*code.lua)?;
    let vm = vm::current().ok_or("no Lua VM")?;
    let l = vm.main();
    set_args(l, Some(&args));
    let res = run_sync::in_request(ctx, context::SET, func, 0, 1).map(|l| {
        let v = to_bytes(l, -1).unwrap_or_default().to_vec();
        ffi::lua_pop(l, 1);
        v
    });
    set_args(l, None);
    if owned {
        vm.unref(func);
    }
    res
}

/// `ngx.arg` for the running set_by_lua code (nil outside it).
unsafe fn set_args(l: *mut ffi::lua_State, args: Option<&[Vec<u8>]>) {
    crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
    match args {
        Some(a) => {
            ffi::lua_createtable(l, a.len() as i32, 0);
            for (i, v) in a.iter().enumerate() {
                push_bytes(l, v);
                ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
            }
        }
        None => ffi::lua_pushnil(l),
    }
    crate::lua::set_raw(l, -2, c"arg");
    ffi::lua_pop(l, 1);
}
