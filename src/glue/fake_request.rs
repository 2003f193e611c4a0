//! A request with no client behind it, for Lua code that runs outside any
//! request (timer callbacks), as lua-nginx-module does: it gives the code a
//! pool, a log, a configuration and a RequestCtx, so the scheduler and the
//! API work unchanged. Everything lives in its own pool; destroying the pool
//! runs the RequestCtx cleanup and frees the rest.

use std::mem::size_of;

use nginx_sys::{
    NGX_CYCLE_POOL_SIZE, ngx_connection_t, ngx_create_pool, ngx_cycle, ngx_destroy_pool, ngx_event_t,
    ngx_http_max_module, ngx_http_request_t, ngx_log_t, ngx_pcalloc, ngx_pool_t,
};

/// The configuration a fake request runs with (its creator's).
#[derive(Clone, Copy)]
pub struct ConfRef {
    pub main_conf: *mut *mut std::ffi::c_void,
    pub srv_conf: *mut *mut std::ffi::c_void,
    pub loc_conf: *mut *mut std::ffi::c_void,
}

impl ConfRef {
    /// The configuration of a live request.
    ///
    /// # Safety
    /// `r` must be live.
    pub unsafe fn of(r: *mut ngx_http_request_t) -> ConfRef {
        ConfRef {
            // SAFETY: `r` is a live request (caller's contract)
            main_conf: unsafe { (*r).main_conf },
            // SAFETY: `r` is a live request (caller's contract)
            srv_conf: unsafe { (*r).srv_conf },
            // SAFETY: `r` is a live request (caller's contract)
            loc_conf: unsafe { (*r).loc_conf },
        }
    }

    /// The `http {}` block's own configuration.
    pub fn http_block() -> Option<ConfRef> {
        // SAFETY: ngx_cycle is live; conf_ctx has a slot per core module and
        // the http module's slot holds the http block's conf ctx, if any.
        unsafe {
            let slot = *(*ngx_cycle).conf_ctx.add(nginx_sys::ngx_http_module.index);
            let ctx = (slot as *const nginx_sys::ngx_http_conf_ctx_t).as_ref()?;
            Some(ConfRef {
                main_conf: ctx.main_conf,
                srv_conf: ctx.srv_conf,
                loc_conf: ctx.loc_conf,
            })
        }
    }
}

/// What lua-nginx-module appends to the log lines of code that runs with
/// no client (`log.data` of [`context_log`]'s logs points at one).
pub struct LogContext(pub &'static [u8]);

pub static TIMER_CONTEXT: LogContext = LogContext(b", context: ngx.timer");
pub static INIT_WORKER_CONTEXT: LogContext = LogContext(b", context: init_worker_by_lua*");

/// Appends the log's [`LogContext`] to its lines.
unsafe extern "C" fn log_context(log: *mut ngx_log_t, buf: *mut u8, len: usize) -> *mut u8 {
    // SAFETY: context_log's logs carry a LogContext in `data`.
    let s = unsafe { (*((*log).data as *const LogContext)).0 };
    let n = s.len().min(len);
    // SAFETY: nginx gives us `len` writable bytes at `buf`.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf, n);
        buf.add(n)
    }
}

/// Appends ", client: <addr>, server: <listening addr>" for connection `c`
/// (the parts it has), as lua-nginx-module's fake connections log the
/// client whose code created them.
///
/// # Safety
/// `c` must be null or a live connection.
pub unsafe fn client_server(c: *const ngx_connection_t, out: &mut Vec<u8>) {
    // SAFETY: `c` is null or a live connection (caller's contract)
    let Some(c) = (unsafe { c.as_ref() }) else { return };
    if c.addr_text.len > 0 {
        out.extend_from_slice(b", client: ");
        out.extend_from_slice(c.addr_text.as_bytes());
    }
    // SAFETY: a live connection's listening is null or live
    if let Some(ls) = unsafe { c.listening.as_ref() }
        && ls.addr_text.len > 0
    {
        out.extend_from_slice(b", server: ");
        out.extend_from_slice(ls.addr_text.as_bytes());
    }
}

/// The log handler of a timer's fake connection (`log.data`): its context,
/// then the client and server of the request that created the timer.
unsafe extern "C" fn log_timer(log: *mut ngx_log_t, buf: *mut u8, len: usize) -> *mut u8 {
    let mut out = TIMER_CONTEXT.0.to_vec();
    // SAFETY: `create` points the log's data at its connection, which lives
    // in the same pool as the log.
    unsafe { client_server((*log).data as *const ngx_connection_t, &mut out) };
    let n = out.len().min(len);
    // SAFETY: nginx gives us `len` writable bytes at `buf`.
    unsafe {
        std::ptr::copy_nonoverlapping(out.as_ptr(), buf, n);
        buf.add(n)
    }
}

