//! init_by_lua*: runs in the master (or the single process) once the http
//! block is parsed, and again for each reload.

use std::ffi::c_char;

use nginx_sys::ngx_conf_t;
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};

use crate::conf::code::{FilePath, Source};
use crate::conf::shdict::Zone;
use crate::conf::{LuaCode, MainConf};
use crate::lua::vm::{Scope, Vm};
use crate::runtime::context;
use crate::runtime::run_sync;

/// Applies lua_package_path/cpath, then runs init_by_lua.
///
/// # Safety
/// `cf` must be the configuration whose http block was just parsed.
pub unsafe fn run(cf: *mut ngx_conf_t, lmcf: &mut MainConf) -> *mut c_char {
    lmcf.request_vm = Some(request_vm);
    let Some(vm) = lmcf.vm.as_ref() else {
        return NGX_CONF_OK;
    };
    // SAFETY: `cf` is the configuration whose http block was just parsed (caller's contract)
    lmcf.cycle = unsafe { (*cf).cycle };
    // SAFETY: `cf` and its cycle are live (caller's contract)
    let prefix = unsafe { (*(*cf).cycle).prefix.as_bytes().to_vec() };
    set_search_paths(vm, lmcf, &prefix);
    if !lmcf.shdicts.is_empty() {
        // The dictionaries' zones do not exist yet: the last zone's init
        // callback runs the code (conf/shdict.rs).
        return NGX_CONF_OK;
    }
    // SAFETY: during configuration, with the VM of `lmcf` current
    match unsafe { run_code(lmcf) } {
        Ok(()) => NGX_CONF_OK,
        Err(e) => {
            // SAFETY: `cf` is the live conf nginx passed to postconfiguration
            crate::glue::log::error(unsafe { (*cf).log }, nginx_sys::NGX_LOG_ERR, e.as_bytes());
            NGX_CONF_ERROR
        }
    }
}

/// Runs init_by_lua, if configured, then guards `_G` against writes from
/// request code (init_by_lua's own globals are intended). The error is
/// lua-nginx-module's whole message, "init_by_lua error: " or
/// "init_by_lua_file error: " and Lua's (its compiler's, for a syntax
/// error), which it logs at the error level before nginx gives up.
///
/// # Safety
/// Called during configuration, with the VM of `lmcf` current.
pub unsafe fn run_code(lmcf: &mut MainConf) -> Result<(), String> {
    let Some(vm) = lmcf.vm.as_ref() else {
        return Ok(());
    };
    let Some(code) = lmcf.init.clone() else {
        // SAFETY: `vm.main()` is the configuration's main state, not running
        unsafe { crate::api::globals::guard_writes(vm.main()) };
        return Ok(());
    };
    // `nginx -s ...` parses the configuration only to find the pid file.
    // SAFETY: nginx's process globals are only touched by this worker's one thread
    if unsafe { nginx_sys::ngx_process } == nginx_sys::NGX_PROCESS_SIGNALLER as nginx_sys::ngx_uint_t {
        return Ok(());
    }
    let (kind, func) = init_chunk(vm, &code);
    // SAFETY: the VM of `lmcf` is current and not running (caller's contract)
    let run = || func.and_then(|f| unsafe { run_sync::outside_request(context::INIT, f) });
    // SAFETY: `lmcf.cycle` is the cycle being configured (caller's contract)
    let ran = unsafe { with_cycle(lmcf.cycle, run) };
    ran.map_err(|e| format!("{kind} error: {e}"))?;
    // SAFETY: `vm.main()` is the configuration's main state, not running
    unsafe { crate::api::globals::guard_writes(vm.main()) };
    Ok(())
}

/// lua_package_path/cpath on `vm`'s `package`, with `prefix` for `$prefix`.
fn set_search_paths(vm: &Vm, lmcf: &MainConf, prefix: &[u8]) {
    if let Some(p) = &lmcf.package_path {
        vm.set_search_path(c"path", p, prefix);
    }
    if let Some(p) = &lmcf.package_cpath {
        vm.set_search_path(c"cpath", p, prefix);
    }
}

/// init_by_lua's function in `vm`, with the directive name its errors
/// start with.
fn init_chunk(vm: &Vm, code: &LuaCode) -> (&'static str, Result<std::ffi::c_int, String>) {
    match &code.0.source {
        Source::Inline { .. } => ("init_by_lua", super::compiled_inline(vm, code)),
        Source::File(FilePath::Fixed(p)) => (
            "init_by_lua_file",
            vm.load_file(p.as_slice(), true).map_err(String::from),
        ),
        Source::File(FilePath::Complex(_)) => (
            "init_by_lua_file",
            Err("variables are not allowed in init_by_lua_file".into()),
        ),
    }
}

/// The own VM of a request in a location with lua_code_cache off, built
/// as the cycle's: the API, the search paths, the shared dicts, and
/// init_by_lua, which lua-nginx-module runs in each such VM too.
fn request_vm(lmcf: &MainConf) -> Result<Vm, String> {
    let vm = Vm::new()?;
    let l = vm.main();
    // SAFETY: `l` is the new VM's main state, not running; each zone lives
    // as long as the configuration that owns this main conf.
    unsafe {
        crate::api::install(l)?;
        set_search_paths(&vm, lmcf, (*nginx_sys::ngx_cycle).prefix.as_bytes());
        for zone in &lmcf.shdicts {
            let zp: *const Zone = &**zone;
            crate::api::shdict::register(l, &zone.name, zp.cast_mut());
        }
    }
    if let Some(code) = &lmcf.init {
        let _s = Scope::enter(Some(&vm));
        let (kind, func) = init_chunk(&vm, code);
        // SAFETY: the new VM is current (Scope) and not running.
        func.and_then(|f| unsafe { run_sync::outside_request(context::INIT, f) })
            .map_err(|e| format!("{kind} error: {e}"))?;
    }
    // SAFETY: as above.
    unsafe { crate::api::globals::guard_writes(l) };
    Ok(vm)
}

/// Runs `f` with `ngx_cycle` set to the cycle being configured, as
/// lua-nginx-module runs init_by_lua: nginx switches `ngx_cycle` only
/// after the configuration is complete, and every API that reads it
/// (ngx.worker.count, ngx.config.prefix, the shared dicts...) must see the
/// new configuration, not the previous cycle (at the first start, a cycle
/// with no configuration at all).
unsafe fn with_cycle<T>(cycle: *mut nginx_sys::ngx_cycle_t, f: impl FnOnce() -> T) -> T {
    if cycle.is_null() {
        return f();
    }
    // SAFETY: ngx_cycle is the live current cycle
    let saved = unsafe { nginx_sys::ngx_cycle };
    // SAFETY: ngx_cycle is the live current cycle
    unsafe { nginx_sys::ngx_cycle = cycle };
    let out = f();
    // SAFETY: ngx_cycle is the live current cycle
    unsafe { nginx_sys::ngx_cycle = saved };
    out
}
