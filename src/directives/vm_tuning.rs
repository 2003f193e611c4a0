//! Directives of lua-nginx-module that tune its machinery: the coroutine
//! cache, SA_RESTART on the workers' signals, and the deprecated
//! lua_load_resty_core (our API is built in).

use nginx_sys::ngx_command_t;

use super::args::{count, flag, set_once};
use super::{FLAG, HTTP, MAIN_CONF, TAKE1, cmd, conf_setters};
use crate::conf::MainConf;

conf_setters! {
    fn load_resty_core(cf, _, _: MainConf) {
        ngx::ngx_conf_log_error!(
            nginx_sys::NGX_LOG_WARN,
            cf,
            "lua_load_resty_core is deprecated (the lua-resty-core library is required since ngx_lua v0.10.16)"
        );
        Ok(())
    }
    fn thread_cache(cf, _, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        let n = unsafe { count(cf) }?;
        if let Some(vm) = m.vm.as_ref() {
            vm.set_idle_threads_max(n);
        }
        set_once(&mut m.thread_cache_max, n)
    }
    fn sa_restart(cf, cmd, m: MainConf) {
        // SAFETY: nginx calls setters with the conf being parsed and the arguments its command table checked
        set_once(&mut m.sa_restart, unsafe { flag(cf, cmd) }?)
    }
}

pub const COMMANDS: [ngx_command_t; 3] = [
    cmd(c"lua_load_resty_core", HTTP | FLAG, load_resty_core, MAIN_CONF),
    cmd(
        c"lua_thread_cache_max_entries",
        HTTP | TAKE1,
        thread_cache,
        MAIN_CONF,
    ),
    cmd(c"lua_sa_restart", HTTP | FLAG, sa_restart, MAIN_CONF),
];
