//! The Lua C-API calls that create objects, made safe to call from Rust.
//!
//! Every call that creates a Lua object (`lua_pushlstring`,
//! `lua_createtable`, `lua_newuserdata`, `lua_pushcclosure`,
//! `lua_newthread`, `lua_tolstring` on a number, and the loaders, which
//! check the collector after their protected parse) lets LuaJIT's garbage
//! collector take a step, and a step may run `__gc` finalizers
//! written in Lua. LuaJIT re-raises a finalizer's error at that point. From
//! a Rust frame the raise would reach `catch_unwind` and abort the worker.
//!
//! Finalizers set in the usual ways run protected and only log their
//! errors (`finalizers.lua`, which says why and which ways). For the rest
//! (a `__gc` stored with `rawset`, say), once Lua code could have set a
//! finalizer of its own (it called `newproxy` or `debug.setmetatable` on a
//! userdata: the wrappers note it), these calls run the creation in a
//! small C function under `lua_pcall`. Before that the raw call is safe,
//! and costs nothing more: the protected call costs some 600 instructions.
//! A finalizer's error is kept (the first one per guarded call) and the
//! creation is retried: the failing finalizer has left the GC's list, so
//! the retry makes progress. The caller sees the object it asked for, and
//! the guard raises the kept error once the body's frame is gone, which is
//! where the C module's raise would have surfaced too. Outside any guard
//! (a phase handler pushing arguments) nobody can receive the error, so it
//! is logged.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};

use mlua::ffi as raw;

use super::lua_State;
use super::lua_source;
use crate::glue::log;
use crate::glue::loop_local::loop_local;

/// What the protected creator makes; results are written back into it.
enum Op {
    String(*const c_char, usize),
    Table(c_int, c_int),
    Userdata(usize, *mut c_void),
    Thread(*mut lua_State),
    Closure(raw::lua_CFunction, c_int),
    /// Converts the copy of a number passed as the argument.
    ToString,
    /// `luaL_loadbuffer(code, len, chunk name)`; the status is written back.
    LoadBuffer(*const c_char, usize, *const c_char, c_int),
    /// `luaL_loadfile(path)`; the status is written back.
    LoadFile(*const c_char, c_int),
}

/// Registry key of the kept finalizer error.
static PENDING_KEY: u8 = 0;

/// Tries per creation while finalizers keep failing. Each failed try used
/// up one finalizer (LuaJIT marks an object finalized before calling its
/// `__gc`), so the loop usually ends when the queue does. Finalizers that
/// keep creating failing objects would keep it going: after this many
/// tries the object is created with the collector stopped (so no finalizer
/// runs during that call, and none can raise), which bounds the work.
const MAX_TRIES: u32 = 64;

/// Finalizer errors logged per second at most when no guarded body can
/// take them (the rest are counted and reported with the next line): a
/// worker whose code keeps making failing finalizers must not spend its
/// time writing the log.
const LOG_PER_SECOND: u32 = 20;

// Per process rather than on the Vm: read on every object creation, also
// for a VM being built (Vm::new installs the API before that VM becomes
// the current one). A reload's new VM re-sets CREATOR_REF in `install`
// (push_creator checks it) and inherits ARMED, which only costs it the
// protected path. GUARDS describes the calls in progress.
// Per thread (ngx.run_worker_thread's VMs run API code on pool threads),
// without a thread-local access on the event loop's (see loop_local).
loop_local! {
    /// Could a Lua finalizer exist in the worker's VM?
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// The creator's registry reference in the worker's VM (0: none).
    static CREATOR_REF: Cell<c_int> = const { Cell::new(0) };
    /// The guarded bodies running: one value, as every guard reads both.
    static GUARDS: Guards = const { Guards { depth: Cell::new(0), pending_at: Cell::new(0) } };
    /// The second of the last logged finalizer error, the lines logged in
    /// it, and how many were not logged since.
    static LOG_SECOND: Cell<i64> = const { Cell::new(0) };
    static LOG_COUNT: Cell<u32> = const { Cell::new(0) };
    static LOG_SUPPRESSED: Cell<u64> = const { Cell::new(0) };
}

struct Guards {
    /// Depth of nested guarded bodies (finalizers may call the API).
    depth: Cell<u32>,
    /// The guard depth whose body the kept error belongs to; 0: none.
    pending_at: Cell<u32>,
}

