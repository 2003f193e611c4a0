//! What the phases before content (server_rewrite_by_lua, rewrite_by_lua,
//! access_by_lua) share: running at the end of their phase, waiting without
//! blocking, and re-entry once the code has ended.

use std::cell::Cell;

use nginx_sys::{
    NGX_HTTP_OK, ngx_http_core_run_phases, ngx_http_finalize_request, ngx_http_phase_handler_t,
    ngx_http_request_empty_handler, ngx_http_request_t, ngx_int_t,
};
use ngx::core::Status;
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule, Request};

use super::{error_rc, exec, exit_rc};
use crate::conf::LuaCode;
use crate::runtime::context::{self, Context};
use crate::runtime::ctx::{OnFinish, Outcome, PhaseRun, RequestCtx};

/// Moves the running handler to the end of its phase, once per worker, as
/// lua-nginx-module does: so that `set` and other modules' rewrite/access
/// handlers of the location run before the Lua code. Returns true when the
/// handler was moved and nginx must call the phase again. `tail` is how
/// far before the handlers' `next` the phase's last handler is: 1, or 2 in
/// the access phase, whose `next` also skips the post-access slot.
///
/// # Safety
/// `r` must be live and inside the phase engine.
pub unsafe fn postpone(r: *mut ngx_http_request_t, done: &Cell<bool>, tail: usize) -> bool {
    if done.replace(true) {
        return false;
    }
    // SAFETY: `r` is a live request (caller's contract)
    let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(unsafe { &*r }) else {
        return false;
    };
    let ph: *mut ngx_http_phase_handler_t = cmcf.phase_engine.handlers;
    // SAFETY: `r` is a live request (callers' duty)
    let cur = unsafe { ph.add((*r).phase_handler as usize) };
    // SAFETY: `cur.next` indexes the phase engine's handler array, `tail` entries before it
    let last = unsafe { ph.add((*cur).next - tail) };
    if cur >= last {
        return false;
    }
    // SAFETY: `cur` points into the live handler array
    let tmp = unsafe { std::ptr::read(cur) };
    // SAFETY: `cur` < `last`, both inside the live handler array
    unsafe {
        std::ptr::copy(cur.add(1), cur, last.offset_from(cur) as usize);
        std::ptr::write(last, tmp);
    }
    // Let nginx call the handler now in our place.
    // SAFETY: `r` is a live request (callers' duty)
    unsafe {
        (*r).phase_handler -= 1;
    }
    true
}

/// Runs (or re-enters) the code of an early phase.
pub fn handle(
    req: &mut Request,
    code: &LuaCode,
    phase: Context,
    state: fn(&mut RequestCtx) -> &mut PhaseRun,
    on_finish: OnFinish,
) -> Status {
    let Some(ctx) = RequestCtx::get_or_create(req) else {
        return Status::NGX_ERROR;
    };
    let r = ctx.r;
    let _vm = ctx.enter_vm();
    match *state(ctx) {
        PhaseRun::Finished(o) => {
            *state(ctx) = PhaseRun::NotStarted;
            return finish(ctx, o, phase);
        }
        // Woken by an unrelated event while the code waits.
        PhaseRun::Running => return Status::NGX_DONE,
        PhaseRun::NotStarted => {}
    }
    // Waits may install their own write handler; none must run the phases
    // again while the code waits.
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    let phases_handler = unsafe { (*r).write_event_handler.replace(ngx_http_request_empty_handler) };
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    unsafe { crate::runtime::client_abort::watch(r) };
    match super::run(ctx, code, phase, on_finish) {
        Outcome::Wait => {
            *state(ctx) = PhaseRun::Running;
            // SAFETY: ctx.r is live (RequestCtx's invariant); its main request outlives it.
            unsafe { (*(*r).main).set_count((*(*r).main).count() + 1) };
            Status::NGX_DONE
        }
        o => {
            // SAFETY: ctx.r is live (RequestCtx's invariant).
            unsafe {
                (*r).write_event_handler = phases_handler;
            }
            finish(ctx, o, phase)
        }
    }
}

/// The phase handler's rc once the code ended.
fn finish(ctx: &mut RequestCtx, outcome: Outcome, phase: Context) -> Status {
    let r = ctx.r;
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    let jumped = phase.is(context::REWRITE.or(context::SERVER_REWRITE)) && unsafe { (*r).uri_changed() } != 0;
    match outcome {
        Outcome::Done | Outcome::Exit(0) if jumped => {
            // ngx.req.set_uri(uri, true): nginx finds the location again.
            ctx.restart();
            Status::NGX_DECLINED
        }
        Outcome::Done => go_on(ctx, phase),
        Outcome::Exit(code) if code == Status::NGX_OK.0 => go_on(ctx, phase),
        Outcome::Exit(code) => Status(exit_rc(ctx, code, false)),
        Outcome::Exec => {
            let rc = exec(ctx);
            if rc == Status::NGX_DONE.0 {
                // Balances the count taken by the internal redirect: the
                // rewrite/access checkers do not finalize on NGX_DONE.
                // SAFETY: r is still held by that count.
                unsafe { ngx_http_finalize_request(r, Status::NGX_DONE.into()) };
            }
            Status(rc)
        }
        Outcome::Error | Outcome::Wait => Status(error_rc(ctx)),
    }
}

/// Code that ended without finishing the request lets the next phases run,
/// unless it sent the response header: later phases could produce a second
/// response, so lua-nginx-module ends the response there (200). Access code
/// that ended grants access (NGX_OK: with `satisfy any` no other access
/// module needs to), rewrite code declines.
fn go_on(ctx: &mut RequestCtx, phase: Context) -> Status {
    // SAFETY: ctx.r is live (RequestCtx's invariant).
    if unsafe { (*ctx.r).header_sent() } == 0 {
        return if phase == context::ACCESS {
            Status::NGX_OK
        } else {
            Status::NGX_DECLINED
        };
    }
    let rc = crate::runtime::output::send_eof(ctx);
    if rc == Status::NGX_ERROR.0 || rc > Status::NGX_OK.0 {
        return Status(rc);
    }
    Status(NGX_HTTP_OK as ngx_int_t)
}

/// The code ended after waiting: record how, release our hold on the
/// request and let nginx run the phases again (re-entering `handle`).
pub fn finish_async(ctx: &mut RequestCtx, outcome: Outcome, state: fn(&mut RequestCtx) -> &mut PhaseRun) {
    let r = ctx.r;
    *state(ctx) = PhaseRun::Finished(outcome);
    // SAFETY: r is live, held by the count taken when the code first waited.
    unsafe {
        (*r).write_event_handler = Some(ngx_http_core_run_phases);
        ngx_http_finalize_request(r, Status::NGX_DONE.into());
        ngx_http_core_run_phases(r);
    }
}
