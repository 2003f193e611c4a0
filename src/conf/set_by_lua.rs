//! `set_by_lua $var <code> [args...]`, `set_by_lua_block $var { }` and
//! `set_by_lua_file $var <path> [args...]`.
//!
//! Like nginx's own `set`, the code must run at its place among the rewrite
//! module's directives (`set`, `if`, `rewrite`) of the block. lua-nginx-module
//! gets there through NDK; we append our own code to the rewrite module's
//! script, as `set` itself does, so no other module is needed.

use std::ffi::{c_char, c_void};
use std::mem::size_of;

use nginx_sys::{
    ngx_array_t, ngx_command_t, ngx_conf_t, ngx_http_add_variable, ngx_http_complex_value_t,
    ngx_http_conf_ctx_t, ngx_http_get_variable_index, ngx_http_request_t, ngx_http_script_code_pt,
    ngx_http_script_start_code, ngx_http_script_var_code_t, ngx_http_script_var_handler_code_t,
    ngx_http_set_variable_pt, ngx_http_variable_value_t, ngx_int_t, ngx_module_t, ngx_str_t, ngx_uint_t,
    NGX_CONF_2MORE, NGX_CONF_BLOCK, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_SIF_CONF,
    NGX_HTTP_SRV_CONF, NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_WEAK, NGX_OK,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use super::chunk::{self, LuaCode};
use super::directives::{cmd, L, T1};
use super::lua_block;

extern "C" {
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

/// Our instruction in the rewrite script: runs the code and pushes the value
/// for the following set-var instruction.
#[repr(C)]
pub struct SetCode {
    pub code: ngx_http_script_code_pt,
    pub lua: *const LuaCode,
    pub args: *const Vec<*mut ngx_http_complex_value_t>,
}

const SET_CTX: u32 = NGX_HTTP_SRV_CONF | NGX_HTTP_SIF_CONF | NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;

pub const COMMANDS: [ngx_command_t; 3] = [
    cmd(c"set_by_lua", SET_CTX | NGX_CONF_2MORE, set_by_lua, L, 0),
    cmd(
        c"set_by_lua_block",
        SET_CTX | NGX_CONF_BLOCK | T1,
        set_by_lua,
        L,
        0,
    ),
    cmd(c"set_by_lua_file", SET_CTX | NGX_CONF_2MORE, set_by_lua, L, 0),
];

unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
    ngx::ngx_conf_log_error!(nginx_sys::NGX_LOG_EMERG, cf, "{}", msg);
    NGX_CONF_ERROR
}

pub unsafe extern "C" fn set_by_lua(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    crate::glue::catch(NGX_CONF_ERROR, || {
        // SAFETY: called by nginx while parsing a server/location block.
        unsafe { set_inner(cf, cmd) }
    })
}

unsafe fn set_inner(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t) -> *mut c_char {
    let args = (*(*cf).args).as_slice::<ngx_str_t>().to_vec();
    let name = (*cmd).name.as_bytes();
    let mut var = args[1];
    if var.as_bytes().first() != Some(&b'$') {
        return conf_error(
            cf,
            &format!(
                "invalid variable name \"{}\"",
                String::from_utf8_lossy(var.as_bytes())
            ),
        );
    }
    var.len -= 1;
    var.data = var.data.add(1);

    let (code, extra) = if name.ends_with(b"_file") {
        match super::directives::file_path(cf, args[2]) {
            Ok(p) => (LuaCode::file(p), &args[3..]),
            Err(e) => return conf_error(cf, &e),
        }
    } else {
        let chunk_name = chunk::inline_name(cf, "set_by_lua");
        let (src, extra) = if name.ends_with(b"_block") {
            match lua_block::read(cf) {
                Ok(s) => (s, &args[2..2]),
                Err(e) => return conf_error(cf, &e),
            }
        } else {
            (args[2].as_bytes().to_vec(), &args[3..])
        };
        (LuaCode::inline(src, chunk_name), extra)
    };
    let mut cvs = Vec::with_capacity(extra.len());
    for a in extra {
        match crate::glue::complex::compile(cf, *a) {
            Some(cv) => cvs.push(cv),
            None => return NGX_CONF_ERROR,
        }
    }

    let v = ngx_http_add_variable(
        cf,
        &mut var,
        (NGX_HTTP_VAR_CHANGEABLE | NGX_HTTP_VAR_WEAK) as ngx_uint_t,
    );
    if v.is_null() {
        return NGX_CONF_ERROR;
    }
    let index = ngx_http_get_variable_index(cf, &mut var);
    if index < 0 {
        return NGX_CONF_ERROR;
    }
    if (*v).get_handler.is_none() {
        (*v).get_handler = Some(not_found_var);
        (*v).data = index as usize;
    }

    let ctx = &*((*cf).ctx as *const ngx_http_conf_ctx_t);
    let rlcf = *ctx.loc_conf.add(ngx_http_rewrite_module.ctx_index) as *mut RewriteLocConf;
    // Owned by the configuration pool, which outlives every request.
    let pool = ngx::core::Pool::from_ngx_pool((*cf).pool);
    let lua = pool.allocate(code);
    let cv_args = pool.allocate(cvs);
    if lua.is_null() || cv_args.is_null() {
        return NGX_CONF_ERROR;
    }
    let sc = ngx_http_script_start_code((*cf).pool, &mut (*rlcf).codes, size_of::<SetCode>()) as *mut SetCode;
    if sc.is_null() {
        return NGX_CONF_ERROR;
    }
    *sc = SetCode {
        code: Some(crate::phase::set::run),
        lua,
        args: cv_args,
    };

    if let Some(set_handler) = (*v).set_handler {
        let vh = ngx_http_script_start_code(
            (*cf).pool,
            &mut (*rlcf).codes,
            size_of::<ngx_http_script_var_handler_code_t>(),
        ) as *mut ngx_http_script_var_handler_code_t;
        if vh.is_null() {
            return NGX_CONF_ERROR;
        }
        (*vh).code = Some(ngx_http_script_var_set_handler_code);
        (*vh).handler = Some(set_handler) as ngx_http_set_variable_pt;
        (*vh).data = (*v).data;
        return NGX_CONF_OK;
    }
    let vc = ngx_http_script_start_code(
        (*cf).pool,
        &mut (*rlcf).codes,
        size_of::<ngx_http_script_var_code_t>(),
    ) as *mut ngx_http_script_var_code_t;
    if vc.is_null() {
        return NGX_CONF_ERROR;
    }
    (*vc).code = Some(ngx_http_script_set_var_code);
    (*vc).index = index as usize;
    NGX_CONF_OK
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
