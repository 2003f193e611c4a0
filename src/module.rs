//! The nginx module: its `ngx_module_t`, command table, configuration hooks
//! and process hooks.

use std::ffi::{c_char, c_void};
use std::ptr::{addr_of, addr_of_mut};

use nginx_sys::{
    NGX_HTTP_MODULE, ngx_array_push, ngx_conf_t, ngx_cycle_t, ngx_http_handler_pt, ngx_http_module_t,
    ngx_http_phases_NGX_HTTP_ACCESS_PHASE as ACCESS_PHASE, ngx_http_phases_NGX_HTTP_LOG_PHASE as LOG_PHASE,
    ngx_http_phases_NGX_HTTP_REWRITE_PHASE as REWRITE_PHASE,
    ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE as SERVER_REWRITE_PHASE, ngx_int_t, ngx_module_t,
    ngx_uint_t,
};
use ngx::core::Status;
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};

use crate::api;
use crate::conf::{LocConf, MainConf, main_conf_cf, main_conf_cycle};
use crate::directives::COMMANDS;
use crate::lua::vm;
use crate::phase;

pub struct Module;

impl HttpModule for Module {
    fn module() -> &'static ngx_module_t {
        // SAFETY: the module static is only written by nginx while loading.
        unsafe { &*addr_of!(ngx_http_lua_module) }
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        crate::glue::catch(Status::NGX_ERROR, || {
            // SAFETY: called by nginx with the http block's configuration.
            unsafe { install_phase_handlers(cf) }
        })
        .into()
    }

    unsafe extern "C" fn merge_loc_conf(
        cf: *mut ngx_conf_t,
        prev: *mut c_void,
        conf: *mut c_void,
    ) -> *mut c_char {
        crate::glue::catch(ngx::core::NGX_CONF_ERROR, || {
            // SAFETY: nginx merges two LocConf of ours (create_loc_conf).
            unsafe {
                let (prev, conf) = (&*(prev as *const LocConf), &mut *(conf as *mut LocConf));
                if ngx::http::Merge::merge(conf, prev).is_err() {
                    return ngx::core::NGX_CONF_ERROR;
                }
                // As lua-nginx-module master: the upstream TLS hooks go
                // into the proxy module's SSL_CTX of the merged location.
                if Status(phase::proxy_ssl::hook(cf, conf)) != Status::NGX_OK {
                    return ngx::core::NGX_CONF_ERROR;
                }
                std::ptr::null_mut()
            }
        })
    }

    unsafe extern "C" fn init_main_conf(cf: *mut ngx_conf_t, conf: *mut c_void) -> *mut c_char {
        crate::glue::catch(ngx::core::NGX_CONF_ERROR, || {
            // SAFETY: `conf` is our MainConf, created by create_main_conf.
            unsafe { phase::init::run(cf, &mut *(conf as *mut MainConf)) }
        })
    }
}

// SAFETY: create_main_conf stores a MainConf in this module's main conf slot.
unsafe impl HttpModuleMainConf for Module {
    type MainConf = MainConf;
}

// SAFETY: Module::create_loc_conf (HttpModule's, for LocConf) fills this module's location conf slot.
unsafe impl HttpModuleLocationConf for Module {
    type LocationConf = LocConf;
}

unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    crate::glue::catch(std::ptr::null_mut(), || {
        // SAFETY: called by nginx at the start of the http block.
        unsafe {
            let conf = ngx::core::Pool::from_ngx_pool((*cf).pool).allocate(MainConf::default());
            if conf.is_null() {
                return std::ptr::null_mut();
            }
            // The VM knows nothing of the API: the module composes them.
            let built = vm::Vm::new().and_then(|v| {
                api::install(v.main())?;
                Ok(v)
            });
            match built {
                Ok(v) => (*conf).vm = Some(v),
                Err(e) => {
                    ngx::ngx_conf_log_error!(
                        nginx_sys::NGX_LOG_EMERG,
                        cf,
                        "failed to create the Lua VM: {}",
                        e
                    );
                    return std::ptr::null_mut();
                }
            }
            vm::set_current((*conf).vm.as_ref());
            conf.cast()
        }
    })
}

