//! The per-request state: created on the first Lua handler of a request,
//! stored as the module's request ctx, freed by a request pool cleanup (which
//! also cancels every pending wait, so no event fires into freed memory).

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr;

use nginx_sys::{ngx_http_request_t, ngx_int_t, ngx_log_t, ngx_palloc, ngx_pool_cleanup_t, ngx_str_t};
use ngx::http::Request;

use super::context::{self, Context};
use super::scheduler::LuaThread;
use crate::conf::module;
use crate::glue::buf::BufList;
use crate::glue::loop_local::loop_local;
use crate::lua::ffi;
use crate::lua::vm;

/// How the Lua code of a phase ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Some thread is waiting on an event.
    Wait,
    /// The entry thread and all light threads returned.
    Done,
    /// `ngx.exit(code)` (also used by ngx.redirect).
    Exit(ngx_int_t),
    /// `ngx.exec()`: the target is in `RequestCtx::exec`.
    Exec,
    /// A runtime error aborted the entry thread (already logged).
    Error,
}

/// Where an asynchronous rewrite/access run stands when nginx re-enters the
/// phase handler.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PhaseRun {
    NotStarted,
    Running,
    Finished(Outcome),
}

/// How the code of a phase is ended once it ended after waiting.
pub type OnFinish = fn(&mut RequestCtx, Outcome);

/// The module's state of one request.
///
/// Invariant: `r` is the live request this ctx belongs to. It is set once,
/// when `get_or_create` makes the ctx, and never reassigned; the ctx is
/// allocated in `r`'s pool and dropped by that pool's cleanup, so it never
/// outlives `r`: whoever holds a `&RequestCtx` may dereference `r` (and
/// `r->connection`) without a contract of its own. Functions that take the
/// ctx instead of a raw request pointer rely on this and stay safe.
pub struct RequestCtx {
    pub r: *mut ngx_http_request_t,
    /// The context (phase) whose Lua code is running or waiting.
    pub context: Context,
    /// Set with `context` by whoever started that code (lua-nginx-module's
    /// `ctx->resume_handler`): the scheduler calls it when the code ends
    /// after waiting, so it never needs to know the phases above it.
    pub on_finish: Option<OnFinish>,
    /// Usually just the entry thread: kept inline, no allocation.
    pub threads: smallvec::SmallVec<[LuaThread; 1]>,
    /// Light threads this request waited on or killed: ngx.thread.wait and
    /// kill tell them ("already waited or killed") from coroutines that
    /// never were threads.
    pub ended_threads: smallvec::SmallVec<[*mut crate::lua::lua_State; 4]>,
    /// Threads that gave the others a turn, in the order they are resumed
    /// (lua-nginx-module's posted threads), each with the light thread its
    /// ngx.thread.spawn returns (null after a bare coroutine.yield).
    pub posted: smallvec::SmallVec<[(*mut crate::lua::lua_State, *mut crate::lua::lua_State); 2]>,
    /// The outermost resume is running the posted threads.
    pub draining: bool,
    /// The scheduler thread being resumed now: waits register on it, and
    /// waking it carries the results down to any user coroutine inside.
    pub running: *mut crate::lua::lua_State,
    /// The `ngx.on_abort` handler, a light thread not started yet.
    pub on_abort: Option<LuaThread>,
    /// The thread waiting in ngx.flush(true), if any.
    pub write_waiter: *mut crate::lua::lua_State,
    /// Registry reference of the `ngx.ctx` table, created on first use.
    pub ctx_ref: c_int,
    pub exit_code: Option<ngx_int_t>,
    /// The status the header filter's `ngx.exit` replaced the response
    /// with: when the filter runs again for that response, it goes on.
    pub header_filter_exit: Option<ngx_int_t>,
    /// Capture groups still waiting for subrequests: ngx.exit may not end
    /// the request then (lua-nginx-module's `no_abort`).
    pub captures_pending: u32,
    /// The entry thread died of an error (already logged).
    pub failed: bool,
    /// How deep resumes are nested now (see scheduler.rs).
    pub depth: u32,
    pub exec: Option<(ngx_str_t, ngx_str_t)>,
    pub server_rewrite: PhaseRun,
    pub rewrite: PhaseRun,
    pub access: PhaseRun,
    pub eof_sent: bool,
    /// Output held back for an HTTP/1.0 client (lua_http10_buffering).
    pub buffered: Vec<u8>,
    pub buffering: bool,
    /// ngx.say/print wrote body data (ngx.flush() has something to flush).
    pub seen_body_data: bool,
    /// Lua set or cleared Content-Type: no default type is added to the
    /// header Lua sends.
    pub mime_set: bool,
    /// Lua sent the header (ngx_http_send_header was called): a header
    /// filter such as image_filter's may hold it back, leaving
    /// `r->header_sent` unset, and it must not be sent twice.
    pub header_sent: bool,
    /// Set once the request pool cleanup ran: nothing may resume any more.
    pub gone: Cell<bool>,
    /// The thread waiting in ngx.req.read_body, if any.
    pub body_waiter: *mut crate::lua::lua_State,
    /// The body being built by ngx.req.init_body/append_body, and the size
    /// above which finish_body puts it in a temporary file.
    pub body_builder: Option<(Vec<u8>, usize)>,
    /// The output buffers of ngx.say/print/flush, reused once sent.
    pub out_bufs: BufList,
    /// The latest write of the running Lua code, not passed on yet (see
    /// runtime/output.rs); null when none.
    pub held_out: *mut nginx_sys::ngx_chain_t,
    /// body_filter_by_lua: its reusable output buffers, and whether it ended
    /// the body (`ngx.arg[2] = true`), after which data is discarded.
    pub filter_bufs: BufList,
    pub filter_eof: bool,
    /// body_filter_by_lua: the Lua strings passed on without a copy.
    pub filter_lent: super::lent_out::LentBufs,
    /// The `ngx.req.socket()` state, which the request's event handlers feed.
    pub req_sock: *mut super::tcp_sock::TcpSock,
    /// The peer selection whose balancer_by_lua* code runs now (that code
    /// cannot yield, so there is at most one).
    pub balancer_peer: *mut super::balancer::PeerData,
    /// The request's own VM (lua_code_cache off), which its code runs in.
    pub vm: Option<super::request_vm::VmRef>,
}