/// What `run` leaves to its caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// The object is on top.
    Created,
    /// The caller makes the object with the raw call.
    Raw,
    /// As `Raw`, with the collector stopped so that no finalizer can raise
    /// in that call: `restart` starts it again.
    RawStopped,
}

fn key(k: &'static u8) -> *mut c_void {
    k as *const u8 as *mut c_void
}

/// The creator: argument 1 is the `Op`, the rest are closure upvalues.
unsafe extern "C-unwind" fn create(l: *mut lua_State) -> isize {
    // SAFETY: `run` passes a live `Op` as light userdata and the stack
    // holds what the op consumes; nothing here can panic.
    unsafe {
        let op = raw::lua_touserdata(l, 1) as *mut Op;
        match &mut *op {
            Op::String(s, len) => {
                raw::lua_pushlstring_(l, *s, *len);
            }
            Op::Table(a, h) => raw::lua_createtable(l, *a, *h),
            Op::Userdata(size, out) => *out = raw::lua_newuserdata(l, *size),
            Op::Thread(out) => *out = raw::lua_newthread(l),
            Op::Closure(f, n) => raw::lua_pushcclosure(l, *f, *n),
            Op::ToString => {
                raw::lua_tolstring(l, 2, std::ptr::null_mut());
                raw::lua_pushvalue(l, 2);
            }
            Op::LoadBuffer(code, len, name, status) => *status = raw::luaL_loadbuffer(l, *code, *len, *name),
            Op::LoadFile(path, status) => *status = raw::luaL_loadfile(l, *path),
        }
    }
    1
}

fn creator() -> raw::lua_CFunction {
    c_function(create)
}

/// Wraps the ways Lua code sets finalizers (see the file): they run
/// protected, and the first use arms the protected creation. Called with
/// the arming and the reporting C functions.
const WRAPPERS: &[u8] = lua_source!("finalizers.lua");

unsafe extern "C-unwind" fn arm(_l: *mut lua_State) -> isize {
    ARMED.set(true);
    0
}

/// Logs the error of a protected finalizer: argument 1, a string or nil.
unsafe extern "C-unwind" fn report(l: *mut lua_State) -> isize {
    // SAFETY: Lua calls this with its state; `log_error` pops what it reads.
    unsafe {
        raw::lua_settop(l, 1);
        log_error(l);
    }
    0
}

/// Casts one of the C functions here to the type Lua takes.
fn c_function(f: unsafe extern "C-unwind" fn(*mut lua_State) -> isize) -> raw::lua_CFunction {
    // SAFETY: same ABI; the isize result fills rax whole (see lua_fns!).
    unsafe {
        std::mem::transmute::<unsafe extern "C-unwind" fn(*mut lua_State) -> isize, raw::lua_CFunction>(f)
    }
}

/// Installs the creator and the finalizer wrappers into a new VM.
///
/// # Safety
/// `l` must be a main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: a valid main state; no finalizer of user code exists yet, and
    // the wrappers run protected.
    unsafe {
        raw::lua_pushcclosure(l, creator(), 0);
        CREATOR_REF.set(raw::luaL_ref(l, raw::LUA_REGISTRYINDEX));
        if raw::luaL_loadbuffer(
            l,
            WRAPPERS.as_ptr().cast(),
            WRAPPERS.len(),
            c"=ngx_lua_gc".as_ptr(),
        ) != 0
        {
            return Err(super::vm::pop_message(l));
        }
        raw::lua_pushcclosure(l, c_function(arm), 0);
        raw::lua_pushcclosure(l, c_function(report), 0);
        if raw::lua_pcall(l, 2, 0, 0) != 0 {
            return Err(super::vm::pop_message(l));
        }
    }
    Ok(())
}

/// Runs `op` protected; `nvals` values on top of the stack are its inputs
/// (copied, so a retry has them). Leaves the result on top when it says
/// `Created`.
#[inline]
unsafe fn run(l: *mut lua_State, op: &mut Op, nvals: c_int) -> Ran {
    if !ARMED.get() {
        return Ran::Raw;
    }
    // SAFETY: callers' contract.
    unsafe { run_armed(l, op, nvals) }
}

