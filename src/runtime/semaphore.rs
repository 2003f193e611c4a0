//! Worker-local semaphores (`ngx.semaphore`): a resource count, the FIFO
//! queue of waiting threads, and the posted event that wakes them.
//!
//! A `post` never resumes anybody itself: it posts the semaphore's event, and
//! nginx runs it after the current handler, where each waiter at the head of
//! the queue gets a resource and is resumed through the scheduler. A waiter
//! is a `SemaWait` owned by its thread; dropping it (the request went away,
//! the thread was killed) takes it off the queue, so no resource goes to a
//! thread that is gone.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr::addr_of_mut;
use std::rc::Rc;

use nginx_sys::{
    ngx_add_timer, ngx_del_timer, ngx_delete_posted_event, ngx_event_t, ngx_msec_t, ngx_post_event,
    ngx_posted_events,
};

use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use crate::glue::log::cycle_log;
use crate::lua::{ffi, lua_State, push_cstr};

pub struct Semaphore {
    resources: Cell<i64>,
    queue: RefCell<VecDeque<Rc<Waiter>>>,
    /// Posted by `post` while threads wait; its handler hands out resources.
    wake_ev: UnsafeCell<ngx_event_t>,
}

/// A thread in the queue.
struct Waiter {
    ctx: *mut RequestCtx,
    co: *mut lua_State,
}

impl Semaphore {
    pub fn new(resources: i64) -> Rc<Semaphore> {
        // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
        let ev = unsafe { MaybeUninit::<ngx_event_t>::zeroed().assume_init() };
        let sema = Rc::new(Semaphore {
            resources: Cell::new(resources),
            queue: RefCell::new(VecDeque::new()),
            wake_ev: UnsafeCell::new(ev),
        });
        // SAFETY: the event lives inside the Rc allocation, which does not
        // move; Drop removes it from the posted queue before it goes.
        unsafe {
            let ev = sema.wake_ev.get();
            (*ev).data = Rc::as_ptr(&sema) as *mut c_void;
            (*ev).handler = Some(on_wake);
        }
        sema
    }

    /// Resources available, minus the number of waiting threads.
    pub fn count(&self) -> i64 {
        self.resources.get() - self.queue.borrow().len() as i64
    }

    /// Adds `n` resources; queued threads get them once the running code
    /// has returned to nginx.
    pub fn post(&self, n: i64) {
        self.resources.set(self.resources.get().saturating_add(n));
        if !self.queue.borrow().is_empty() {
            let ev = self.wake_ev.get();
            // SAFETY: the event is ours and stays valid while posted (see
            // Drop); ngx_posted_events is the worker's posted queue. The
            // cycle log outlives the event (a reload starts new workers).
            unsafe {
                (*ev).log = cycle_log();
                ngx_post_event(ev, addr_of_mut!(ngx_posted_events));
            }
        }
    }

    /// Takes a resource at once if nobody queues ahead of the caller.
    pub fn try_take(&self) -> bool {
        if self.queue.borrow().is_empty() && self.resources.get() > 0 {
            self.resources.set(self.resources.get() - 1);
            true
        } else {
            false
        }
    }

    /// Queues thread `co` of `ctx` for at most `ms` milliseconds; the
    /// returned wait is stored on the thread and resumes it with
    /// `true, nil` or `false, "timeout"`.
    pub fn enqueue(
        self: &Rc<Self>,
        ctx: *mut RequestCtx,
        co: *mut lua_State,
        ms: ngx_msec_t,
    ) -> Box<SemaWait> {
        let me = Rc::new(Waiter { ctx, co });
        self.queue.borrow_mut().push_back(me.clone());
        // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
        let timer = unsafe { MaybeUninit::<ngx_event_t>::zeroed().assume_init() };
        let mut w = Box::new(SemaWait {
            sema: self.clone(),
            me,
            timer,
        });
        let data: *mut SemaWait = &mut *w;
        w.timer.data = data.cast::<c_void>();
        w.timer.handler = Some(on_timeout);
        // Timers have fake requests: rely on the cycle's log, not a client
        // connection's.
        w.timer.log = cycle_log();
        // SAFETY: the event lives in the Box, which the thread keeps until
        // the timer fired or Drop deleted it.
        unsafe { ngx_add_timer(&mut w.timer, ms) };
        w
    }

