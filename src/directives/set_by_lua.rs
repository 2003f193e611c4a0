//! `set_by_lua $var <code> [args...]`, `set_by_lua_block $var { }` and
//! `set_by_lua_file $var <path> [args...]`.
//!
//! Like nginx's own `set`, the code must run at its place among the rewrite
//! module's directives (`set`, `if`, `rewrite`) of the block. lua-nginx-module
//! gets there through NDK; we append our own code to the rewrite module's
//! script, as `set` itself does, so no other module is needed.

use std::mem::size_of;

use nginx_sys::{
    NGX_CONF_BLOCK, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_SIF_CONF, NGX_HTTP_SRV_CONF,
    NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_WEAK, NGX_OK, ngx_array_t, ngx_command_t, ngx_http_add_variable,
    ngx_http_conf_ctx_t, ngx_http_get_variable_index, ngx_http_request_t, ngx_http_script_start_code,
    ngx_http_script_var_code_t, ngx_http_script_var_handler_code_t, ngx_http_set_variable_pt,
    ngx_http_variable_value_t, ngx_int_t, ngx_module_t, ngx_str_t, ngx_uint_t,
};

use super::args::{ConfErr, ConfResult, conf_error};
use super::{LOC_CONF, TAKE1, TWO_OR_MORE, cmd, code, conf_setters};
use crate::conf::{LocConf, SetCode};

unsafe extern "C" {
    static mut ngx_http_rewrite_module: ngx_module_t;
    fn ngx_http_script_set_var_code(e: *mut nginx_sys::ngx_http_script_engine_t);
    fn ngx_http_script_var_set_handler_code(e: *mut nginx_sys::ngx_http_script_engine_t);
}

/// The rewrite module's location configuration (ngx_http_rewrite_module.c;
/// the same layout NDK relies on).
#[repr(C)]
struct RewriteLocConf {
    codes: *mut ngx_array_t,
    stack_size: ngx_uint_t,
    log: isize,
    uninitialized_variable_warn: isize,
}

const SET_CTX: u32 = NGX_HTTP_SRV_CONF | NGX_HTTP_SIF_CONF | NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;

pub const COMMANDS: [ngx_command_t; 3] = [
    cmd(c"set_by_lua", SET_CTX | TWO_OR_MORE, set_by_lua, LOC_CONF),
    cmd(
        c"set_by_lua_block",
        SET_CTX | NGX_CONF_BLOCK | TAKE1,
        set_by_lua,
        LOC_CONF,
    ),
    cmd(c"set_by_lua_file", SET_CTX | TWO_OR_MORE, set_by_lua, LOC_CONF),
];

conf_setters! {
    fn set_by_lua(cf, cmd, _: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and this directive's entry
        unsafe { set_inner(cf, cmd) }
    }
}

/// nginx failed and said why.
const FAILED: ConfErr = ConfErr::Logged;