/// `run` once a finalizer of Lua code may exist.
///
/// # Safety
/// As `run`.
unsafe fn run_armed(l: *mut lua_State, op: &mut Op, nvals: c_int) -> Ran {
    // SAFETY: `l` is valid (callers' contract); only non-raising calls.
    unsafe {
        if raw::lua_checkstack(l, nvals + 3) == 0 || !push_creator(l) {
            return stop(l);
        }
        // Stack: inputs, creator. Each try calls copies of both.
        let func = raw::lua_gettop(l);
        let inputs = func - nvals;
        for _ in 0..MAX_TRIES {
            raw::lua_pushvalue(l, func);
            raw::lua_pushlightuserdata(l, (op as *mut Op).cast());
            for i in 0..nvals {
                raw::lua_pushvalue(l, inputs + i);
            }
            match raw::lua_pcall(l, nvals + 1, 1, 0) {
                raw::LUA_OK => {
                    raw::lua_replace(l, inputs);
                    raw::lua_settop(l, inputs);
                    return Ran::Created;
                }
                raw::LUA_ERRMEM => {
                    raw::lua_pop(l, 1);
                    raw::lua_settop(l, func - 1);
                    return Ran::Raw;
                }
                _ => keep(l),
            }
        }
        // Still failing: once more with the collector stopped. Without a
        // collection step no finalizer runs, so only a memory error can
        // fail the call (then the caller's raw call reports it).
        raw::lua_gc(l, raw::LUA_GCSTOP, 0);
        raw::lua_pushvalue(l, func);
        raw::lua_pushlightuserdata(l, (op as *mut Op).cast());
        for i in 0..nvals {
            raw::lua_pushvalue(l, inputs + i);
        }
        let rc = raw::lua_pcall(l, nvals + 1, 1, 0);
        if rc == raw::LUA_OK {
            raw::lua_gc(l, raw::LUA_GCRESTART, 0);
            raw::lua_replace(l, inputs);
            raw::lua_settop(l, inputs);
            return Ran::Created;
        }
        // Not a finalizer (none runs now): the call itself failed, as when
        // the Lua stack is at its limit and no C function can be called
        // (deep error handler recursion). The raw call needs no call frame;
        // with the collector still stopped no finalizer can raise in it.
        raw::lua_settop(l, func - 1);
        Ran::RawStopped
    }
}

/// The raw call after a failed `run` must not let a finalizer raise into
/// the Rust frame: the collector is stopped until `restart`.
///
/// # Safety
/// `l` must be a valid state.
unsafe fn stop(l: *mut lua_State) -> Ran {
    // SAFETY: `l` is valid (caller's contract); lua_gc does not raise
    unsafe { raw::lua_gc(l, raw::LUA_GCSTOP, 0) };
    Ran::RawStopped
}

/// Starts the collector again after the raw call `run` left it stopped for.
///
/// # Safety
/// `l` must be a valid state.
#[inline]
unsafe fn restart(l: *mut lua_State, ran: Ran) {
    if ran == Ran::RawStopped {
        // SAFETY: `l` is valid (caller's contract); lua_gc does not raise
        unsafe { raw::lua_gc(l, raw::LUA_GCRESTART, 0) };
    }
}

/// Pushes the creator from the registry; false (nothing pushed) before
/// `install` ran on this state.
unsafe fn push_creator(l: *mut lua_State) -> bool {
    let r = CREATOR_REF.get();
    // SAFETY: a valid state; a registry read.
    unsafe {
        if r > 0 {
            raw::lua_rawgeti(l, raw::LUA_REGISTRYINDEX, r as raw::lua_Integer);
            let found = raw::lua_tocfunction(l, -1);
            if found.is_some_and(|f| std::ptr::fn_addr_eq(f, creator())) {
                return true;
            }
            raw::lua_pop(l, 1);
        }
    }
    false
}

/// Keeps the error on top of `l` (popping it) for the running guard, or
/// logs it when no guarded body is running.
unsafe fn keep(l: *mut lua_State) {
    let (depth, pending_at) = GUARDS.with(|g| (g.depth.get(), g.pending_at.get()));
    // SAFETY: the error value is on top of a valid state.
    unsafe {
        if depth == 0 {
            log_error(l);
            return;
        }
        if pending_at != 0 {
            raw::lua_pop(l, 1);
            return;
        }
        GUARDS.with(|g| g.pending_at.set(depth));
        raw::lua_pushlightuserdata(l, key(&PENDING_KEY));
        raw::lua_insert(l, -2);
        raw::lua_rawset(l, raw::LUA_REGISTRYINDEX);
    }
}

