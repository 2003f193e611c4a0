//! The timer engine: armed `ngx.timer.at` / `ngx.timer.every` callbacks,
//! their counts, and the premature run at shutdown. Each callback runs as the
//! entry thread of a fake request, so it can wait like request code.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;

use nginx_sys::{
    NGX_LOG_ALERT, ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_free_connection, ngx_get_connection,
    ngx_msec_t,
};
use ngx::http::Request;

use super::context;
use super::ctx::{Outcome, RequestCtx};
use super::request_vm::VmRef;
use super::scheduler;
use crate::glue::fake_request::{self, ConfRef};
use crate::glue::log as nlog;
use crate::lua::vm;
use crate::lua::{ffi, lua_State};

/// The timers of a VM (its state: they go with their cycle).
#[derive(Default)]
struct Timers {
    /// Armed timers, fired early (premature) when the worker shuts down.
    armed: RefCell<Vec<*mut Armed>>,
    pending: Cell<usize>,
    running: Cell<usize>,
}
crate::lua::vm::vm_state!(Timers);

/// The timers of the running cycle (timers exist only where a VM runs).
fn timers() -> Option<&'static Timers> {
    vm::current_state::<Timers>()
}

fn add(c: &Cell<usize>, n: isize) {
    c.set(c.get().wrapping_add_signed(n));
}

pub fn pending_count() -> usize {
    timers().map_or(0, |t| t.pending.get())
}

pub fn running_count() -> usize {
    timers().map_or(0, |t| t.running.get())
}

/// A timer's callback and what it runs with.
#[derive(Clone)]
pub struct Callback {
    /// Registry reference to `{fn, arg1, ...}`.
    pub call: c_int,
    pub nargs: c_int,
    /// The configuration of the code that created the timer.
    pub conf: ConfRef,
    pub max_running: usize,
    /// The request VM the callback lives in (None: the cycle's).
    pub vm: Option<VmRef>,
    /// The client and listening socket of the request that created the
    /// timer, for the callback's log lines.
    pub origin: Origin,
}

/// An armed timer.
struct Armed {
    ev: ngx_event_t,
    every: Option<ngx_msec_t>,
    cb: Callback,
}

/// Who created a timer: the client address text and the listening socket
/// of its connection (none outside requests).
#[derive(Clone)]
pub struct Origin {
    pub addr_text: Vec<u8>,
    pub listening: *mut nginx_sys::ngx_listening_t,
}

impl Origin {
    /// The origin of code running for request `r` (a timer's own fake
    /// request passes on its creator's).
    ///
    /// # Safety
    /// `r` must be null or live.
    pub unsafe fn of(r: *mut nginx_sys::ngx_http_request_t) -> Origin {
        // SAFETY: `r` is null or live (caller's contract); a live request's connection is live
        match unsafe { r.as_ref() }.and_then(|r| unsafe { r.connection.as_ref() }) {
            Some(c) => Origin {
                addr_text: c.addr_text.as_bytes().to_vec(),
                listening: c.listening,
            },
            None => Origin {
                addr_text: Vec::new(),
                listening: std::ptr::null_mut(),
            },
        }
    }
}

/// Arms a timer for `cb`, due in `delay` ms (and then every `delay` ms).
pub fn arm(delay: ngx_msec_t, every: bool, cb: Callback) {
    // SAFETY: an all-zero ngx_event_t is nginx's initial event state.
    let ev = unsafe { MaybeUninit::<ngx_event_t>::zeroed().assume_init() };
    let armed = Box::into_raw(Box::new(Armed {
        ev,
        every: every.then_some(delay),
        cb,
    }));
    // SAFETY: the Box is leaked until the event fires (on_timer takes it
    // back).
    unsafe {
        (*armed).ev.data = armed.cast::<c_void>();
        (*armed).ev.handler = Some(on_timer);
        (*armed).ev.log = nlog::cycle_log();
        // Cancelable so nginx does not wait for it at exit (the shutdown
        // watcher fires it early); one armed while exiting (a zero delay)
        // is due at once and runs before the worker ends.
        (*armed)
            .ev
            .set_cancelable(!crate::glue::signals::worker_exiting() as u32);
        ngx_add_timer(&mut (*armed).ev, delay);
    }
    if let Some(t) = timers() {
        t.armed.borrow_mut().push(armed);
        add(&t.pending, 1);
    }
}

