//! How every layer finds the module's configuration: the accessors of
//! `ngx_http_get_module_loc_conf` and friends, and the module's
//! `ngx_module_t` (for its `ctx_index`).
//!
//! The `ngx_module_t` is defined by the module layer (module.rs). This file
//! names it by its C symbol, as lua-nginx-module's own files declare it
//! `extern`, so that the layers below reach their configuration without
//! naming the layer above (the ngx crate reaches nginx's core module the
//! same way).

use std::ptr::addr_of;

use nginx_sys::{ngx_conf_t, ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_request_t, ngx_module_t};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, Request};

use super::{LocConf, MainConf};

unsafe extern "C" {
    #[allow(non_upper_case_globals)]
    static ngx_http_lua_module: ngx_module_t;
}

/// The configuration types of our module, for the ngx crate's accessors.
struct Confs;

impl HttpModule for Confs {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module static is only written by nginx while loading.
        unsafe { &*addr_of!(ngx_http_lua_module) }
    }
}

// SAFETY: our main and location conf slots hold these types (module.rs
// creates them).
unsafe impl HttpModuleMainConf for Confs {
    type MainConf = MainConf;
}

// SAFETY: as above.
unsafe impl HttpModuleLocationConf for Confs {
    type LocationConf = LocConf;
}

/// The module's `ngx_module_t`.
pub fn module() -> &'static ngx_module_t {
    Confs::module()
}

/// The location configuration of a request.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn loc_conf<'a>(r: *mut ngx_http_request_t) -> &'a LocConf {
    // SAFETY: `r` is a live request (caller's contract)
    Confs::location_conf(unsafe { &*r }).expect("lua loc conf")
}

/// [`loc_conf`] where a missing configuration must not panic: for code
/// outside [`crate::glue::catch`].
///
/// # Safety
/// `r` must be a live request.
#[inline]
pub unsafe fn try_loc_conf<'a>(r: *mut ngx_http_request_t) -> Option<&'a LocConf> {
    // SAFETY: `r` is a live request (caller's contract)
    Confs::location_conf(unsafe { &*r })
}

/// The main configuration of a request.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn main_conf<'a>(r: *mut ngx_http_request_t) -> &'a MainConf {
    // SAFETY: `r` is a live request (caller's contract)
    Confs::main_conf(unsafe { &*r }).expect("lua main conf")
}

/// [`loc_conf`] of ngx-rust's request handle, which carries the request's
/// validity (no caller contract).
pub fn req_loc_conf(req: &Request) -> &LocConf {
    Confs::location_conf(req).expect("lua loc conf")
}

/// [`main_conf`] of ngx-rust's request handle.
pub fn req_main_conf(req: &Request) -> &MainConf {
    Confs::main_conf(req).expect("lua main conf")
}

/// The main configuration while parsing the http block.
///
/// # Safety
/// `cf` must be inside the http block.
pub unsafe fn main_conf_cf<'a>(cf: *mut ngx_conf_t) -> &'a mut MainConf {
    // SAFETY: `cf` is inside the http block (caller's contract): its ctx is an http conf ctx
    let ctx = unsafe { &*((*cf).ctx as *const ngx_http_conf_ctx_t) };
    Confs::main_conf_mut(ctx).expect("lua main conf")
}

/// The main configuration of a cycle, if it has an http block.
///
/// # Safety
/// `cycle` must be live.
pub unsafe fn main_conf_cycle<'a>(cycle: *mut ngx_cycle_t) -> Option<&'a mut MainConf> {
    // SAFETY: `cycle` is live (caller's contract)
    Confs::main_conf_mut(unsafe { &*cycle })
}