/// Logs the finalizer error on top of `l` (a string, or not) and pops it,
/// unless too many were logged this second.
///
/// # Safety
/// `l` must be a valid state with the error on top.
unsafe fn log_error(l: *mut lua_State) {
    // SAFETY: the error value is on top of a valid state.
    unsafe {
        if !log_allowed() {
            raw::lua_pop(l, 1);
            return;
        }
        // Logged before the pop: the bytes are the string's on the stack.
        let msg = log::Lossy(super::to_bytes(l, -1).unwrap_or(b"(error object is not a string)"));
        let skipped = LOG_SUPPRESSED.replace(0);
        if skipped > 0 {
            log::log_error!(
                log::cycle_log(),
                nginx_sys::NGX_LOG_ERR,
                "error in __gc metamethod: {msg} ({skipped} more not logged)"
            );
        } else {
            log::log_error!(
                log::cycle_log(),
                nginx_sys::NGX_LOG_ERR,
                "error in __gc metamethod: {msg}"
            );
        }
        raw::lua_pop(l, 1);
    }
}

/// Whether one more finalizer error may be logged this second; counts the
/// ones that may not.
fn log_allowed() -> bool {
    // SAFETY: nginx keeps ngx_cached_time pointing at a valid time slot.
    let now: i64 = unsafe { (*nginx_sys::ngx_cached_time).sec };
    if LOG_SECOND.get() != now {
        LOG_SECOND.set(now);
        LOG_COUNT.set(0);
    }
    if LOG_COUNT.get() >= LOG_PER_SECOND {
        LOG_SUPPRESSED.set(LOG_SUPPRESSED.get() + 1);
        return false;
    }
    LOG_COUNT.set(LOG_COUNT.get() + 1);
    true
}

/// Is an error kept for the running guarded body?
pub fn pending() -> bool {
    GUARDS.with(|g| {
        let depth = g.depth.get();
        depth != 0 && g.pending_at.get() == depth
    })
}

/// Marks the start of a guarded body. Inlined, as `leave`: every API call
/// passes both.
#[inline]
pub fn enter() {
    GUARDS.with(|g| g.depth.set(g.depth.get() + 1));
}

/// Marks the end of a guarded body; pushes the finalizer error kept while
/// it ran and returns true, if there is one.
///
/// # Safety
/// `l` must be a valid state.
#[inline]
pub unsafe fn leave(l: *mut lua_State) -> bool {
    let kept = GUARDS.with(|g| {
        let depth = g.depth.get();
        g.depth.set(depth.saturating_sub(1));
        depth != 0 && g.pending_at.get() == depth
    });
    if !kept {
        return false;
    }
    // SAFETY: `l` is valid (caller's contract)
    unsafe { push_pending(l) }
}

/// `leave`'s rare part: a finalizer error was kept while the body ran.
///
/// # Safety
/// `l` must be a valid state.
#[cold]
unsafe fn push_pending(l: *mut lua_State) -> bool {
    GUARDS.with(|g| g.pending_at.set(0));
    // SAFETY: a valid state; registry access with a light userdata key.
    unsafe {
        raw::lua_pushlightuserdata(l, key(&PENDING_KEY));
        raw::lua_rawget(l, raw::LUA_REGISTRYINDEX);
        raw::lua_pushlightuserdata(l, key(&PENDING_KEY));
        raw::lua_pushnil(l);
        raw::lua_rawset(l, raw::LUA_REGISTRYINDEX);
    }
    true
}

/// `lua_pushlstring`.
///
/// # Safety
/// `l` must be a valid state; `s` must point to `len` readable bytes.
pub unsafe fn push_lstring(l: *mut lua_State, s: *const c_char, len: usize) {
    let mut op = Op::String(s, len);
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, 0);
        if ran != Ran::Created {
            raw::lua_pushlstring_(l, s, len);
            restart(l, ran);
        }
    }
}