impl RequestCtx {
    /// The log of the request's connection.
    pub fn log(&self) -> *mut ngx_log_t {
        // SAFETY: r is the live request of this ctx (the type's invariant).
        unsafe { (*(*self.r).connection).log }
    }

    /// The header went out, or Lua sent it into the header filters.
    pub fn header_sent(&self) -> bool {
        // SAFETY: r is the live request of this ctx (the type's invariant).
        self.header_sent || unsafe { (*self.r).header_sent() } != 0
    }

    /// ngx.exit, ngx.exec, ngx.redirect and a jumping set_uri may not end
    /// the request while a capture's subrequests are out
    /// (lua-nginx-module's `no_abort`).
    pub fn check_abortable(&self) -> Result<(), String> {
        if self.captures_pending > 0 {
            return Err("attempt to abort with pending subrequests".into());
        }
        Ok(())
    }

    #[inline(always)]
    fn new(r: *mut ngx_http_request_t) -> RequestCtx {
        RequestCtx {
            r,
            context: context::NONE,
            on_finish: None,
            threads: smallvec::SmallVec::new(),
            ended_threads: smallvec::SmallVec::new(),
            posted: smallvec::SmallVec::new(),
            draining: false,
            running: ptr::null_mut(),
            write_waiter: ptr::null_mut(),
            on_abort: None,
            ctx_ref: ffi::LUA_NOREF,
            exit_code: None,
            header_filter_exit: None,
            captures_pending: 0,
            failed: false,
            depth: 0,
            exec: None,
            server_rewrite: PhaseRun::NotStarted,
            rewrite: PhaseRun::NotStarted,
            access: PhaseRun::NotStarted,
            eof_sent: false,
            buffered: Vec::new(),
            buffering: false,
            seen_body_data: false,
            mime_set: false,
            header_sent: false,
            gone: Cell::new(false),
            body_waiter: ptr::null_mut(),
            body_builder: None,
            out_bufs: BufList::default(),
            held_out: ptr::null_mut(),
            filter_bufs: BufList::default(),
            filter_lent: Default::default(),
            filter_eof: false,
            req_sock: ptr::null_mut(),
            balancer_peer: ptr::null_mut(),
            vm: None,
        }
    }