unsafe extern "C" fn on_timer(ev: *mut ngx_event_t) {
    nlog::log_debug_http!(nlog::cycle_log(), "lua ngx.timer expired");
    crate::glue::catch((), || {
        // SAFETY: nginx passes our timer event, whose data is its boxed Armed
        let armed = unsafe { (*ev).data } as *mut Armed;
        if let Some(t) = timers() {
            t.armed.borrow_mut().retain(|&p| p != armed);
        }
        // SAFETY: data is the Armed leaked by arm(), now taken back once.
        unsafe { fire(*Box::from_raw(armed), false) }
    })
}

/// At worker start: an idle pseudo-connection whose "close" nginx requests
/// when the worker shuts down gracefully; that is when pending timers run
/// with `premature = true` (nginx itself would just drop cancelable timers).
pub fn install_shutdown_watcher() {
    // SAFETY: a free connection of the cycle; fd 0 only makes nginx's idle
    // scan visit it, the connection is never polled or closed as a socket.
    unsafe {
        let c = ngx_get_connection(0, nlog::cycle_log());
        if c.is_null() {
            return;
        }
        (*c).set_idle(1);
        (*(*c).read).handler = Some(on_shutdown);
        (*(*c).read).data = c.cast();
    }
}

unsafe extern "C" fn on_shutdown(rev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: rev is the watcher's read event; its connection goes back
        // to the free list without touching fd 0.
        unsafe {
            let c = (*rev).data as *mut nginx_sys::ngx_connection_t;
            (*c).fd = -1;
            ngx_free_connection(c);
            nlog::log_debug_http!(nlog::cycle_log(), "lua abort pending timers");
            let armed: Vec<*mut Armed> = timers().map(|t| t.armed.take()).unwrap_or_default();
            if !armed.is_empty() {
                nlog::log_debug_http!(
                    nlog::cycle_log(),
                    "lua found {} pending timers to be aborted prematurely",
                    armed.len()
                );
            }
            for p in armed {
                ngx_del_timer(&mut (*p).ev);
                nlog::log_debug_http!(nlog::cycle_log(), "lua ngx.timer expired");
                fire(*Box::from_raw(p), true);
            }
        }
    })
}

/// Runs an armed timer's callback; `premature` when the worker's shutdown
/// fires it before its time (lua-nginx-module's premature flag).
unsafe fn fire(armed: Armed, premature: bool) {
    if let Some(t) = timers() {
        add(&t.pending, -1);
    }
    let Armed { every, cb, .. } = armed;
    let _scope = vm::Scope::enter(cb.vm.as_ref().map(|v| v.vm()));
    let Some(vm) = vm::current() else { return };
    let l = vm.main();
    // A repeating timer is re-armed before its callback runs, so the
    // interval is kept whatever the callback takes; it owns the arguments.
    let owns_call = match every {
        Some(interval) if !premature && !crate::glue::signals::worker_exiting() => {
            arm(interval, true, cb.clone());
            false
        }
        _ => true,
    };
    if running_count() >= cb.max_running {
        nlog::log_error!(
            nlog::cycle_log(),
            NGX_LOG_ALERT,
            "lua failed to run timer with function defined at {}: {} lua_max_running_timers are not enough",
            // SAFETY: `l` is the current VM's main state, idle between events
            unsafe { defined_at(l, cb.call) },
            cb.max_running
        );
        if owns_call {
            // SAFETY: `l` is the current VM's main state, idle between events
            unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, cb.call) };
        }
        return;
    }
    // The timer's share of a request VM passes to the callback's request,
    // which may close the VM when it ends.
    // SAFETY: the timer's VM is current; `cb.call` is its registry reference
    unsafe { run(cb, premature, owns_call) };
}