/// `lua_pushstring` of a NUL-terminated string.
///
/// # Safety
/// `l` must be a valid state; `s` a NUL-terminated string.
pub unsafe fn push_string(l: *mut lua_State, s: *const c_char) {
    // SAFETY: callers' contract.
    unsafe {
        if s.is_null() {
            raw::lua_pushnil(l);
        } else {
            push_lstring(l, s, libc::strlen(s));
        }
    }
}

/// `lua_createtable`.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn create_table(l: *mut lua_State, narr: c_int, nrec: c_int) {
    let mut op = Op::Table(narr, nrec);
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, 0);
        if ran != Ran::Created {
            raw::lua_createtable(l, narr, nrec);
            restart(l, ran);
        }
    }
}

/// `lua_newuserdata`.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn new_userdata(l: *mut lua_State, size: usize) -> *mut c_void {
    let mut op = Op::Userdata(size, std::ptr::null_mut());
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, 0);
        if ran != Ran::Created {
            let p = raw::lua_newuserdata(l, size);
            restart(l, ran);
            return p;
        }
    }
    match op {
        Op::Userdata(_, p) => p,
        _ => std::ptr::null_mut(),
    }
}

/// `lua_newthread`.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn new_thread(l: *mut lua_State) -> *mut lua_State {
    let mut op = Op::Thread(std::ptr::null_mut());
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, 0);
        if ran != Ran::Created {
            let co = raw::lua_newthread(l);
            restart(l, ran);
            return co;
        }
    }
    match op {
        Op::Thread(t) => t,
        _ => std::ptr::null_mut(),
    }
}

/// `lua_pushcclosure`: pops `n` upvalues.
///
/// # Safety
/// `l` must be a valid state with `n` values on top.
pub unsafe fn push_closure(l: *mut lua_State, f: raw::lua_CFunction, n: c_int) {
    let mut op = Op::Closure(f, n);
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, n);
        if ran != Ran::Created {
            raw::lua_pushcclosure(l, f, n);
            restart(l, ran);
        }
    }
}

/// `lua_tolstring`: converts a number at `idx` to a string in place first.
///
/// # Safety
/// `l` must be a valid state and `idx` an acceptable index.
pub unsafe fn to_lstring(l: *mut lua_State, idx: c_int, len: *mut usize) -> *const c_char {
    // SAFETY: callers' contract.
    unsafe {
        if raw::lua_type(l, idx) == raw::LUA_TNUMBER {
            let idx = super::abs_index(l, idx);
            raw::lua_pushvalue(l, idx);
            let ran = run(l, &mut Op::ToString, 1);
            if ran == Ran::Created {
                raw::lua_replace(l, idx);
            } else {
                raw::lua_pop(l, 1);
            }
            let p = raw::lua_tolstring(l, idx, len);
            restart(l, ran);
            return p;
        }
        raw::lua_tolstring(l, idx, len)
    }
}

/// `luaL_loadbuffer`: the status, and the function or the message on top.
///
/// # Safety
/// `l` must be a valid state; `code` must point to `len` bytes and `name`
/// to a NUL-terminated string.
pub unsafe fn load_buffer(l: *mut lua_State, code: *const c_char, len: usize, name: *const c_char) -> c_int {
    let mut op = Op::LoadBuffer(code, len, name, 0);
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, 0);
        if ran != Ran::Created {
            let rc = raw::luaL_loadbuffer(l, code, len, name);
            restart(l, ran);
            return rc;
        }
    }
    match op {
        Op::LoadBuffer(.., status) => status,
        _ => raw::LUA_ERRRUN,
    }
}

/// `luaL_loadfile`: the status, and the function or the message on top.
///
/// # Safety
/// `l` must be a valid state; `path` a NUL-terminated string.
pub unsafe fn load_file(l: *mut lua_State, path: *const c_char) -> c_int {
    let mut op = Op::LoadFile(path, 0);
    // SAFETY: callers' contract.
    unsafe {
        let ran = run(l, &mut op, 0);
        if ran != Ran::Created {
            let rc = raw::luaL_loadfile(l, path);
            restart(l, ran);
            return rc;
        }
    }
    match op {
        Op::LoadFile(_, status) => status,
        _ => raw::LUA_ERRRUN,
    }
}
