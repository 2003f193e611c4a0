//! A wait that resumes its thread after a delay (ngx.sleep, bare yields).
//!
//! The timer's event may not move while it is armed, and the record of the
//! thread that sleeps does move (within `RequestCtx::threads`). So the event
//! lives in a [`Slot`] the record keeps for its whole life: memory taken at
//! the thread's first sleep from a per-process list of spare events and
//! given back when the record goes, so that a sleep allocates nothing
//! (lua-nginx-module likewise keeps the event in its per-coroutine ctx and
//! reuses that ctx). The wait the thread holds is the empty marker
//! [`TimerWait`]; the slot deletes a pending timer when the record goes
//! ([`Slot`]'s Drop) or when the scheduler drops the wait before the timer
//! fired ([`Slot::disarm`]). A timer that fires for a thread no longer
//! holding the marker wakes nothing.

use std::cell::Cell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr;

use nginx_sys::{ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_log_t, ngx_msec_t};

use super::ctx::RequestCtx;
use super::scheduler::{LuaThread, Wait, wake_suspended};
use crate::lua::lua_State;

/// The event of a sleeping thread and whom it wakes.
struct Event {
    ev: ngx_event_t,
    ctx: *mut RequestCtx,
    co: *mut lua_State,
    /// The next spare event, while this one is spare.
    next: *mut Event,
}

/// How many spare events a process keeps (more are freed): enough for the
/// threads that sleep at once in ordinary traffic.
const SPARE_MAX: u32 = 64;

// A thread-local, not a `loop_local!`: it holds heap memory, and a static
// of this library is unmapped when nginx unloads the module at exit, which
// valgrind's leak check (scripts/test.sh) then reports as lost; a
// thread-local's block stays reachable.
thread_local! {
    // Per-process scratch memory: the spare events (a list through `next`)
    // and their count. Not a state of a VM: plain memory, serving the
    // threads of whatever VM.
    static SPARE: Cell<(*mut Event, u32)> = const { Cell::new((ptr::null_mut(), 0)) };
}

/// A thread record's timer event, allocated at its first sleep.
pub struct Slot(*mut Event);

impl Slot {
    pub const fn new() -> Slot {
        Slot(ptr::null_mut())
    }

    /// Deletes the timer if it is pending.
    pub fn disarm(&mut self) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: a non-null slot points to the event this slot owns.
        let ev = unsafe { &mut (*self.0).ev };
        if ev.timer_set() != 0 {
            crate::glue::log::log_debug_http!(ev.log, "lua clean up the timer for pending ngx.sleep");
            // SAFETY: the event is in nginx's timer tree; it leaves it
            // before it may be rewritten or reused.
            unsafe { ngx_del_timer(ev) };
        }
    }

    /// The slot's event, taken from the spare list (or allocated) at the
    /// first use.
    fn event(&mut self) -> *mut Event {
        if self.0.is_null() {
            let (head, n) = SPARE.get();
            self.0 = if head.is_null() {
                Box::into_raw(Box::new(Event {
                    // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
                    ev: unsafe { MaybeUninit::<ngx_event_t>::zeroed().assume_init() },
                    ctx: ptr::null_mut(),
                    co: ptr::null_mut(),
                    next: ptr::null_mut(),
                }))
            } else {
                // SAFETY: a spare event is owned by the list; taking it off
                // makes it this slot's.
                SPARE.set((unsafe { (*head).next }, n - 1));
                head
            };
        }
        self.0
    }
}

impl Default for Slot {
    fn default() -> Slot {
        Slot::new()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0.is_null() {
            return;
        }
        self.disarm();
        let (head, n) = SPARE.get();
        if n < SPARE_MAX {
            // SAFETY: the event is this slot's and no longer in the timer
            // tree; the list owns it from now on.
            unsafe { (*self.0).next = head };
            SPARE.set((self.0, n + 1));
        } else {
            // SAFETY: the event came from Box::into_raw in `event` and is
            // out of the timer tree; nothing else points to it.
            drop(unsafe { Box::from_raw(self.0) });
        }
    }
}

/// The wait of a sleeping thread: a marker, the event is in the thread's
/// [`Slot`].
pub struct TimerWait;

impl Wait for TimerWait {
    fn is_timer(&self) -> bool {
        true
    }
}

/// Arms a timer that resumes thread `t` of `ctx` after `ms` milliseconds
/// and records the wait on `t`.
pub fn arm(t: &mut LuaThread, ctx: *mut RequestCtx, log: *mut ngx_log_t, ms: ngx_msec_t) {
    let e = t.timer.event();
    // SAFETY: `e` is the event of `t`'s slot, which stays with the record
    // (deleting a pending timer before it goes); out of the timer tree it
    // may be rewritten. `ctx` owns `t`, so it outlives the armed timer.
    unsafe {
        if (*e).ev.timer_set() != 0 {
            ngx_del_timer(&mut (*e).ev);
        }
        (*e).ev = MaybeUninit::<ngx_event_t>::zeroed().assume_init();
        (*e).ev.data = e.cast::<c_void>();
        (*e).ev.handler = Some(on_timer);
        // The request's connection log outlives the wait.
        (*e).ev.log = log;
        (*e).ctx = ctx;
        (*e).co = t.co;
        ngx_add_timer(&mut (*e).ev, ms);
    }
    t.wait = Some(super::scheduler::Pending::of(TimerWait));
}

unsafe extern "C" fn on_timer(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data was set in arm() to the Event holding this event; its
        // slot's record, and so the ctx, live while the timer is pending (a
        // record that goes deletes the timer).
        unsafe {
            let e = (*ev).data as *mut Event;
            let (ctx, co) = ((*e).ctx, (*e).co);
            let r = (*ctx).r;
            crate::glue::log::log_debug_http!(
                (*ev).log,
                "lua sleep timer expired: \"{}?{}\"",
                crate::glue::log::Lossy((*r).uri.as_bytes()),
                crate::glue::log::Lossy((*r).args.as_bytes())
            );
            let Some(t) = (*ctx).threads.iter_mut().find(|t| t.co == co) else {
                return;
            };
            if !t.wait.as_ref().is_some_and(|w| w.is_timer()) {
                return;
            }
            // Off before resuming: the thread may wait again, and the
            // request may be freed by the time wake() returns.
            t.wait = None;
            // It yielded with the marker (a thread that could not yield
            // dropped it), so it is suspended.
            wake_suspended(ctx, co, 0);
        }
    })
}