/// Gives a timer's fake request the client and server of the request whose
/// code created the timer, for its log lines.
///
/// # Safety
/// `r` must come from `create`; `listening` must be null or outlive it.
pub unsafe fn set_origin(
    r: *mut ngx_http_request_t,
    addr_text: &[u8],
    listening: *mut nginx_sys::ngx_listening_t,
) {
    // SAFETY: `r` came from `create` and is live (caller's contract)
    let c = unsafe { (*r).connection };
    if !addr_text.is_empty() {
        // SAFETY: a fake request's connection and its pool are live
        let p = unsafe { nginx_sys::ngx_pnalloc((*c).pool, addr_text.len()) } as *mut u8;
        if !p.is_null() {
            // SAFETY: `p` has addr_text.len() fresh bytes, apart from `addr_text`
            unsafe { std::ptr::copy_nonoverlapping(addr_text.as_ptr(), p, addr_text.len()) };
            // SAFETY: `c` is the fake request's live connection; `p` lives in its pool
            unsafe {
                (*c).addr_text = nginx_sys::ngx_str_t {
                    len: addr_text.len(),
                    data: p,
                };
            }
        }
    }
    // SAFETY: `c` is live; `listening` is null or outlives it (caller's contract)
    unsafe {
        (*c).listening = listening;
    }
}

/// A copy of the cycle's log in `pool` for a connection with no client:
/// it numbers its lines with a new connection number ("*12") and ends them
/// with `context`, as lua-nginx-module's fake connections do.
///
/// # Safety
/// `pool` must be live; the log lives as long as it.
pub unsafe fn context_log(pool: *mut ngx_pool_t, context: &'static LogContext) -> *mut ngx_log_t {
    // SAFETY: `pool` is live (caller's contract)
    let log = unsafe { ngx_pcalloc(pool, size_of::<ngx_log_t>()) } as *mut ngx_log_t;
    if log.is_null() {
        return log;
    }
    // SAFETY: `log` was just allocated and checked; the cycle's log is live
    unsafe {
        *log = *(*ngx_cycle).log;
        (*log).handler = Some(log_context);
        (*log).data = context as *const LogContext as *mut std::ffi::c_void;
        (*log).connection = next_connection_number();
    }
    log
}

/// nginx's connection counter, shared by the workers.
fn next_connection_number() -> nginx_sys::ngx_atomic_uint_t {
    // SAFETY: ngx_connection_counter points at nginx's counter (in shared
    // memory once the workers run), only ever updated atomically.
    unsafe {
        let p = nginx_sys::ngx_connection_counter;
        if p.is_null() {
            return 0;
        }
        std::sync::atomic::AtomicUsize::from_ptr(p as *mut usize)
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst) as nginx_sys::ngx_atomic_uint_t
    }
}

/// Creates a fake request in a new pool; `destroy` frees it.
pub fn create(conf: ConfRef) -> Option<*mut ngx_http_request_t> {
    // SAFETY: allocations come from a fresh pool, zeroed; every pointer set
    // below points into that pool or at cycle-lifetime data.
    unsafe {
        let cycle_log = (*ngx_cycle).log;
        let pool = ngx_create_pool(NGX_CYCLE_POOL_SIZE as usize, cycle_log);
        if pool.is_null() {
            return None;
        }
        let alloc = |size: usize| ngx_pcalloc(pool, size);
        let log = context_log(pool, &TIMER_CONTEXT);
        let c = alloc(size_of::<ngx_connection_t>()) as *mut ngx_connection_t;
        let r = alloc(size_of::<ngx_http_request_t>()) as *mut ngx_http_request_t;
        let rev = alloc(size_of::<ngx_event_t>()) as *mut ngx_event_t;
        let wev = alloc(size_of::<ngx_event_t>()) as *mut ngx_event_t;
        let ctx =
            alloc(size_of::<*mut std::ffi::c_void>() * ngx_http_max_module) as *mut *mut std::ffi::c_void;
        if [
            log.cast(),
            c.cast(),
            r.cast(),
            rev.cast(),
            wev.cast(),
            ctx.cast::<u8>(),
        ]
        .iter()
        .any(|p: &*mut u8| p.is_null())
        {
            ngx_destroy_pool(pool);
            return None;
        }
        (*log).handler = Some(log_timer);
        (*log).data = c.cast();
        (*pool).log = log;
        (*c).fd = -1;
        (*c).number = (*log).connection;
        (*c).pool = pool;
        (*c).log = log;
        (*c).read = rev;
        (*c).write = wev;
        (*c).data = r.cast();
        (*rev).log = log;
        (*wev).log = log;
        (*r).pool = pool;
        (*r).connection = c;
        (*r).main = r;
        (*r).ctx = ctx;
        (*r).main_conf = conf.main_conf;
        (*r).srv_conf = conf.srv_conf;
        (*r).loc_conf = conf.loc_conf;
        (*r).set_count(1);
        Some(r)
    }
}

/// Frees a fake request (running its pool cleanups).
///
/// # Safety
/// `r` must come from `create` and not be used afterwards.
pub unsafe fn destroy(r: *mut ngx_http_request_t) {
    super::log::log_debug_http!(super::log::cycle_log(), "http lua close fake http connection");
    // SAFETY: `r` came from `create` and is still live (caller's contract)
    let pool: *mut ngx_pool_t = unsafe { (*r).pool };
    // SAFETY: the request lives in its own pool, destroyed once here
    unsafe { ngx_destroy_pool(pool) };
}