unsafe fn run(cb: Callback, premature: bool, owns_call: bool) {
    let Callback {
        call,
        nargs,
        conf,
        vm: own_vm,
        origin,
        ..
    } = cb;
    let release = |l: *mut lua_State| {
        if owns_call {
            // SAFETY: `l` is the current VM's main state, idle between events
            unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, call) };
        }
    };
    let Some(r) = fake_request::create(conf) else {
        if let Some(vm) = vm::current() {
            release(vm.main());
        }
        return;
    };
    // SAFETY: `r` is a live request (callers' duty)
    let Some(ctx) = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(r) }) else {
        if let Some(vm) = vm::current() {
            release(vm.main());
        }
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { fake_request::destroy(r) };
        return;
    };
    // SAFETY: `r` came from fake_request::create; `origin.listening` is a cycle listening, which outlives it
    unsafe { fake_request::set_origin(r, &origin.addr_text, origin.listening) };
    ctx.vm = own_vm;
    ctx.context = context::TIMER;
    ctx.on_finish = Some(|ctx, _| finish(ctx));
    if let Some(t) = timers() {
        add(&t.running, 1);
    }
    let outcome = scheduler::start_with(ctx, |co: *mut lua_State| {
        // SAFETY: `co` is the timer's new thread, being set up before its first resume
        unsafe { ffi::lua_rawgeti(co, ffi::LUA_REGISTRYINDEX, call as _) };
        // SAFETY: `co` is the timer's new thread, being set up before its first resume
        let t = unsafe { ffi::lua_gettop(co) };
        // SAFETY: `co` is the timer's new thread, being set up before its first resume
        unsafe {
            ffi::lua_rawgeti(co, t, 1);
            ffi::lua_pushboolean(co, premature as _);
        }
        for i in 0..nargs {
            // SAFETY: `co` is the timer's new thread, being set up before its first resume
            unsafe { ffi::lua_rawgeti(co, t, (i + 2) as _) };
        }
        // SAFETY: `co` is the timer's new thread, being set up before its first resume
        unsafe { ffi::lua_remove(co, t) };
        release(co);
        nargs + 1
    });
    if outcome != Outcome::Wait {
        finish(ctx);
    }
}

/// The callback's code has ended: free its fake request.
fn finish(ctx: &mut RequestCtx) {
    if let Some(t) = timers() {
        add(&t.running, -1);
    }
    let r = ctx.r;
    // SAFETY: r is the fake request this ctx lives in; nothing uses either
    // after this.
    unsafe { fake_request::destroy(r) };
}

/// `source:line` of the callback stored first in the registry table `call`,
/// as lua-nginx-module names a timer it could not run.
unsafe fn defined_at(l: *mut lua_State, call: c_int) -> String {
    // SAFETY: `l` is the current VM's main state, idle between events
    unsafe {
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, call as _);
        ffi::lua_rawgeti(l, -1, 1);
    }
    // SAFETY: lua_Debug is plain C data, all-zero is a valid value
    let mut ar: ffi::lua_Debug = unsafe { std::mem::zeroed() };
    // SAFETY: `l` is the current VM's main state, idle between events
    let at = if unsafe { ffi::lua_isfunction(l, -1) } != 0
        && unsafe { ffi::lua_getinfo(l, c">S".as_ptr(), &mut ar) } != 0
    {
        let src = if ar.source.is_null() {
            "(unknown)".into()
        } else {
            // SAFETY: lua_getinfo set a non-null `source` to a NUL-terminated string
            (unsafe { std::ffi::CStr::from_ptr(ar.source) }).to_string_lossy()
        };
        format!("{src}:{}", ar.linedefined)
    } else {
        // SAFETY: `l` is the current VM's main state, idle between events
        unsafe { ffi::lua_pop(l, 1) };
        "(unknown):0".to_string()
    };
    // lua_getinfo(">") popped the function; the table is left.
    // SAFETY: `l` is the current VM's main state, idle between events
    unsafe { ffi::lua_pop(l, 1) };
    at
}
