//! Capturing subrequests (ngx.location.capture): their responses are kept
//! in memory instead of going to the client, and the Lua thread that issued
//! them waits until the last one has finished.
//!
//! nginx finalizes a subrequest through its `post_subrequest` handler; ours
//! records the status and headers, makes the subrequest the connection's
//! active request so that nginx completes it at once (see `issue`: our
//! subrequests are not queued in the parent's postponed list), and when the
//! last one is done sets the parent's write event handler, which nginx runs
//! when it posts the parent right after. That handler resumes the thread.
//!
//! The state shared by the subrequests of one call is a `Group`, held by the
//! waiting thread's `CaptureWait` and by one `Slot` per subrequest (freed
//! with the request pool), so whichever goes first, nothing dangles: a wait
//! dropped early (client abort, request end) only detaches the group.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr::NonNull;
use std::rc::Rc;

use nginx_sys::{
    NGX_ERROR, NGX_HTTP_CREATED, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NO_CONTENT,
    NGX_HTTP_OK, NGX_HTTP_SPECIAL_RESPONSE, NGX_OK, ngx_chain_t, ngx_http_post_request,
    ngx_http_post_subrequest_t, ngx_http_request_empty_handler, ngx_http_request_t, ngx_http_send_header,
    ngx_int_t, ngx_palloc, ngx_pfree, ngx_pnalloc, ngx_pool_cleanup_add, ngx_pool_t, ngx_str_t,
    ngx_table_elt_t,
};
use smallvec::SmallVec;

use super::ctx::RequestCtx;
use super::scheduler::{Wait, wake};
use crate::glue::buf::{consume, in_memory};
use crate::glue::headers::pool_str;
use crate::glue::list;
use crate::lua::vm;
use crate::lua::{ffi, lua_State, push_bytes};

/// One subrequest's response as Lua will see it.
#[derive(Default)]
pub struct Response {
    pub status: ngx_int_t,
    /// The finished subrequest, whose response headers are read when the
    /// parent resumes, as lua-nginx-module reads them: it lives in the
    /// parent's pool, as does all it points to.
    sr: Option<NonNull<ngx_http_request_t>>,
    body: PoolBody,
    pub truncated: bool,
    seen_last: bool,
    over_limit: bool,
}

/// A captured body, kept in the request pool as lua-nginx-module keeps it:
/// one block when the length is known. A block nginx allocated on its own
/// (a large one) goes back as soon as it is replaced or pushed to Lua.
struct PoolBody {
    data: *mut u8,
    len: usize,
    cap: usize,
}

