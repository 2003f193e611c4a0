//! A wait that resumes its thread after a delay (ngx.sleep, bare yields).

use std::ffi::c_void;
use std::mem::MaybeUninit;

use nginx_sys::{ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_msec_t};

use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use crate::lua::lua_State;

pub struct TimerWait {
    ev: ngx_event_t,
    ctx: *mut RequestCtx,
    co: *mut lua_State,
}

impl Wait for TimerWait {}

impl Drop for TimerWait {
    fn drop(&mut self) {
        if self.ev.timer_set() != 0 {
            crate::glue::log::log_debug_http!(self.ev.log, "lua clean up the timer for pending ngx.sleep");
            // SAFETY: the event is in nginx's timer tree; remove it before
            // its memory goes.
            unsafe { ngx_del_timer(&mut self.ev) };
        }
    }
}

/// Arms a timer that resumes `co` of `ctx` after `ms` milliseconds. The
/// wait keeps `ctx` as a raw pointer: it is dropped (deleting the timer)
/// before the ctx goes.
pub fn arm(ctx: &mut RequestCtx, co: *mut lua_State, ms: ngx_msec_t) -> Box<TimerWait> {
    // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
    let ev = unsafe { MaybeUninit::<ngx_event_t>::zeroed().assume_init() };
    let log = ctx.log();
    let mut w = Box::new(TimerWait { ev, ctx, co });
    let data: *mut TimerWait = &mut *w;
    w.ev.data = data.cast::<c_void>();
    w.ev.handler = Some(on_timer);
    // The request's connection log outlives the wait.
    w.ev.log = log;
    // SAFETY: the event lives in the Box, which the thread's `wait` keeps
    // until the event fired or was deleted in Drop.
    unsafe { ngx_add_timer(&mut w.ev, ms) };
    w
}

unsafe extern "C" fn on_timer(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data was set in arm() to the TimerWait holding this event;
        // the wait is still owned by its thread (a freed ctx deletes the
        // timer).
        unsafe {
            let w = (*ev).data as *mut TimerWait;
            let (ctx, co) = ((*w).ctx, (*w).co);
            let r = (*ctx).r;
            crate::glue::log::log_debug_http!(
                (*ev).log,
                "lua sleep timer expired: \"{}?{}\"",
                crate::glue::log::Lossy((*r).uri.as_bytes()),
                crate::glue::log::Lossy((*r).args.as_bytes())
            );
            // Detach the wait before resuming: the thread may wait again,
            // and the request may be freed by the time wake() returns.
            let mine = (*ctx).take_wait(co);
            wake(ctx, co, 0);
            drop(mine);
        }
    })
}
