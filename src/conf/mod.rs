//! Configuration data: the module's main and location structures, their
//! merge, their accessors and the code they hold. The directives that fill
//! them are in src/directives/.

pub mod access;
pub mod code;
pub mod shdict;
pub mod socket;

use std::cell::Cell;
use std::ffi::{c_int, c_void};

use ngx::http::{Merge, MergeConfigError};

use crate::lua::vm::Vm;

pub use access::{
    loc_conf, main_conf, main_conf_cf, main_conf_cycle, module, req_loc_conf, req_main_conf, try_loc_conf,
};
pub use code::{LuaCode, SetCode};

/// Builds a request's own VM from the configuration.
pub type VmFactory = fn(&MainConf) -> Result<Vm, String>;

/// `http {}`-level configuration. It owns the Lua VM of the configuration
/// cycle, so a reload builds a new VM and the old one goes with its cycle.
#[derive(Default)]
pub struct MainConf {
    pub vm: Option<Vm>,
    /// Builds the own VM of a request whose location has lua_code_cache
    /// off, as the cycle's was built (set once the http block is parsed).
    pub request_vm: Option<VmFactory>,
    pub package_path: Option<Vec<u8>>,
    pub package_cpath: Option<Vec<u8>>,
    pub init: Option<LuaCode>,
    pub init_worker: Option<LuaCode>,
    pub exit_worker: Option<LuaCode>,
    pub rewrite_no_postpone: bool,
    pub access_no_postpone: bool,
    /// Our rewrite/access handler was moved to the end of its phase in this
    /// cycle's phase engine (lua-nginx-module's
    /// `postponed_to_rewrite_phase_end`): done once, by the first request.
    pub rewrite_postponed: Cell<bool>,
    pub access_postponed: Cell<bool>,
    /// Which phase handlers postconfiguration must install.
    pub uses_server_rewrite: bool,
    pub uses_rewrite: bool,
    pub uses_access: bool,
    pub uses_log: bool,
    /// Some rewrite, access or content code may call ngx.location.capture:
    /// our filters then also act as lua-nginx-module's capture filter.
    pub uses_capture: bool,
    /// header_filter_by_lua* is configured (lua-nginx-module's header
    /// filter is then in the chain: its debug line is logged).
    pub uses_header_filter: bool,
    /// body_filter_by_lua* is configured (the same for the body filter).
    pub uses_body_filter: bool,
    pub malloc_trim: Option<usize>,
    pub thread_cache_max: Option<usize>,
    pub sa_restart: Option<bool>,
    pub max_pending_timers: Option<usize>,
    pub max_running_timers: Option<usize>,
    /// lua_shared_dict zones, and how many of them nginx has initialised.
    /// Boxed: nginx and the Lua VM keep pointers to each zone.
    #[allow(clippy::vec_box)]
    pub shdicts: Vec<Box<shdict::Zone>>,
    pub shdicts_ready: usize,
    pub regex_cache_max_entries: Option<usize>,
    pub regex_match_limit: Option<usize>,
    /// balancer_by_lua* code per upstream block (`ngx_http_upstream_srv_conf_t`).
    pub balancers: Vec<(*const c_void, LuaCode)>,
    /// The cycle being configured, for init_by_lua (which runs before
    /// nginx makes it `ngx_cycle`).
    pub cycle: *mut nginx_sys::ngx_cycle_t,
    /// `lua_capture_error_log`'s ring buffer, in the cycle's pool.
    pub capture_log: Option<std::ptr::NonNull<crate::glue::log_ring::LogRing>>,
    pub worker_thread_vm_pool_size: Option<usize>,
}

impl MainConf {
    /// The balancer code of an upstream block, if it has one.
    pub fn balancer(&self, uscf: *const nginx_sys::ngx_http_upstream_srv_conf_t) -> Option<&LuaCode> {
        self.balancers
            .iter()
            .find(|(u, _)| *u == uscf.cast())
            .map(|(_, c)| c)
    }
    /// lua_sa_restart (default on).
    pub fn sa_restart(&self) -> bool {
        self.sa_restart.unwrap_or(true)
    }
    pub fn malloc_trim(&self) -> usize {
        self.malloc_trim.unwrap_or(1000)
    }
    pub fn max_pending_timers(&self) -> usize {
        self.max_pending_timers.unwrap_or(1024)
    }
    pub fn max_running_timers(&self) -> usize {
        self.max_running_timers.unwrap_or(256)
    }
    pub fn regex_cache_max_entries(&self) -> usize {
        self.regex_cache_max_entries.unwrap_or(1024)
    }
    /// 0: PCRE2's default.
    pub fn regex_match_limit(&self) -> usize {
        self.regex_match_limit.unwrap_or(0)
    }
    /// How many VMs ngx.run_worker_thread may make per worker.
    pub fn worker_thread_vm_pool_size(&self) -> usize {
        self.worker_thread_vm_pool_size.unwrap_or(100)
    }
}