impl Default for PoolBody {
    fn default() -> PoolBody {
        PoolBody {
            data: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

impl PoolBody {
    fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `data` holds `len` bytes written by `extend`
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// Room for `more` bytes; None without memory.
    ///
    /// # Safety
    /// `pool` must be the live pool of every earlier call.
    unsafe fn reserve(&mut self, pool: *mut ngx_pool_t, more: usize) -> Option<()> {
        let need = self.len.checked_add(more)?;
        if need <= self.cap {
            return Some(());
        }
        let cap = need.max(self.cap.saturating_mul(2));
        // SAFETY: `pool` is live (caller's contract)
        let data = unsafe { ngx_pnalloc(pool, cap) } as *mut u8;
        if data.is_null() {
            return None;
        }
        let len = self.len;
        let old = std::mem::replace(self, PoolBody { data, len, cap });
        if len > 0 {
            // SAFETY: the old block holds `len` bytes; the new one has room
            // for `cap` >= len, and the two are distinct allocations.
            unsafe { std::ptr::copy_nonoverlapping(old.data, data, len) };
        }
        // SAFETY: the old block is from `pool`, which is live
        unsafe { old.give_back(pool) };
        Some(())
    }

    /// # Safety
    /// As for `reserve`.
    unsafe fn extend(&mut self, pool: *mut ngx_pool_t, bytes: &[u8]) -> Option<()> {
        // SAFETY: the caller's contract
        unsafe { self.reserve(pool, bytes.len()) }?;
        if !bytes.is_empty() {
            // SAFETY: `reserve` made room for bytes.len() more after `len`
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data.add(self.len), bytes.len()) };
        }
        self.len += bytes.len();
        Some(())
    }

    /// Gives a large block back to the pool at once (ngx_pfree ignores the
    /// others, which go with the pool).
    ///
    /// # Safety
    /// As for `reserve`.
    unsafe fn free(&mut self, pool: *mut ngx_pool_t) {
        // SAFETY: the caller's contract
        unsafe { std::mem::take(self).give_back(pool) };
    }

    /// # Safety
    /// As for `reserve`.
    unsafe fn give_back(self, pool: *mut ngx_pool_t) {
        if !self.data.is_null() {
            // SAFETY: `data` was allocated from `pool`, which is live
            unsafe { ngx_pfree(pool, self.data.cast()) };
        }
    }
}

pub struct Group {
    /// The request that issued the subrequests.
    pr: *mut ngx_http_request_t,
    responses: RefCell<SmallVec<[Response; 1]>>,
    pending: Cell<usize>,
    /// The thread to resume; None once its wait was dropped.
    waiter: Cell<Option<(*mut RequestCtx, *mut lua_State)>>,
    /// lua_capture_max_body_size (0: no limit).
    max_body: usize,
    /// Counted in the waiter's `RequestCtx::captures_pending`.
    counted: Cell<bool>,
}

impl Group {
    pub fn new(pr: *mut ngx_http_request_t, n: usize, max_body: usize) -> Rc<Group> {
        Rc::new(Group {
            pr,
            responses: RefCell::new((0..n).map(|_| Response::default()).collect()),
            pending: Cell::new(n),
            waiter: Cell::new(None),
            max_body,
            counted: Cell::new(false),
        })
    }

