//! Which kind of Lua code is running, and the API permission checks that
//! depend on it.

use std::cell::Cell;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    None,
    Init,
    InitWorker,
    Set,
    ServerRewrite,
    Rewrite,
    Access,
    Content,
    Log,
    HeaderFilter,
    BodyFilter,
    Timer,
    ExitWorker,
    Balancer,
}

impl Phase {
    /// The name `ngx.get_phase()` returns.
    pub fn name(self) -> &'static str {
        match self {
            Phase::None => "unknown",
            Phase::Init => "init",
            Phase::InitWorker => "init_worker",
            Phase::Set => "set",
            Phase::ServerRewrite => "server_rewrite",
            Phase::Rewrite => "rewrite",
            Phase::Access => "access",
            Phase::Content => "content",
            Phase::Log => "log",
            Phase::HeaderFilter => "header_filter",
            Phase::BodyFilter => "body_filter",
            Phase::Timer => "timer",
            Phase::ExitWorker => "exit_worker",
            Phase::Balancer => "balancer",
        }
    }

    /// The context name in lua-nginx-module's "API disabled" errors.
    pub fn context_name(self) -> &'static str {
        match self {
            Phase::None => "(unknown)",
            Phase::Init => "init_by_lua*",
            Phase::InitWorker => "init_worker_by_lua*",
            Phase::Set => "set_by_lua*",
            Phase::ServerRewrite => "server_rewrite_by_lua*",
            Phase::Rewrite => "rewrite_by_lua*",
            Phase::Access => "access_by_lua*",
            Phase::Content => "content_by_lua*",
            Phase::Log => "log_by_lua*",
            Phase::HeaderFilter => "header_filter_by_lua*",
            Phase::BodyFilter => "body_filter_by_lua*",
            Phase::Timer => "ngx.timer",
            Phase::ExitWorker => "exit_worker_by_lua*",
            Phase::Balancer => "balancer_by_lua*",
        }
    }

    /// Phases that run on behalf of a client request.
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Phase::Set
                | Phase::ServerRewrite
                | Phase::Rewrite
                | Phase::Access
                | Phase::Content
                | Phase::Log
                | Phase::HeaderFilter
                | Phase::BodyFilter
                | Phase::Balancer
        )
    }
}

thread_local! {
    static CURRENT: Cell<Phase> = const { Cell::new(Phase::None) };
}

pub fn current() -> Phase {
    CURRENT.with(|c| c.get())
}

/// Sets the running phase until the guard drops (phases nest: a header
/// filter can run inside content code's ngx.say).
pub struct PhaseGuard(Phase);

impl PhaseGuard {
    pub fn enter(p: Phase) -> PhaseGuard {
        PhaseGuard(CURRENT.with(|c| c.replace(p)))
    }
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// lua-nginx-module's error for an API call outside its phases.
pub fn check(allowed: &[Phase]) -> Result<Phase, String> {
    let p = current();
    if allowed.contains(&p) {
        Ok(p)
    } else {
        Err(format!("API disabled in the context of {}", p.context_name()))
    }
}

pub const REQUEST_YIELDABLE: &[Phase] = &[
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
];
pub const YIELDABLE: &[Phase] = &[
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
    Phase::Timer,
];

/// Request phases before the response body goes out (filters included).
pub const REQUEST_NO_LOG: &[Phase] = &[
    Phase::Set,
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
    Phase::HeaderFilter,
    Phase::BodyFilter,
];

/// Every request phase, log included.
pub const REQUEST_ALL: &[Phase] = &[
    Phase::Set,
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
    Phase::HeaderFilter,
    Phase::BodyFilter,
    Phase::Log,
];
