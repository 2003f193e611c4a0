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

use std::ffi::c_int;

use crate::lua::lua_source;
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
    (unsafe { run_snippet(l, lua_source!("lua/ssl.lua"), c"=ngx.ssl") })?;
    // The hot functions that need no request, over the FFI.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, lua_source!("lua/time.lua"), c"=ngx.time") })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, lua_source!("lua/string.lua"), c"=ngx.string") })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { run_snippet(l, lua_source!("lua/regex.lua"), c"=ngx.re") })?;
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
    unsafe { run_snippet(l, lua_source!("lua/worker.lua"), c"=ngx.worker") }
}

/// Registry key of the `declare` helper (`lua/ffi_declare.lua`) of a VM.
static DECLARE: u8 = 0;

/// Pushes `l`'s VM's `declare` helper, made on first use (the worker
/// thread VMs load faces too).
///
/// # Safety
/// `l` must be a state of ours, not running, with room for two values.
pub unsafe fn push_declare(l: *mut lua_State) -> Result<(), String> {
    let key = &DECLARE as *const u8 as *mut std::ffi::c_void;
    // SAFETY: `l` is not running (caller's contract); raw registry access
    unsafe {
        ffi::lua_pushlightuserdata(l, key);
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
        if ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION {
            return Ok(());
        }
        ffi::lua_pop(l, 1);
    }
    let code = lua_source!("lua/ffi_declare.lua");
    // SAFETY: as above; the chunk is ours and returns one function
    unsafe {
        if ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), c"=ngx.ffi_declare".as_ptr()) != 0
            || ffi::lua_pcall(l, 0, 1, 0) != 0
        {
            return Err(crate::lua::vm::pop_message(l));
        }
        ffi::lua_pushlightuserdata(l, key);
        ffi::lua_pushvalue(l, -2);
        ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
    }
    Ok(())
}

/// Runs a Lua face of ours at VM creation, leaving its `nresults` results
/// on `l`: `code` gets the `declare` helper, then `classic` (the area's
/// classic C functions, to fall back on), then the `extra` values on top
/// of `l`, which it consumes.
///
/// # Safety
/// `l` must be the main state (or a worker thread VM being built), not
/// running, with `extra` values on top.
pub unsafe fn run_face(
    l: *mut lua_State,
    code: &[u8],
    name: &std::ffi::CStr,
    classic: &[ffi::lua_CFunction],
    extra: c_int,
    nresults: c_int,
) -> Result<(), String> {
    // SAFETY: `l` is a state of ours being set up, not running (caller's contract)
    unsafe {
        if ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), name.as_ptr()) != 0 {
            return Err(crate::lua::vm::pop_message(l));
        }
        ffi::lua_insert(l, -1 - extra);
        if let Err(e) = push_declare(l) {
            ffi::lua_pop(l, 1 + extra);
            return Err(e);
        }
        ffi::lua_insert(l, -1 - extra);
        for &f in classic {
            ffi::lua_pushcfunction(l, f);
            ffi::lua_insert(l, -1 - extra);
        }
        if ffi::lua_pcall(l, 1 + classic.len() as c_int + extra, nresults, 0) != 0 {
            return Err(crate::lua::vm::pop_message(l));
        }
    }
    Ok(())
}

/// Runs a small Lua snippet of ours at VM creation (a face with no classic
/// functions to fall back on).
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn run_snippet(l: *mut lua_State, code: &[u8], name: &std::ffi::CStr) -> Result<(), String> {
    // SAFETY: the caller's contract
    unsafe { run_face(l, code, name, &[], 0, 0) }
}
