//! The symbols nginx looks up in a dynamic module: the module list, their
//! names, and where to place them among the static modules.
//!
//! `ngx::ngx_modules!` leaves the order empty, which puts a dynamic module
//! after every static one: our filters would then sit on top of the whole
//! chain and see static files as file buffers. Like lua-nginx-module (an
//! HTTP_AUX_FILTER module), we ask to be placed just before the copy
//! filter, so that the copy filter reads files into memory before our body
//! filters and the range, not-modified and slice filters see responses first.

use std::ffi::c_char;

use ngx::ffi::ngx_module_t;

use crate::module::ngx_http_lua_module;

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut ngx_modules: [*const ngx_module_t; 2] =
    [std::ptr::addr_of!(ngx_http_lua_module), std::ptr::null()];

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_names: [*const c_char; 2] = [c"ngx_http_lua_module".as_ptr(), std::ptr::null()];

/// Read by nginx's `ngx_add_module`: our module goes before the first of the
/// modules listed after its own name.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_order: [*const c_char; 3] = [
    c"ngx_http_lua_module".as_ptr(),
    c"ngx_http_copy_filter_module".as_ptr(),
    std::ptr::null(),
];
