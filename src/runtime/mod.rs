//! The Lua VM, the per-request context, the coroutine scheduler and the
//! phase-permission checks.

pub mod capture;
pub mod ctx;
pub mod lua;
pub mod output;
pub mod phase;
pub mod run_sync;
pub mod scheduler;
pub mod timer_wait;
pub mod vm;
pub mod write_wait;