    /// The group no longer holds its request's "pending subrequests" (all
    /// done, or its wait went away).
    fn release(&self) {
        if !self.counted.replace(false) {
            return;
        }
        if let Some((ctx, _)) = self.waiter.get() {
            // SAFETY: a set waiter's ctx is live (the wait's Drop clears it).
            unsafe { (*ctx).captures_pending -= 1 };
        }
    }
}

/// The post_subrequest data of one captured subrequest.
struct Slot {
    group: Rc<Group>,
    index: usize,
    finished: Cell<bool>,
}

/// Groups whose subrequests are all done, until their parent runs (a VM's
/// state).
#[derive(Default)]
struct Ready(RefCell<Vec<Rc<Group>>>);
crate::lua::vm::vm_state!(Ready);

/// Runs `f` on the ready groups; None without a VM (no Lua code, no
/// captures).
fn with_ready<R>(f: impl FnOnce(&mut Vec<Rc<Group>>) -> R) -> Option<R> {
    let ready = vm::current_state::<Ready>()?;
    Some(f(&mut ready.0.borrow_mut()))
}

/// The post_subrequest record making subrequest `index` of `group` a capture.
///
/// # Safety
/// `r` must be live; the record lives in its pool.
pub unsafe fn post_subrequest(
    r: *mut ngx_http_request_t,
    group: &Rc<Group>,
    index: usize,
) -> Option<*mut ngx_http_post_subrequest_t> {
    // SAFETY: `r` is a live request (callers' duty)
    let pool = unsafe { (*r).pool };
    // SAFETY: `pool` is live
    let ps = unsafe { ngx_palloc(pool, std::mem::size_of::<ngx_http_post_subrequest_t>()) }
        as *mut ngx_http_post_subrequest_t;
    // The slot lives in the pool; the cleanup drops its share of the group.
    // SAFETY: `pool` is live
    let slot = unsafe { ngx_palloc(pool, std::mem::size_of::<Slot>()) } as *mut Slot;
    let cln = if slot.is_null() {
        std::ptr::null_mut()
    } else {
        // SAFETY: `pool` is live
        unsafe { ngx_pool_cleanup_add(pool, 0) }
    };
    if ps.is_null() || cln.is_null() {
        return None;
    }
    // SAFETY: `slot` is fresh pool memory of Slot's size (ngx_palloc aligns
    // to NGX_ALIGNMENT, a pointer's), and `ps`, `cln` were allocated in the
    // live pool and checked non-null.
    unsafe {
        slot.write(Slot {
            group: group.clone(),
            index,
            finished: Cell::new(false),
        });
        (*cln).handler = Some(drop_slot);
        (*cln).data = slot.cast();
        (*ps).handler = Some(on_finalize);
        (*ps).data = slot.cast();
    }
    Some(ps)
}

unsafe extern "C" fn drop_slot(data: *mut c_void) {
    crate::glue::catch((), || {
        // SAFETY: `data` is the Slot written in post_subrequest; the pool
        // runs this cleanup once, before it frees the memory.
        unsafe { std::ptr::drop_in_place(data as *mut Slot) };
    })
}

unsafe fn slot<'a>(r: *mut ngx_http_request_t) -> Option<&'a Slot> {
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { (*r).main } == r {
        return None;
    }
    // SAFETY: `r` is a live request (callers' duty)
    let ps = unsafe { (*r).post_subrequest };
    if ps.is_null()
        // SAFETY: a non-null post_subrequest of a live request is live
        || unsafe { (*ps).handler.map(|f| f as *const () as usize) } != Some(on_finalize as *const () as usize)
    {
        return None;
    }
    // SAFETY: a post_subrequest with our handler has a Slot of ours as data
    unsafe { ((*ps).data as *const Slot).as_ref() }
}

/// Is `r` a subrequest whose response we capture?
///
/// # Safety
/// `r` must be live.
pub unsafe fn is_captured(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: `r` is a live request (callers' duty)
    (unsafe { slot(r) }).is_some()
}

/// The header filter's end for a captured subrequest: nothing goes out.
///
/// # Safety
/// `r` must be a live captured subrequest.
pub unsafe fn header(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: `r` is a live request (callers' duty)
    unsafe {
        (*r).set_filter_need_in_memory(1);
        (*r).set_header_sent(1);
    }
    // SAFETY: `r` is a live request (callers' duty)
    if unsafe { (*r).method } == NGX_HTTP_HEAD as _ {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe { (*r).set_header_only(1) };
    }
    NGX_OK as ngx_int_t
}

/// The body filter's end for a captured subrequest: keeps the data.
///
/// # Safety
/// `r` must be a live captured subrequest; `cl` its chain.
pub unsafe fn body(r: *mut ngx_http_request_t, mut cl: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: `r` is a live request (callers' duty)
    let Some(s) = (unsafe { slot(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    let mut responses = s.group.responses.borrow_mut();
    let resp = &mut responses[s.index];
    let max = s.group.max_body;
    // SAFETY: `r` is a live request (callers' duty)
    let pool = unsafe { (*r).pool };
    if resp.body.cap == 0 {
        // One allocation for a body of known length.
        // SAFETY: `r` is a live request (callers' duty)
        let len = usize::try_from(unsafe { (*r).headers_out.content_length_n }).unwrap_or(0);
        // SAFETY: `pool` is the live request's, the parent's
        if unsafe { resp.body.reserve(pool, if max > 0 { len.min(max) } else { len }) }.is_none() {
            return NGX_ERROR as ngx_int_t;
        }
    }
    while !cl.is_null() {
        // SAFETY: `cl` is a live link of the chain nginx gave the filter
        let b = unsafe { (*cl).buf };
        // SAFETY: `b` is the link's live buffer
        if unsafe { in_memory(b) } && unsafe { (*b).last } > unsafe { (*b).pos } {
            // SAFETY: `b` is in memory with pos < last
            let mut n = unsafe { (*b).last.offset_from((*b).pos) } as usize;
            if max > 0 && resp.body.len + n > max {
                n = max - resp.body.len;
                resp.over_limit = true;
            }
            // SAFETY: `b` holds `n` bytes from `pos`
            let bytes = unsafe { std::slice::from_raw_parts((*b).pos, n) };
            // SAFETY: `pool` is the live request's, the parent's
            if unsafe { resp.body.extend(pool, bytes) }.is_none() {
                return NGX_ERROR as ngx_int_t;
            }
        }
        // SAFETY: `b` is the link's live buffer
        if unsafe { (*b).last_buf() } != 0 || unsafe { (*b).last_in_chain() } != 0 {
            resp.seen_last = true;
        }
        // SAFETY: `b` is the link's live buffer, whose data is taken
        unsafe { consume(b) };
        // SAFETY: `cl` is a live link of the chain
        cl = unsafe { (*cl).next };
    }
    NGX_OK as ngx_int_t
}

/// Codes for which nginx would send its own error page: like
/// lua-nginx-module we send only the status, so the captured body is empty.
fn special(rc: ngx_int_t) -> bool {
    rc == NGX_ERROR as ngx_int_t
        || rc == NGX_HTTP_CREATED as ngx_int_t
        || rc == NGX_HTTP_NO_CONTENT as ngx_int_t
        || (rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t && ![444, 408, 499].contains(&rc))
}

unsafe extern "C" fn on_finalize(r: *mut ngx_http_request_t, data: *mut c_void, rc: ngx_int_t) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx calls it with the subrequest and our Slot.
        unsafe { finalize(r, &*(data as *const Slot), rc) }
    })
}

unsafe fn finalize(r: *mut ngx_http_request_t, s: &Slot, rc: ngx_int_t) -> ngx_int_t {
    // SAFETY: `r` is a live request (callers' duty)
    let c = unsafe { (*r).connection };
    if s.finished.replace(true) {
        // SAFETY: `c` is the live connection of request `r`
        unsafe {
            (*c).data = r.cast();
        }
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: `r` is a live request (callers' duty)
    let mut status = unsafe { (*r).headers_out.status } as ngx_int_t;
    if status == 0 {
        status = match rc {
            x if x == NGX_OK as ngx_int_t => NGX_HTTP_OK as ngx_int_t,
            x if x == NGX_ERROR as ngx_int_t => NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
            x => x,
        };
    }
    let mut out = rc;
    // An error status before any output: the response is that status alone.
    let mut error_page = false;
    if special(rc) {
        // SAFETY: `r` is a live request (callers' duty)
        if rc > NGX_OK as ngx_int_t && unsafe { (*r).header_sent() } == 0 {
            error_page = true;
            // SAFETY: `r` is a live request (callers' duty)
            unsafe {
                (*r).err_status = rc as _;
                (*r).set_expect_tested(1);
                (*r).headers_out.content_type.len = 0;
                (*r).headers_out.content_length_n = 0;
                ngx_http_send_header(r);
            }
        }
        // Keeps nginx from sending its error page, or from ending the main
        // request for an error in this one.
        out = NGX_OK as ngx_int_t;
    }
    {
        let mut responses = s.group.responses.borrow_mut();
        let resp = &mut responses[s.index];
        resp.status = if status >= 100 { status } else { 0 };
        resp.sr = NonNull::new(r);
        // SAFETY: `r` is a live request (callers' duty)
        resp.truncated =
            resp.over_limit || !(resp.seen_last || error_page || unsafe { (*r).header_only() } != 0);
    }
    // Let nginx complete the subrequest now and post its parent.
    // SAFETY: `c` is the live connection of request `r`
    unsafe {
        (*c).data = r.cast();
    }
    let g = &s.group;
    g.pending.set(g.pending.get() - 1);
    if g.pending.get() == 0 {
        g.release();
    }
    if g.pending.get() == 0 && g.waiter.get().is_some() {
        with_ready(|q| q.push(g.clone()));
        // SAFETY: `g.pr` is the live parent request, which waits for its captures
        unsafe {
            (*g.pr).write_event_handler = Some(on_parent_posted);
        }
    }
    out
}

/// The response headers of `r`, including those nginx keeps out of the
/// list; the values nginx only holds as numbers are written into its pool.
unsafe fn headers(r: *mut ngx_http_request_t) -> SmallVec<[(ngx_str_t, ngx_str_t); 8]> {
    // SAFETY: `r` is a live request (callers' duty)
    let (ho, pool) = unsafe { (&(*r).headers_out, (*r).pool) };
    // SAFETY: `ho.headers` is the live request's initialised header list
    let elts = unsafe { list::elts::<ngx_table_elt_t>(&ho.headers) };
    let mut out: SmallVec<[(ngx_str_t, ngx_str_t); 8]> = SmallVec::new();
    for h in elts {
        // SAFETY: `elts` yields live elements of the list
        if unsafe { (*h).hash } != 0 {
            // SAFETY: as above
            out.push(unsafe { ((*h).key, (*h).value) });
        }
    }
    let mut set = |k: &'static [u8], v: Option<ngx_str_t>| {
        let Some(v) = v else { return };
        out.retain(|(key, _)| !key.as_bytes().eq_ignore_ascii_case(k));
        out.push((
            ngx_str_t {
                len: k.len(),
                data: k.as_ptr().cast_mut(),
            },
            v,
        ));
    };
    if ho.content_type.len > 0 {
        set(b"Content-Type", Some(ho.content_type));
    }
    if ho.content_length.is_null() && ho.content_length_n >= 0 {
        let mut digits = [0u8; 20];
        let n = decimal(ho.content_length_n as u64, &mut digits);
        // SAFETY: `pool` is the live request's
        set(b"Content-Length", unsafe { pool_str(pool, n) });
    }
    // SAFETY: a non-null `location` is a live element of the response headers
    if !ho.location.is_null() && unsafe { (*ho.location).value.len } > 0 {
        // SAFETY: as above
        set(b"Location", Some(unsafe { (*ho.location).value }));
    }
    let fresh = [200, 206, 304, 204].contains(&(ho.status as i64));
    if ho.last_modified.is_null() && ho.last_modified_time != -1 && fresh {
        // SAFETY: `pool` is the live request's; ngx_http_time writes the 29
        // bytes of an HTTP date there.
        set(b"Last-Modified", unsafe {
            let p = nginx_sys::ngx_pnalloc(pool, 29) as *mut u8;
            (!p.is_null()).then(|| ngx_str_t {
                len: nginx_sys::ngx_http_time(p, ho.last_modified_time).offset_from(p) as usize,
                data: p,
            })
        });
    }
    out
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The wait of the thread that issued the subrequests (kept inline in its
/// thread, scheduler::Pending).
pub struct CaptureWait {
    group: Rc<Group>,
}

impl Wait for CaptureWait {
    fn is_subrequest(&self) -> bool {
        true
    }
}

impl Drop for CaptureWait {
    fn drop(&mut self) {
        let g = &self.group;
        g.release();
        g.waiter.set(None);
        let others = with_ready(|q| {
            q.retain(|x| !Rc::ptr_eq(x, g));
            q.iter().any(|x| x.pr == g.pr)
        })
        .unwrap_or(false);
        // SAFETY: the parent outlives its waits (dropped at the latest by its
        // pool cleanup, before its memory goes).
        unsafe {
            if !others
                && (*g.pr).write_event_handler.map(|f| f as *const () as usize)
                    == Some(on_parent_posted as *const () as usize)
            {
                (*g.pr).write_event_handler = Some(ngx_http_request_empty_handler);
            }
        }
    }
}

/// Makes `co` of `ctx` wait for the subrequests of `group` (which keeps
/// `ctx` as a raw pointer until the wait drops).
pub fn arm(ctx: &mut RequestCtx, co: *mut lua_State, group: Rc<Group>) -> CaptureWait {
    group.waiter.set(Some((ctx as *mut RequestCtx, co)));
    if group.pending.get() > 0 {
        group.counted.set(true);
        ctx.captures_pending += 1;
    }
    CaptureWait { group }
}

unsafe extern "C" fn on_parent_posted(r: *mut ngx_http_request_t) {
    crate::glue::catch((), || {
        // SAFETY: nginx runs the write handler of a live request.
        unsafe { resume(r) }
    })
}

unsafe fn resume(r: *mut ngx_http_request_t) {
    let group = with_ready(|q| {
        let i = q.iter().position(|g| g.pr == r)?;
        Some(q.remove(i))
    })
    .flatten();
    // SAFETY: `r` is a live request (callers' duty)
    unsafe {
        (*r).write_event_handler = Some(ngx_http_request_empty_handler);
    }
    let Some(group) = group else { return };
    let Some((ctx, co)) = group.waiter.get() else {
        return;
    };
    // SAFETY: the waiter's context is alive while its request waits (the group holds it)
    let mine = unsafe { (*ctx).take_wait(co) };
    // Before waking: the request may be gone when wake returns.
    drop(mine);
    // Several threads' captures may have completed before nginx ran this
    // handler once: come back for the next one after this wake.
    if with_ready(|q| q.iter().any(|g| g.pr == r)) == Some(true) {
        // SAFETY: `r` is a live request (callers' duty)
        unsafe {
            (*r).write_event_handler = Some(on_parent_posted);
            ngx_http_post_request(r, std::ptr::null_mut());
        }
    }
    let n = {
        let mut responses = group.responses.borrow_mut();
        for resp in responses.iter_mut() {
            // SAFETY: `co` is the waiting thread, alive while it waits
            unsafe { push_response(co, resp) };
            // SAFETY: the body is in the live request's pool
            unsafe { resp.body.free((*r).pool) };
        }
        responses.len()
    };
    // SAFETY: `ctx` and `co` are the live waiting context and thread
    unsafe { wake(ctx, co, n as i32) };
}

unsafe fn push_response(l: *mut lua_State, resp: &Response) {
    // SAFETY: a finished subrequest lives as long as its parent's pool
    let headers = resp
        .sr
        .map(|sr| unsafe { headers(sr.as_ptr()) })
        .unwrap_or_default();
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_createtable(l, 0, 4);
        ffi::lua_pushinteger(l, resp.status as _);
        crate::lua::set_raw(l, -2, c"status");
        ffi::lua_pushboolean(l, resp.truncated as _);
        crate::lua::set_raw(l, -2, c"truncated");
        push_bytes(l, resp.body.as_slice());
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        crate::lua::set_raw(l, -2, c"body");
        ffi::lua_createtable(l, 0, headers.len() as i32);
    }
    for (k, v) in &headers {
        // The strings are in the live parent's pool (Response::headers).
        let (k, v) = (k.as_bytes(), v.as_bytes());
        // SAFETY: `l` is the running state (callers' duty)
        unsafe {
            push_bytes(l, k);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawget(l, -3);
        }
        // SAFETY: `l` is the running state (callers' duty)
        match unsafe { ffi::lua_type(l, -1) } {
            ffi::LUA_TNIL => {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe {
                    ffi::lua_pop(l, 1);
                    push_bytes(l, v);
                    ffi::lua_rawset(l, -3);
                }
            }
            ffi::LUA_TTABLE => {
                // SAFETY: `l` is the running state (callers' duty)
                let len = unsafe { ffi::lua_objlen(l, -1) };
                // SAFETY: `l` is the running state (callers' duty)
                unsafe {
                    push_bytes(l, v);
                    ffi::lua_rawseti(l, -2, len as ffi::lua_Integer + 1);
                    ffi::lua_pop(l, 2);
                }
            }
            _ => {
                // A second value: the header becomes an array.
                // SAFETY: `l` is the running state (callers' duty)
                unsafe {
                    ffi::lua_createtable(l, 2, 0);
                    ffi::lua_insert(l, -2);
                    ffi::lua_rawseti(l, -2, 1);
                    push_bytes(l, v);
                    ffi::lua_rawseti(l, -2, 2);
                    ffi::lua_rawset(l, -3);
                }
            }
        }
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { crate::lua::set_raw(l, -2, c"header") };
}