    /// The request's ctx, created (with its pool cleanup) if absent. The
    /// reference lives as long as the borrow of `req`: the ctx lives as long
    /// as the request, and no second `&mut` to it can be taken through
    /// `req` meanwhile.
    pub fn get_or_create(req: &mut Request) -> Option<&mut RequestCtx> {
        let r: *mut ngx_http_request_t = req.as_mut();
        // SAFETY: `req` proves `r` live.
        let found = unsafe { slot(r) };
        if !found.is_null() {
            // SAFETY: the slot holds the RequestCtx stored below, live until
            // the pool cleanup; `req`'s borrow keeps this the only reference.
            return Some(unsafe { &mut *found });
        }
        // In the request's pool (no heap allocation per request), with the
        // pool cleanup that drops it in place before the pool's memory goes
        // (one allocation for both; linked as ngx_pool_cleanup_add links).
        // SAFETY: `req` proves `r` live.
        let block = unsafe { ngx_palloc((*r).pool, std::mem::size_of::<CtxBlock>()) } as *mut CtxBlock;
        if block.is_null() {
            return None;
        }
        // SAFETY: `block` is fresh pool memory of CtxBlock's size and
        // alignment (see the assert below); `req` proves `r` live.
        let ctx = unsafe {
            let ctx = ptr::addr_of_mut!((*block).ctx);
            ctx.write(RequestCtx::new(r));
            let cln = ptr::addr_of_mut!((*block).cleanup);
            cln.write(ngx_pool_cleanup_t {
                handler: Some(cleanup),
                data: ctx.cast(),
                next: (*(*r).pool).cleanup,
            });
            (*(*r).pool).cleanup = cln;
            *(*r).ctx.add(module().ctx_index) = ctx.cast();
            ctx
        };
        // SAFETY: `ctx` was just written and is owned by the request's pool
        // until its cleanup; `req`'s borrow bounds the reference.
        let ctx = unsafe { &mut *ctx };
        // A fake request (timer, init_worker) runs in the VM of the code
        // that made it.
        // SAFETY: `req` proves `r` live.
        if !unsafe { crate::conf::loc_conf(r) }.code_cache() && unsafe { (*(*r).connection).fd } != -1 {
            // SAFETY: `req` proves `r` live.
            match unsafe { own_vm(r) } {
                Ok(vm) => ctx.vm = Some(super::request_vm::VmRef::new(vm)),
                Err(e) => {
                    crate::glue::log::log_error!(
                        ctx.log(),
                        nginx_sys::NGX_LOG_ERR,
                        "failed to initialize Lua VM: {e}"
                    );
                    return None;
                }
            }
        }
        Some(ctx)
    }

    /// Makes the request's VM current until the guard drops.
    pub fn enter_vm(&self) -> vm::Scope {
        vm::Scope::enter(self.vm.as_ref().map(|v| v.vm()))
    }

    /// The request's ctx, if it has one; borrowed as long as `req` is (see
    /// [`RequestCtx::get_or_create`]).
    pub fn get(req: &mut Request) -> Option<&mut RequestCtx> {
        // SAFETY: `req` proves the request live.
        let p = unsafe { slot(req.as_mut()) };
        // SAFETY: the slot holds null or the RequestCtx get_or_create stored,
        // live until the pool cleanup; `req`'s borrow bounds the reference.
        unsafe { p.as_mut() }
    }

    /// The scheduler thread running now.
    pub fn running_thread(&mut self) -> Option<&mut LuaThread> {
        let co = self.running;
        self.threads.iter_mut().find(|t| t.co == co)
    }

    /// Takes the wait off thread `co`. An event handler calls this before
    /// waking the thread: the thread may wait again, and the request may be
    /// freed by the time the wake returns.
    pub fn take_wait(&mut self, co: *mut crate::lua::lua_State) -> Option<super::scheduler::Pending> {
        self.threads
            .iter_mut()
            .find(|t| t.co == co)
            .and_then(|t| t.wait.take())
    }

    /// Drops the Lua threads of the finished phase (their waits are cancelled).
    pub fn clear_threads(&mut self) {
        self.threads.clear();
        self.posted.clear();
    }

    /// `ngx.req.set_uri(uri, true)` ended the rewrite phase: the request
    /// starts over in the location of its new URI with a fresh state
    /// (`ngx.ctx` too), as lua-nginx-module initialises its ctx again.
    pub fn restart(&mut self) {
        let _vm = self.enter_vm();
        self.clear_threads();
        self.ended_threads.clear();
        self.on_abort = None;
        self.release_ngx_ctx();
        self.exit_code = None;
        self.failed = false;
        self.server_rewrite = PhaseRun::NotStarted;
        self.rewrite = PhaseRun::NotStarted;
        self.access = PhaseRun::NotStarted;
    }