unsafe fn set_inner(cf: *mut nginx_sys::ngx_conf_t, cmd: *mut ngx_command_t) -> ConfResult {
    // SAFETY: `cf` is being parsed (set_by_lua's contract); its args array is live
    let args = unsafe { (*(*cf).args).as_slice::<ngx_str_t>().to_vec() };
    let mut var = args[1];
    if var.as_bytes().first() != Some(&b'$') {
        // SAFETY: `cf` is the configuration being parsed
        return Err(unsafe {
            conf_error(
                cf,
                &format!(
                    "invalid variable name \"{}\"",
                    String::from_utf8_lossy(var.as_bytes())
                ),
            )
        });
    }
    var.len -= 1;
    // SAFETY: `var` starts with '$', so one byte follows data
    var.data = unsafe { var.data.add(1) };

    // SAFETY: `cf` and `cmd` come from nginx's call of the setter
    let code = unsafe { code::load(cf, cmd, 2) }?;
    // SAFETY: `cmd` is the directive's entry in our static command table
    let extra = if unsafe { (*cmd).name.as_bytes().ends_with(b"_block") } {
        &args[2..2]
    } else {
        &args[3..]
    };
    let mut cvs = Vec::with_capacity(extra.len());
    for a in extra {
        // SAFETY: `cf` is the configuration being parsed
        match unsafe { crate::glue::complex::compile(cf, *a) } {
            Some(cv) => cvs.push(cv),
            None => return Err(FAILED),
        }
    }

    // SAFETY: `cf` is the configuration being parsed; `var` a live name
    let v = unsafe {
        ngx_http_add_variable(
            cf,
            &mut var,
            (NGX_HTTP_VAR_CHANGEABLE | NGX_HTTP_VAR_WEAK) as ngx_uint_t,
        )
    };
    if v.is_null() {
        return Err(FAILED);
    }
    // SAFETY: `cf` is the configuration being parsed; `var` a live name
    let index = unsafe { ngx_http_get_variable_index(cf, &mut var) };
    if index < 0 {
        return Err(FAILED);
    }
    // SAFETY: `v` is the live, non-null variable nginx returned
    if unsafe { (*v).get_handler.is_none() } {
        // SAFETY: `v` is the live, non-null variable nginx returned
        unsafe {
            (*v).get_handler = Some(not_found_var);
            (*v).data = index as usize;
        }
    }

    // SAFETY: a location-level directive: `cf`'s ctx is an http conf ctx
    let ctx = unsafe { &*((*cf).ctx as *const ngx_http_conf_ctx_t) };
    // SAFETY: loc_conf has a slot per http module, the rewrite module's among them
    let rlcf = unsafe { *ctx.loc_conf.add(ngx_http_rewrite_module.ctx_index) } as *mut RewriteLocConf;
    // Owned by the configuration pool, which outlives every request.
    // SAFETY: the conf pool is live for the whole cycle
    let pool = unsafe { ngx::core::Pool::from_ngx_pool((*cf).pool) };
    let lua = pool.allocate(code);
    let cv_args = pool.allocate(cvs);
    if lua.is_null() || cv_args.is_null() {
        return Err(FAILED);
    }
    // SAFETY: the conf pool is live; `rlcf` is the rewrite module's live loc conf
    let sc = unsafe { ngx_http_script_start_code((*cf).pool, &mut (*rlcf).codes, size_of::<SetCode>()) }
        as *mut SetCode;
    if sc.is_null() {
        return Err(FAILED);
    }
    // SAFETY: `sc` is non-null room for one SetCode in the rewrite codes
    unsafe {
        *sc = SetCode {
            code: Some(crate::phase::set::run),
            lua,
            args: cv_args,
        };
    }

    // SAFETY: `v` is the live, non-null variable nginx returned
    if let Some(set_handler) = unsafe { (*v).set_handler } {
        // SAFETY: the conf pool is live; `rlcf` is the rewrite module's live loc conf
        let vh = unsafe {
            ngx_http_script_start_code(
                (*cf).pool,
                &mut (*rlcf).codes,
                size_of::<ngx_http_script_var_handler_code_t>(),
            )
        } as *mut ngx_http_script_var_handler_code_t;
        if vh.is_null() {
            return Err(FAILED);
        }
        // SAFETY: `vh` is non-null room for one var handler code; `v` is live
        unsafe {
            (*vh).code = Some(ngx_http_script_var_set_handler_code);
            (*vh).handler = Some(set_handler) as ngx_http_set_variable_pt;
            (*vh).data = (*v).data;
        }
        return Ok(());
    }
    // SAFETY: the conf pool is live; `rlcf` is the rewrite module's live loc conf
    let vc = unsafe {
        ngx_http_script_start_code(
            (*cf).pool,
            &mut (*rlcf).codes,
            size_of::<ngx_http_script_var_code_t>(),
        )
    } as *mut ngx_http_script_var_code_t;
    if vc.is_null() {
        return Err(FAILED);
    }
    // SAFETY: `vc` is non-null room for one var code
    unsafe {
        (*vc).code = Some(ngx_http_script_set_var_code);
        (*vc).index = index as usize;
    }
    Ok(())
}

/// Get handler of a variable only ever set by set_by_lua: not found until set.
unsafe extern "C" fn not_found_var(
    _r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: nginx passes the value slot to fill.
    unsafe { (*v).set_not_found(1) };
    NGX_OK as ngx_int_t
}