unsafe fn install_phase_handlers(cf: *mut ngx_conf_t) -> Status {
    // SAFETY: `cf` is the http block's conf being post-configured (nginx's postconfiguration call)
    let lmcf = unsafe { main_conf_cf(cf) };
    // SAFETY: `cf`'s ctx is the http block's conf ctx during postconfiguration
    let cmcf =
        NgxHttpCoreModule::main_conf_mut(unsafe { &*((*cf).ctx as *const nginx_sys::ngx_http_conf_ctx_t) })
            .expect("core main conf");
    let mut add = |ph: u32, h: ngx_http_handler_pt| -> bool {
        // SAFETY: the core main conf's phase arrays are live while configuring
        let p = unsafe { ngx_array_push(&mut cmcf.phases[ph as usize].handlers) } as *mut ngx_http_handler_pt;
        if p.is_null() {
            return false;
        }
        // SAFETY: `p` is the non-null slot ngx_array_push returned
        unsafe {
            *p = h;
        }
        true
    };
    let ok = (!lmcf.uses_server_rewrite || add(SERVER_REWRITE_PHASE, Some(phase::server_rewrite::handler)))
        && (!lmcf.uses_rewrite || add(REWRITE_PHASE, Some(phase::rewrite::handler)))
        && (!lmcf.uses_access || add(ACCESS_PHASE, Some(phase::access::handler)))
        && (!(lmcf.uses_log || lmcf.malloc_trim() > 0) || add(LOG_PHASE, Some(phase::log::handler)));
    // Always: captured subrequests end in our filters.
    // SAFETY: runs once per configuration, before any request, on nginx's thread
    unsafe {
        phase::header_filter::install();
        phase::body_filter::install();
    }
    // SAFETY: `cf` is the http block's conf being post-configured
    let ok = ok && Status(unsafe { phase::ssl::install(cf) }) == Status::NGX_OK;
    if ok { Status::NGX_OK } else { Status::NGX_ERROR }
}

static NGX_HTTP_LUA_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: Some(Module::postconfiguration),
    create_main_conf: Some(create_main_conf),
    init_main_conf: Some(Module::init_main_conf),
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(Module::create_loc_conf),
    merge_loc_conf: Some(Module::merge_loc_conf),
};

#[used]
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_lua_module: ngx_module_t = ngx_module_t {
    ctx: addr_of!(NGX_HTTP_LUA_MODULE_CTX) as *mut c_void,
    commands: addr_of_mut!(COMMANDS) as *mut _,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_process: Some(init_process),
    exit_process: Some(exit_process),
    exit_master: Some(exit_master),
    ..ngx_module_t::default()
};

unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    crate::glue::catch(Status::NGX_ERROR.into(), || {
        // SAFETY: called by nginx in each new worker with the live cycle.
        unsafe {
            let Some(lmcf) = main_conf_cycle(cycle) else {
                return Status::NGX_OK.into();
            };
            vm::set_current(lmcf.vm.as_ref());
            if let Some(ring) = lmcf.capture_log {
                crate::glue::log_hook::install(cycle, ring.as_ptr());
            }
            phase::init_worker::run(cycle, lmcf)
        }
    })
}

/// The master's match state (regexes run by init_by_lua): nginx unloads
/// this module as the master exits, and the static that points at it goes
/// with it. (A single process gets here after exit_process; releasing
/// twice is harmless.)
unsafe extern "C" fn exit_master(_cycle: *mut ngx_cycle_t) {
    crate::glue::catch((), crate::glue::pcre2::release_match_state)
}

unsafe extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    crate::glue::catch((), || {
        // SAFETY: called by nginx as the worker exits, with the live cycle.
        unsafe {
            if let Some(lmcf) = main_conf_cycle(cycle) {
                phase::init_worker::run_exit(lmcf);
            }
        }
        crate::glue::pcre2::release_match_state();
    })
}