    fn remove(&self, w: &Rc<Waiter>) {
        self.queue.borrow_mut().retain(|q| !Rc::ptr_eq(q, w));
    }

    /// The head of the queue with a resource granted to it, if both exist.
    fn grant_next(&self) -> Option<Rc<Waiter>> {
        if self.resources.get() <= 0 {
            return None;
        }
        let w = self.queue.borrow_mut().pop_front()?;
        self.resources.set(self.resources.get() - 1);
        Some(w)
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        let ev = self.wake_ev.get_mut();
        if ev.posted() != 0 {
            // SAFETY: the event is in the posted queue; unlink it before
            // its memory goes.
            unsafe { ngx_delete_posted_event(ev) };
        }
    }
}

/// A thread waiting on a semaphore; it keeps the semaphore alive.
pub struct SemaWait {
    sema: Rc<Semaphore>,
    me: Rc<Waiter>,
    timer: ngx_event_t,
}

impl Wait for SemaWait {}

impl Drop for SemaWait {
    fn drop(&mut self) {
        if self.timer.timer_set() != 0 {
            // SAFETY: the event is in nginx's timer tree; remove it before
            // its memory goes.
            unsafe { ngx_del_timer(&mut self.timer) };
        }
        self.sema.remove(&self.me);
    }
}

unsafe extern "C" fn on_wake(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data is the semaphore owning this event; a posted event
        // belongs to a live semaphore (Drop unlinks it).
        unsafe { wake_waiters((*ev).data as *const Semaphore) }
    })
}

unsafe fn wake_waiters(sema: *const Semaphore) {
    // Our own reference: the code we resume may drop the last Lua one.
    // SAFETY: `sema` comes from a live Rc (the event's semaphore is alive while its timer is armed)
    unsafe { Rc::increment_strong_count(sema) };
    // SAFETY: balances the increment above: this Rc owns that count
    let sema = unsafe { Rc::from_raw(sema) };
    while let Some(w) = sema.grant_next() {
        // A queued waiter's thread and ctx are live: dropping either drops
        // the SemaWait, which takes it off the queue.
        let (ctx, co) = (w.ctx, w.co);
        // SAFETY: a queued waiter's ctx is live (dropping it drops the wait, which leaves the queue)
        let Some(mine) = (unsafe { (*ctx).take_wait(co) }) else {
            sema.resources.set(sema.resources.get() + 1);
            continue;
        };
        // Its timer goes; its queue entry is gone already.
        drop(mine);
        // SAFETY: `co` is the waiter's live thread, suspended on this wait
        unsafe {
            ffi::lua_pushboolean(co, 1);
            ffi::lua_pushnil(co);
            wake(ctx, co, 2);
        }
    }
}

unsafe extern "C" fn on_timeout(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: data is the SemaWait holding this event, still owned by
        // its thread (a dropped wait deletes its timer).
        unsafe { timed_out((*ev).data as *mut SemaWait) }
    })
}

unsafe fn timed_out(w: *mut SemaWait) {
    let (ctx, co) = {
        // SAFETY: the timer's data is the SemaWait holding this event, still owned by its thread
        let w = unsafe { &*w };
        w.sema.remove(&w.me);
        (w.me.ctx, w.me.co)
    };
    // Keep the wait (and the event being handled) until after the resume:
    // the request may be freed by then.
    // SAFETY: the waiter's ctx is live while its wait (this event's owner) exists
    let mine = unsafe { (*ctx).take_wait(co) };
    if mine.is_none() {
        return;
    }
    // SAFETY: `co` is a live Lua thread of ours (callers' duty)
    unsafe {
        ffi::lua_pushboolean(co, 0);
        push_cstr(co, c"timeout");
        wake(ctx, co, 2);
    }
    drop(mine);
}
