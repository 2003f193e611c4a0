//! The `ngx.*` table, one file per area.

pub mod arg;
pub mod balancer;
pub mod constants;
pub mod control;
pub mod coroutine;
pub mod ffi_scratch;
pub mod globals;
pub mod location;
pub mod log;
pub mod ndk;
pub mod ngx_fields;
pub mod ngx_fields_ffi;
pub mod output;
pub mod pipe;
pub mod query_args;
pub mod regex;
pub mod regex_ffi;
pub mod regex_split;
pub mod regex_sub;
pub mod req;
pub mod req_args;
pub mod req_body;
pub mod req_ffi;
pub mod req_headers;
pub mod req_raw_header;
pub mod req_socket;
pub mod resp_headers;
pub mod resp_headers_ffi;
pub mod resty_core;
pub mod semaphore;
pub mod shdict;
pub mod shdict_ffi;
pub mod sleep;
pub mod socket_ffi;
pub mod socket_tcp;
pub mod socket_tls;
pub mod socket_udp;
pub mod ssl;
pub mod ssl_clienthello;
pub mod ssl_keys;
pub mod ssl_ocsp;
pub mod ssl_proxy;
pub mod ssl_session;
pub mod ssl_verify;
pub mod string;
pub mod string_ffi;
pub mod thread;
pub mod time;
pub mod time_ffi;
pub mod timer;
pub mod unimplemented;
pub mod var;
pub mod var_ffi;
pub mod worker;
pub mod worker_ffi;
pub mod worker_thread;

use crate::lua::{ffi, lua_State};

/// Builds the `ngx` global and everything hung on it.
///
/// # Safety
/// `l` must be the VM's main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 128);
        arg::install(l);
        constants::install(l);
        output::install(l);
        control::install(l);
        log::install(l);
        sleep::install(l);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        thread::install(l);
        timer::install(l);
        var::install(l);
        worker::install(l);
        worker_thread::install(l);
        string::install(l);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        time::install(l);
        req::install(l);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { req_headers::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { req_args::install(l) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { req_body::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        resp_headers::install(l);
        location::install(l);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { regex::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ngx_fields::install(l) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { shdict::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { socket_tcp::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        socket_udp::install(l);
        req_socket::install(l);
        crate::lua::set_raw(l, ffi::LUA_GLOBALSINDEX, c"ngx");
        log::install_print(l);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { coroutine::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { semaphore::install(l) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { pipe::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        string::install_base64_module(l);
        balancer::install(l);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { unimplemented::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { ndk::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { resty_core::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, include_bytes!("lua/ssl.lua"), c"=ngx.ssl") })?;
    // The hot functions that need no request, over the FFI.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, include_bytes!("lua/time.lua"), c"=ngx.time") })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, include_bytes!("lua/string.lua"), c"=ngx.string") })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, include_bytes!("lua/regex.lua"), c"=ngx.re") })?;
    // The hot functions of a request, over the FFI.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { var::install_ffi_face(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { ngx_fields::install_ffi_face(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { resp_headers::install_ffi_face(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { req::install_ffi_face(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { run_snippet(l, include_bytes!("lua/worker.lua"), c"=ngx.worker") }
}

/// Runs the Lua face of an API area at VM creation: `code` gets the
/// area's classic C functions (`classic`, in order) as its arguments, to
/// fall back on.
///
/// # Safety
/// `l` must be the main state, not running, with the `ngx` global set.
pub unsafe fn run_face(
    l: *mut lua_State,
    code: &[u8],
    name: &std::ffi::CStr,
    classic: &[ffi::lua_CFunction],
) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        if ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), name.as_ptr()) != 0 {
            return Err(crate::lua::vm::pop_message(l));
        }
        for &f in classic {
            ffi::lua_pushcfunction(l, f);
        }
        if ffi::lua_pcall(l, classic.len() as _, 0, 0) != 0 {
            return Err(crate::lua::vm::pop_message(l));
        }
    }
    Ok(())
}

/// Runs a small Lua snippet of ours at VM creation.
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn run_snippet(l: *mut lua_State, code: &[u8], name: &std::ffi::CStr) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), name.as_ptr()) } != 0
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        || unsafe { ffi::lua_pcall(l, 0, 0, 0) } != 0
    {
        // SAFETY: the failed load or call left its message on top
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    Ok(())
}
