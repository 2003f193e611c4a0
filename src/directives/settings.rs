//! The on|off, path and count directives of the main and location levels:
//! `lua_code_cache`, `lua_check_client_abort`, `lua_http10_buffering`,
//! `lua_use_default_type`, `lua_transform_underscores_in_response_headers`,
//! `rewrite_by_lua_no_postpone`, `access_by_lua_no_postpone`,
//! `lua_package_path`, `lua_package_cpath`, `lua_malloc_trim`,
//! `lua_max_pending_timers`, `lua_max_running_timers` and
//! `lua_worker_thread_vm_pool_size`.

use nginx_sys::ngx_command_t;

use super::args::{arg, count, flag, set_once};
use super::{ANY_LOC, FLAG, HTTP, LOC_CONF, MAIN_CONF, TAKE1, cmd, conf_setters};
use crate::conf::{LocConf, MainConf};

conf_setters! {
    fn set_code_cache(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let on = unsafe { flag(cf, cmd) }?;
        set_once(&mut l.code_cache, on)?;
        if !on {
            ngx::ngx_conf_log_error!(
                nginx_sys::NGX_LOG_ALERT,
                cf,
                "lua_code_cache is off; this will hurt performance"
            );
        }
        Ok(())
    }
    fn set_check_client_abort(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.check_client_abort, unsafe { flag(cf, cmd) }?)
    }
    fn set_http10_buffering(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.http10_buffering, unsafe { flag(cf, cmd) }?)
    }
    fn set_use_default_type(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.use_default_type, unsafe { flag(cf, cmd) }?)
    }
    fn set_transform_underscores(cf, cmd, l: LocConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut l.transform_underscores, unsafe { flag(cf, cmd) }?)
    }
    /// The `*_no_postpone` flags take their last value (no "is duplicate").
    fn set_rewrite_no_postpone(cf, cmd, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        m.rewrite_no_postpone = unsafe { flag(cf, cmd) }?;
        Ok(())
    }
    fn set_access_no_postpone(cf, cmd, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        m.access_no_postpone = unsafe { flag(cf, cmd) }?;
        Ok(())
    }
    fn set_package_path(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.package_path, unsafe { arg(cf, 1) }.to_vec())
    }
    fn set_package_cpath(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.package_cpath, unsafe { arg(cf, 1) }.to_vec())
    }
    fn set_malloc_trim(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.malloc_trim, unsafe { count(cf) }?)
    }
    fn set_max_pending_timers(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.max_pending_timers, unsafe { count(cf) }?)
    }
    fn set_max_running_timers(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.max_running_timers, unsafe { count(cf) }?)
    }
    fn set_worker_thread_vm_pool_size(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.worker_thread_vm_pool_size, unsafe { count(cf) }?)
    }
}

pub const COMMANDS: [ngx_command_t; 13] = [
    cmd(c"lua_code_cache", ANY_LOC | FLAG, set_code_cache, LOC_CONF),
    cmd(
        c"lua_check_client_abort",
        ANY_LOC | FLAG,
        set_check_client_abort,
        LOC_CONF,
    ),
    cmd(
        c"lua_http10_buffering",
        ANY_LOC | FLAG,
        set_http10_buffering,
        LOC_CONF,
    ),
    cmd(
        c"lua_use_default_type",
        ANY_LOC | FLAG,
        set_use_default_type,
        LOC_CONF,
    ),
    cmd(
        c"lua_transform_underscores_in_response_headers",
        ANY_LOC | FLAG,
        set_transform_underscores,
        LOC_CONF,
    ),
    cmd(
        c"rewrite_by_lua_no_postpone",
        HTTP | FLAG,
        set_rewrite_no_postpone,
        MAIN_CONF,
    ),
    cmd(
        c"access_by_lua_no_postpone",
        HTTP | FLAG,
        set_access_no_postpone,
        MAIN_CONF,
    ),
    cmd(c"lua_package_path", HTTP | TAKE1, set_package_path, MAIN_CONF),
    cmd(c"lua_package_cpath", HTTP | TAKE1, set_package_cpath, MAIN_CONF),
    cmd(c"lua_malloc_trim", HTTP | TAKE1, set_malloc_trim, MAIN_CONF),
    cmd(
        c"lua_max_pending_timers",
        HTTP | TAKE1,
        set_max_pending_timers,
        MAIN_CONF,
    ),
    cmd(
        c"lua_max_running_timers",
        HTTP | TAKE1,
        set_max_running_timers,
        MAIN_CONF,
    ),
    cmd(
        c"lua_worker_thread_vm_pool_size",
        HTTP | TAKE1,
        set_worker_thread_vm_pool_size,
        MAIN_CONF,
    ),
];