    /// Lets the `ngx.ctx` table go (the VM must be current).
    fn release_ngx_ctx(&mut self) {
        if self.ctx_ref == ffi::LUA_NOREF {
            return;
        }
        let r = self.ctx_ref;
        crate::glue::log::log_debug_http!(crate::glue::log::cycle_log(), "lua release ngx.ctx at ref {r}");
        if let Some(vm) = vm::current() {
            vm.unref(r);
        }
        self.ctx_ref = ffi::LUA_NOREF;
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        // The threads and ngx.ctx go back to the VM they live in (the
        // request's own VM, if any, goes after this, with the fields).
        let _vm = self.enter_vm();
        self.gone.set(true);
        self.threads.clear();
        self.on_abort = None;
        self.release_ngx_ctx();
        if self.filter_lent.any()
            && let Some(vm) = vm::current()
        {
            // SAFETY: the strings were lent from this request's VM, entered above
            unsafe { self.filter_lent.release_all(vm.main()) };
        }
    }
}

unsafe extern "C" fn cleanup(data: *mut std::ffi::c_void) {
    crate::glue::catch((), || {
        let ctx = data as *mut RequestCtx;
        // SAFETY: `data` is the ctx get_or_create wrote into the pool; the
        // pool runs this cleanup once, before it frees its memory.
        unsafe {
            let r = (*ctx).r;
            let slot = (*r).ctx.add(module().ctx_index);
            // After ngx.exec the slot may hold the redirected location's ctx.
            if *slot == ctx.cast() {
                *slot = ptr::null_mut();
            }
            ptr::drop_in_place(ctx);
        }
    })
}

/// What the module's ctx slot of request `r` holds: null or our ctx.
///
/// # Safety
/// `r` must be a live request.
unsafe fn slot(r: *mut ngx_http_request_t) -> *mut RequestCtx {
    // SAFETY: `r` is a live request (callers' duty)
    unsafe { *(*r).ctx.add(module().ctx_index) as *mut RequestCtx }
}

/// A new VM for request `r`, built by the configuration's factory.
///
/// # Safety
/// `r` must be a live request.
unsafe fn own_vm(r: *mut ngx_http_request_t) -> Result<vm::Vm, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let lmcf = unsafe { crate::conf::main_conf(r) };
    let make = lmcf.request_vm.ok_or("no VM factory")?;
    make(lmcf)
}

/// A request's ctx and the pool cleanup that drops it, allocated together.
#[repr(C)]
struct CtxBlock {
    cleanup: ngx_pool_cleanup_t,
    ctx: RequestCtx,
}

// ngx_palloc aligns to NGX_ALIGNMENT (the size of a long).
const _: () = assert!(std::mem::align_of::<CtxBlock>() <= std::mem::size_of::<std::ffi::c_ulong>());

// Per thread, without a thread-local access on the event loop's (see
// loop_local): a pool thread of ngx.run_worker_thread sees no request.
loop_local! {
    // The request whose code runs now: a property of the call in progress
    // (set around each resume, nested by CurrentGuard), not of the VM.
    static CURRENT: Cell<*mut RequestCtx> = const { Cell::new(ptr::null_mut()) };
}

/// The request whose Lua code is running now, if any.
pub fn current<'a>() -> Option<&'a mut RequestCtx> {
    // SAFETY: CURRENT is set only while the pointed ctx is alive and its
    // Lua code runs (see CurrentGuard).
    unsafe { CURRENT.get().as_mut() }
}

/// Makes `ctx` the current request while Lua code runs for it.
pub struct CurrentGuard(*mut RequestCtx);

impl CurrentGuard {
    /// # Safety
    /// `ctx` must be null, or a live ctx that stays live until the guard
    /// drops, derived from the caller's own reference: the code run under
    /// the guard reaches it through [`current`], and the caller must not use
    /// its reference again before that code has returned.
    pub unsafe fn enter(ctx: *mut RequestCtx) -> CurrentGuard {
        CurrentGuard(CURRENT.replace(ctx))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.set(self.0);
    }
}

/// The current request, or lua-nginx-module's error when there is none.
pub fn request<'a>() -> Result<&'a mut RequestCtx, String> {
    current().ok_or_else(|| "no request found".to_string())
}

/// The running request's context, when the running code may read its data
/// in a context of `allowed`: what the FFI functions act on.
pub fn running<'a>(allowed: Context) -> Option<&'a mut RequestCtx> {
    context::check_request_data(allowed).ok()?;
    current()
}

/// [`running`]'s request.
pub fn running_request(allowed: Context) -> Option<*mut ngx_http_request_t> {
    running(allowed).map(|c| c.r).filter(|r| !r.is_null())
}

/// Whether `r`, a request pointer Lua code handed to an FFI function of
/// lua-nginx-module's ABI, is the running request and its code may read
/// its data in `allowed`: a pointer carried over from another request (a
/// coroutine of another request) is refused, never followed.
pub fn is_running(r: *mut ngx_http_request_t, allowed: Context) -> bool {
    !r.is_null() && running_request(allowed) == Some(r)
}
