//! Running code that may not wait (set, log, filters, init), with the
//! current request and phase set for the API's checks.

use std::ffi::c_int;

use super::context::{Context, ContextGuard};
use super::ctx::{CurrentGuard, RequestCtx};
use super::scheduler::call_sync;
use crate::lua::lua_State;

/// Calls `func` for a request; `nresults` values are left on the returned
/// state for the caller to pop.
///
/// # Safety
/// The worker's VM must be set; `nargs` values are pushed on its main state.
pub unsafe fn in_request(
    ctx: &mut RequestCtx,
    phase: Context,
    func: c_int,
    nargs: c_int,
    nresults: c_int,
) -> Result<*mut lua_State, String> {
    let _c = CurrentGuard::enter(ctx);
    let _p = ContextGuard::enter(phase);
    // SAFETY: the worker's VM is set and `nargs` values are pushed (caller's contract)
    unsafe { call_sync(func, nargs, nresults) }
}

/// Calls `func` outside any request (init, init_worker, exit_worker).
///
/// # Safety
/// The VM must be set.
pub unsafe fn outside_request(phase: Context, func: c_int) -> Result<(), String> {
    let _c = CurrentGuard::enter(std::ptr::null_mut());
    let _p = ContextGuard::enter(phase);
    // SAFETY: the VM is set (caller's contract); no arguments are pushed
    (unsafe { call_sync(func, 0, 0) }).map(|_| ())
}
