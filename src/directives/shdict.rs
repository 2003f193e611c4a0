//! `lua_shared_dict <name> <size>`: declares an nginx shared memory zone
//! holding an `ngx.shared.<name>` dictionary.
//!
//! nginx creates the zones after the whole configuration is parsed, so
//! init_by_lua (which may use the dictionaries) runs once the last zone is
//! initialised, as lua-nginx-module does.

use std::ffi::c_void;

use nginx_sys::{
    NGX_ERROR, NGX_OK, ngx_command_t, ngx_int_t, ngx_parse_size, ngx_shared_memory_add, ngx_shm_zone_t,
    ngx_str_t,
};

use super::args::{ConfErr, conf_error};
use super::{HTTP, MAIN_CONF, TAKE2, cmd, conf_setters};
use crate::conf::MainConf;
use crate::conf::shdict::Zone;
use crate::glue::shdict_store::Dict;
use crate::lua::vm;

pub const COMMANDS: [ngx_command_t; 1] = [cmd(c"lua_shared_dict", HTTP | TAKE2, set_shared_dict, MAIN_CONF)];

/// nginx's smallest useful zone: its slab pool needs a few pages.
const MIN_SIZE: isize = 8192;

conf_setters! {
    fn set_shared_dict(cf, _, lmcf: MainConf) {
        // SAFETY: lua_shared_dict takes two arguments, which nginx checked
        let args = unsafe { (*(*cf).args).as_slice::<ngx_str_t>() };
        let (mut name, mut size_arg) = (args[1], args[2]);
        if name.len == 0 {
            // SAFETY: `cf` is the configuration being parsed
            return Err(unsafe { conf_error(cf, "invalid lua shared dict name \"\"") });
        }
        // SAFETY: `size_arg` is a live ngx_str_t of the directive's argument
        let size = unsafe { ngx_parse_size(&mut size_arg) };
        if size < MIN_SIZE {
            let msg = format!(
                "invalid lua shared dict size \"{}\"",
                String::from_utf8_lossy(size_arg.as_bytes())
            );
            // SAFETY: `cf` is the configuration being parsed
            return Err(unsafe { conf_error(cf, &msg) });
        }
        let tag = crate::conf::module() as *const nginx_sys::ngx_module_t as *mut c_void;
        // SAFETY: `cf` is being parsed; `name` is live; `tag` is our module
        let shm_zone = unsafe { ngx_shared_memory_add(cf, &mut name, size as usize, tag) };
        if shm_zone.is_null() {
            // nginx has logged why (size conflict, other use of the name).
            return Err(ConfErr::Logged);
        }
        // SAFETY: `shm_zone` is the live, non-null zone nginx returned
        if !unsafe { (*shm_zone).data.is_null() } {
            // SAFETY: a zone with our tag has only ever been given a Zone of ours as data
            let prev = unsafe { &*((*shm_zone).data as *const Zone) };
            let msg = format!(
                "lua_shared_dict \"{}\" is already defined as \"{}\"",
                String::from_utf8_lossy(name.as_bytes()),
                String::from_utf8_lossy(&prev.name)
            );
            // SAFETY: `cf` is the configuration being parsed
            return Err(unsafe { conf_error(cf, &msg) });
        }
        let mut zone = Box::new(Zone {
            name: name.as_bytes().to_vec(),
            shm_zone,
            dict: None,
            main: lmcf,
        });
        let zp: *mut Zone = &mut *zone;
        // SAFETY: `shm_zone` is live; `zp` stays put in its Box, owned by the main conf
        unsafe {
            (*shm_zone).data = zp.cast();
            (*shm_zone).init = Some(init_zone);
        }
        lmcf.shdicts.push(zone);
        let Some(vm) = vm::current() else {
            // SAFETY: `cf` is the configuration being parsed
            return Err(unsafe { conf_error(cf, "no Lua VM") });
        };
        // SAFETY: the VM's main state is not running; `zp` lives as long as the conf
        unsafe { crate::api::shdict::register(vm.main(), name.as_bytes(), zp) };
        Ok(())
    }
}

/// nginx's zone init: builds the store, or takes over the old cycle's store
/// when a reload keeps the zone (same name, size and tag).
unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls this with our zone, whose data is our Zone, and
        // `data` is the old cycle's Zone of the same zone (alive until the
        // new cycle is up), or null.
        unsafe { init_inner(shm_zone, data) }
    })
}

unsafe fn init_inner(shm_zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    // SAFETY: init_zone's caller: our zone, whose data is our Zone
    let zone = unsafe { &mut *((*shm_zone).data as *mut Zone) };
    // SAFETY: `data` is null or the old cycle's Zone, alive until the new cycle is up
    zone.dict = if let Some(old) = unsafe { (data as *const Zone).as_ref() }.and_then(|z| z.dict.clone()) {
        Some(old)
    // SAFETY: `shm_zone` is our live zone (init_zone's caller)
    } else if unsafe { (*shm_zone).shm.exists } != 0 {
        // SAFETY: the zone exists already, holding a store built by `create`
        unsafe { Dict::attach(&*shm_zone) }
    } else {
        // SAFETY: a fresh zone: its slab pool is initialised and used by nobody yet
        unsafe { Dict::create(&*shm_zone, &zone.name) }
    };
    if zone.dict.is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: `main` is the main conf that owns this Zone, alive through the cycle
    let lmcf = unsafe { &mut *zone.main };
    lmcf.shdicts_ready += 1;
    if lmcf.shdicts_ready == lmcf.shdicts.len() {
        // SAFETY: `shm_zone` is our live zone (init_zone's caller)
        let log = unsafe { (*shm_zone).shm.log };
        // SAFETY: every zone is ready: init_by_lua may use them all; the cycle is being initialised
        if let Err(e) = unsafe { crate::phase::init::run_code(lmcf) } {
            crate::glue::log::error(log, nginx_sys::NGX_LOG_ERR, e.as_bytes());
            return NGX_ERROR as ngx_int_t;
        }
    }
    NGX_OK as ngx_int_t
}
