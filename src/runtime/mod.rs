//! The Lua VM, the per-request context, the coroutine scheduler and the
//! phase-permission checks.

pub mod body_wait;
pub mod capture;
pub mod chunked;
pub mod client_abort;
pub mod ctx;
pub mod lua;
pub mod lua_alloc;
pub mod need_body;
pub mod output;
pub mod phase;
pub mod regex_cache;
pub mod run_sync;
pub mod scheduler;
pub mod semaphore;
pub mod socket_pool;
pub mod tcp_sock;
pub mod tcp_tls;
pub mod timer_wait;
pub mod traceback;
pub mod vm;
pub mod write_wait;
