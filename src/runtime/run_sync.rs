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
    let r = ctx.r;
    // SAFETY: `ctx` is the caller's live ctx, not used here while the code runs
    let _c = unsafe { CurrentGuard::enter(ctx) };
    let _p = ContextGuard::enter(phase);
    // The code runs on the main state: it is the request's while it runs
    // (thread.exdata, as lua-nginx-module sets it), as it was after.
    let main = crate::lua::vm::current().map(|vm| vm.main());
    // SAFETY: `m` is the current VM's main state
    let saved = main.map(|m| (m, unsafe { crate::lua::exdata(m) }));
    if let Some(m) = main {
        // SAFETY: `m` is the current VM's main state
        unsafe { crate::lua::set_exdata(m, r.cast()) };
    }
    // SAFETY: the VM is set and the `nargs` arguments pushed (caller's contract)
    let res = unsafe { call_sync(func, nargs, nresults) };
    if let Some((m, p)) = saved {
        // SAFETY: `m` is the current VM's main state
        unsafe { crate::lua::set_exdata(m, p) };
    }
    res
}

/// Calls `func` outside any request (init, init_worker, exit_worker).
///
/// # Safety
/// The VM must be set.
pub unsafe fn outside_request(phase: Context, func: c_int) -> Result<(), String> {
    // SAFETY: no request
    let _c = unsafe { CurrentGuard::enter(std::ptr::null_mut()) };
    let _p = ContextGuard::enter(phase);
    // SAFETY: the VM is set (caller's contract); no arguments are pushed
    (unsafe { call_sync(func, 0, 0) }).map(|_| ())
}