/// A directive whose value merges down from outer blocks.
pub type Flag = Option<bool>;

/// `location`-level configuration (also `http`, `server` and `if in location`).
#[derive(Default)]
pub struct LocConf {
    pub server_rewrite: Option<LuaCode>,
    pub rewrite: Option<LuaCode>,
    pub access: Option<LuaCode>,
    pub content: Option<LuaCode>,
    pub log: Option<LuaCode>,
    pub code_cache: Flag,
    pub check_client_abort: Flag,
    pub http10_buffering: Flag,
    pub use_default_type: Flag,
    pub transform_underscores: Flag,
    pub need_request_body: Flag,
    pub header_filter: Option<LuaCode>,
    pub body_filter: Option<LuaCode>,
    /// lua_capture_max_body_size: captured bodies past it are truncated (0: no limit).
    pub capture_max_body_size: Option<usize>,
    pub socket: socket::SocketConf,
    /// The TLS handshake's code (server level, inherited from http).
    pub ssl_client_hello: Option<LuaCode>,
    pub ssl_cert: Option<LuaCode>,
    pub ssl_sess_store: Option<LuaCode>,
    pub ssl_sess_fetch: Option<LuaCode>,
    /// The upstream handshake's code (location level, as `proxy_pass`).
    pub proxy_ssl_cert: Option<LuaCode>,
    pub proxy_ssl_verify: Option<LuaCode>,
    pub upstream_skip_openssl_default_verify: Flag,
}

fn inherit<T: Clone>(slot: &mut Option<T>, prev: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(prev);
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        inherit(&mut self.server_rewrite, &prev.server_rewrite);
        inherit(&mut self.rewrite, &prev.rewrite);
        inherit(&mut self.access, &prev.access);
        inherit(&mut self.log, &prev.log);
        // Inherited as lua-nginx-module inherits it: the handler is the
        // location's (nginx keeps it for an `if` block inside, whose own
        // configuration then needs the code); nested locations get no
        // handler of ours, so their copy is never run.
        inherit(&mut self.content, &prev.content);
        inherit(&mut self.code_cache, &prev.code_cache);
        inherit(&mut self.check_client_abort, &prev.check_client_abort);
        inherit(&mut self.http10_buffering, &prev.http10_buffering);
        inherit(&mut self.use_default_type, &prev.use_default_type);
        inherit(&mut self.transform_underscores, &prev.transform_underscores);
        inherit(&mut self.need_request_body, &prev.need_request_body);
        inherit(&mut self.header_filter, &prev.header_filter);
        inherit(&mut self.body_filter, &prev.body_filter);
        inherit(&mut self.capture_max_body_size, &prev.capture_max_body_size);
        self.socket.merge(&prev.socket);
        inherit(&mut self.ssl_client_hello, &prev.ssl_client_hello);
        inherit(&mut self.ssl_cert, &prev.ssl_cert);
        inherit(&mut self.ssl_sess_store, &prev.ssl_sess_store);
        inherit(&mut self.ssl_sess_fetch, &prev.ssl_sess_fetch);
        inherit(&mut self.proxy_ssl_cert, &prev.proxy_ssl_cert);
        inherit(&mut self.proxy_ssl_verify, &prev.proxy_ssl_verify);
        inherit(
            &mut self.upstream_skip_openssl_default_verify,
            &prev.upstream_skip_openssl_default_verify,
        );
        Ok(())
    }
}

impl LocConf {
    pub fn code_cache(&self) -> bool {
        self.code_cache.unwrap_or(true)
    }
    pub fn check_client_abort(&self) -> bool {
        self.check_client_abort.unwrap_or(false)
    }
    pub fn http10_buffering(&self) -> bool {
        self.http10_buffering.unwrap_or(true)
    }
    pub fn use_default_type(&self) -> bool {
        self.use_default_type.unwrap_or(true)
    }
    pub fn upstream_skip_openssl_default_verify(&self) -> bool {
        self.upstream_skip_openssl_default_verify.unwrap_or(false)
    }
}

/// Registry reference of a compiled chunk in the configuration's VM.
pub type FuncRef = c_int;
