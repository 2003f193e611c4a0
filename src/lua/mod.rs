//! The Lua leaf: thin helpers over the raw Lua C API for the `ngx.*`
//! functions, and the VM (`vm.rs`). Nothing here knows nginx or the API.
//!
//! API functions are plain `lua_CFunction`s: errors must reach Lua as strings
//! with a `chunk:line:` prefix (what lua-nginx-module raises and what Lua code
//! matches on), and waiting calls must be able to `lua_yield`.
//!
//! LuaJIT raises errors by unwinding the C stack. A raise that starts while
//! a Rust frame is live reaches `catch_unwind` in [`guard`] as a foreign
//! exception and aborts the worker. So the rest of the crate sees only the
//! curated [`ffi`] below, which has no function that can raise (other than
//! on memory exhaustion): no `lua_getfield`, `lua_call`, `lua_error`,
//! `luaL_check*`... Metamethods run through the protected helpers of this
//! file ([`get_field`], [`set_field`], [`to_display`]), and the one raise
//! happens in [`guard`] once the body's frame is gone. `scripts/lint.sh`
//! fails when another file reaches `mlua::ffi` directly.

pub mod alloc;
mod protected;
pub mod traceback;
pub mod vm;
pub mod xcopy;

use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use self::alloc as lua_alloc;

pub use mlua::ffi::lua_State;

/// Creating and closing a state, which only `vm.rs` does.
mod lifecycle {
    pub use mlua::ffi::{lua_close, luaL_newstate, luaL_openlibs};
}
pub use protected::{get_field, set_field, to_display};

/// The non-raising part of the Lua C API. The calls that create objects
/// are the protected versions of `lua_alloc` under their usual names.
pub mod ffi {
    // The whole non-raising API, whether used yet or not.
    #[allow(unused_imports)]
    pub use mlua::ffi::{
        LUA_GLOBALSINDEX, LUA_MULTRET, LUA_NOREF, LUA_OK, LUA_REGISTRYINDEX, LUA_TBOOLEAN, LUA_TFUNCTION,
        LUA_TLIGHTUSERDATA, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, LUA_TUSERDATA,
        LUA_YIELD, lua_CFunction, lua_Debug, lua_Integer, lua_State, lua_checkstack, lua_getinfo,
        lua_getmetatable, lua_getstack, lua_gettop, lua_insert, lua_isfunction, lua_isnil, lua_isnoneornil,
        lua_isnumber, lua_isstring, lua_istable, lua_next, lua_objlen, lua_pcall, lua_pop, lua_pushboolean,
        lua_pushinteger, lua_pushlightuserdata, lua_pushnil, lua_pushnumber, lua_pushthread, lua_pushvalue,
        lua_rawequal, lua_rawget, lua_rawgeti, lua_rawset, lua_rawseti, lua_remove, lua_replace, lua_resume,
        lua_setmetatable, lua_settop, lua_status, lua_toboolean, lua_tointeger, lua_tonumber, lua_topointer,
        lua_tothread, lua_touserdata, lua_type, lua_typename, lua_upvalueindex, lua_xmove, luaL_ref,
        luaL_unref,
    };
    use std::ffi::{c_char, c_int, c_void};

    use super::alloc;

    /// # Safety
    /// As `lua_createtable`.
    pub unsafe fn lua_createtable(l: *mut lua_State, narr: c_int, nrec: c_int) {
        // SAFETY: the caller keeps lua_createtable's contract (see # Safety)
        unsafe { alloc::create_table(l, narr, nrec) }
    }
    /// # Safety
    /// As `lua_newuserdata`.
    pub unsafe fn lua_newuserdata(l: *mut lua_State, size: usize) -> *mut c_void {
        // SAFETY: the caller keeps lua_newuserdata's contract (see # Safety)
        unsafe { alloc::new_userdata(l, size) }
    }
    /// # Safety
    /// As `lua_newthread`.
    pub unsafe fn lua_newthread(l: *mut lua_State) -> *mut lua_State {
        // SAFETY: the caller keeps lua_newthread's contract (see # Safety)
        unsafe { alloc::new_thread(l) }
    }
    /// # Safety
    /// As `lua_pushcclosure`.
    pub unsafe fn lua_pushcclosure(l: *mut lua_State, f: lua_CFunction, n: c_int) {
        // SAFETY: the caller keeps lua_pushcclosure's contract (see # Safety)
        unsafe { alloc::push_closure(l, f, n) }
    }
    /// # Safety
    /// As `lua_pushcfunction`.
    pub unsafe fn lua_pushcfunction(l: *mut lua_State, f: lua_CFunction) {
        // SAFETY: the caller keeps lua_pushcfunction's contract (see # Safety)
        unsafe { alloc::push_closure(l, f, 0) }
    }
    /// # Safety
    /// As `lua_pushlstring`.
    pub unsafe fn lua_pushlstring(l: *mut lua_State, s: *const c_char, len: usize) {
        // SAFETY: the caller keeps lua_pushlstring's contract (see # Safety)
        unsafe { alloc::push_lstring(l, s, len) }
    }
    /// # Safety
    /// As `lua_pushstring`.
    pub unsafe fn lua_pushstring(l: *mut lua_State, s: *const c_char) {
        // SAFETY: the caller keeps lua_pushstring's contract (see # Safety)
        unsafe { alloc::push_string(l, s) }
    }
    /// # Safety
    /// As `lua_tolstring`.
    pub unsafe fn lua_tolstring(l: *mut lua_State, idx: c_int, len: *mut usize) -> *const c_char {
        // SAFETY: the caller keeps lua_tolstring's contract (see # Safety)
        unsafe { alloc::to_lstring(l, idx, len) }
    }
    /// # Safety
    /// As `luaL_loadbuffer`.
    #[allow(non_snake_case)]
    pub unsafe fn luaL_loadbuffer(
        l: *mut lua_State,
        code: *const c_char,
        len: usize,
        name: *const c_char,
    ) -> c_int {
        // SAFETY: the caller keeps luaL_loadbuffer's contract (see # Safety)
        unsafe { alloc::load_buffer(l, code, len, name) }
    }
    /// # Safety
    /// As `luaL_loadfile`.
    #[allow(non_snake_case)]
    pub unsafe fn luaL_loadfile(l: *mut lua_State, path: *const c_char) -> c_int {
        // SAFETY: the caller keeps luaL_loadfile's contract (see # Safety)
        unsafe { alloc::load_file(l, path) }
    }
}

/// A new bare Lua state with the standard libraries and nothing of ours:
/// `ngx.run_worker_thread`'s VMs, which run on nginx's pool threads. Null
/// when out of memory.
///
/// # Safety
/// The state must be closed with [`close_state`], by one thread at a time.
pub unsafe fn new_bare_state() -> *mut lua_State {
    // SAFETY: a fresh state; opening the libraries raises only when out of
    // memory, and nothing of Rust's is on this state yet.
    unsafe {
        let l = mlua::ffi::luaL_newstate();
        if !l.is_null() {
            mlua::ffi::luaL_openlibs(l);
        }
        l
    }
}

/// Closes a state made by [`new_bare_state`].
///
/// # Safety
/// `l` must come from [`new_bare_state`] and not be running.
pub unsafe fn close_state(l: *mut lua_State) {
    // SAFETY: the caller's contract; its finalizers run protected.
    unsafe { mlua::ffi::lua_close(l) }
}

/// The raising calls, for this file only.
mod raising {
    pub use mlua::ffi::{lua_concat, lua_error, lua_yield, luaL_argerror, luaL_where};
}

unsafe extern "C-unwind" {
    /// LuaJIT 2.1 exports Lua 5.3's check: false where `lua_yield` would
    /// raise "attempt to yield across C-call boundary".
    fn lua_isyieldable(l: *mut lua_State) -> c_int;
    /// OpenResty's LuaJIT2: the per-coroutine pointer `thread.exdata`
    /// returns; new coroutines inherit their creator's.
    fn lua_setexdata(l: *mut lua_State, exdata: *mut c_void);
    fn lua_getexdata(l: *mut lua_State) -> *mut c_void;
}

/// Sets what `require("thread.exdata")()` returns in coroutine `l` (and the
/// coroutines it creates): lua-nginx-module's current request.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn set_exdata(l: *mut lua_State, p: *mut c_void) {
    // SAFETY: `l` is a valid state (caller's contract)
    unsafe { lua_setexdata(l, p) }
}

/// The pointer [`set_exdata`] set on `l`.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn exdata(l: *mut lua_State) -> *mut c_void {
    // SAFETY: `l` is a valid state (caller's contract)
    unsafe { lua_getexdata(l) }
}

/// What an API function's body returns: the number of results it pushed,
/// [`YIELD`], or an error message raised as a Lua error once the body's
/// frame is gone.
pub type LuaRet = Result<c_int, String>;

/// The result count of a body that wants its coroutine to yield the one
/// value on top of its stack (see `scheduler::yield_wait`).
pub const YIELD: c_int = -1;

/// The error of a body whose Lua error value [`propagate`] kept, to be
/// raised as it is (a metamethod's error, not one of ours).
const PROPAGATED: &str = "\0lua error value";

/// The start of an error made by [`arg_error`].
const ARG_ERROR: &str = "\0bad argument\0";

/// A bad argument `n`, reported as luaL_argerror reports it: named after
/// the call site (`'?'` when pcall calls the function, the local name it
/// was called by, one less for a method call), as lua-nginx-module's C
/// functions that check with luaL_check* name themselves. [`guard`] makes
/// the message.
pub fn arg_error(n: c_int, extra: &str) -> String {
    format!("{ARG_ERROR}{n}\0{extra}")
}

/// Registry key of the error value [`propagate`] keeps.
static PROPAGATED_KEY: u8 = 0;

/// Runs an API function body, turning `Err` and panics into Lua errors.
///
/// # Safety
/// `l` must be the running Lua state that called the C function.
pub unsafe fn guard(l: *mut lua_State, body: unsafe fn(*mut lua_State) -> LuaRet) -> c_int {
    lua_alloc::enter();
    // SAFETY: `body` is an API body and `l` the running state Lua called us with
    let result = catch_unwind(AssertUnwindSafe(|| unsafe { body(l) }));
    // SAFETY: `l` is the running state; pairs with `enter` above
    if unsafe { lua_alloc::leave(l) } {
        // A finalizer failed while the body created objects: its error is
        // on top, and wins over the body's results (`yield_wait` dropped
        // the wait of a body that would yield).
        drop(result);
        // SAFETY: as the raise at the end.
        unsafe { raising::lua_error(l) };
    }
    let msg = match result {
        // SAFETY: the body's frame is gone; lua_yield may raise (no frame
        // of ours with a destructor is live), and `yield_wait` checked.
        Ok(Ok(YIELD)) => return unsafe { raising::lua_yield(l, 1) },
        Ok(Ok(n)) => return n,
        Ok(Err(msg)) => msg,
        Err(_) => "internal error (Rust panic in ngx_http_lua_module)".to_string(),
    };
    if msg == PROPAGATED {
        drop(msg);
        // SAFETY: `l` is the running state; `propagate` stored the value under this key
        unsafe { take_registry(l, &PROPAGATED_KEY) };
    } else if let Some((n, extra)) = msg.strip_prefix(ARG_ERROR).and_then(|m| m.split_once('\0')) {
        let n = n.parse().unwrap_or(1);
        // The text goes onto the stack (a Lua string ends in a NUL) before
        // `msg` is dropped; luaL_argerror copies it into its message.
        // SAFETY: `l` is the running state; the push raises only on OOM
        unsafe { push_bytes(l, extra.as_bytes()) };
        drop(msg);
        // SAFETY: the string just pushed is on top; no Rust value with a
        // destructor is alive in this frame; luaL_argerror raises (its
        // return value is never produced).
        return unsafe { raising::luaL_argerror(l, n, ffi::lua_tolstring(l, -1, std::ptr::null_mut())) };
    } else {
        // SAFETY: `l` is the running state; luaL_where and pushes raise only on OOM
        unsafe {
            raising::luaL_where(l, 1);
            push_bytes(l, msg.as_bytes());
        }
        drop(msg);
        // SAFETY: `l` has the position and the message on top
        unsafe { raising::lua_concat(l, 2) };
    }
    // SAFETY: no Rust value with a destructor is alive in this frame; the
    // error unwinds through "C-unwind" frames only.
    unsafe { raising::lua_error(l) }
}

/// Can the running coroutine `l` yield from the C function it is in? Not
/// when C code (`table.sort`, `string.gsub`, a `lua_pcall`) called the Lua
/// function that called us, nor on a main state.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn can_yield(l: *mut lua_State) -> bool {
    // SAFETY: `l` is a valid state (caller's contract); the call only reads it
    (unsafe { lua_isyieldable(l) }) != 0
}

/// Declares the `lua_CFunction`s of API bodies.
///
/// The functions return a sign-extended `isize` although Lua declares C
/// functions as returning `int`: the x86-64 ABI leaves the upper half of
/// `rax` undefined for an `int`, rustc does leave garbage there, and
/// LuaJIT (Debian's LuaJIT2 build) reads the whole register as the result
/// count. With `isize` every bit is defined and `eax` is the same value.
macro_rules! lua_fns {
    ($($name:ident => $body:path),* $(,)?) => {
        $(
            #[allow(non_upper_case_globals)]
            const $name: $crate::lua::ffi::lua_CFunction = {
                unsafe extern "C-unwind" fn raw(l: *mut $crate::lua::lua_State) -> isize {
                    // SAFETY: called by Lua with its own running state.
                    unsafe { $crate::lua::guard(l, $body) as isize }
                }
                // SAFETY: same calling convention; an isize return fills
                // rax whole, of which C callers read eax.
                unsafe {
                    ::std::mem::transmute::<
                        unsafe extern "C-unwind" fn(*mut $crate::lua::lua_State) -> isize,
                        $crate::lua::ffi::lua_CFunction,
                    >(raw)
                }
            };
        )*
    };
}
pub(crate) use lua_fns;

/// The bytes of one of our Lua files (a path relative to the invoking
/// file, as `include_bytes!`), kept together in the .so's `.lua_source`
/// section: VM creation reads them, which nginx does in the master, so a
/// worker's 64 KB blocks of constants stay clear of them (see "Code layout"
/// in docs/internals.md).
macro_rules! lua_source {
    ($path:literal) => {{
        // SAFETY: a section of ours that holds only these read-only bytes.
        #[unsafe(link_section = ".lua_source")]
        static SOURCE: [u8; include_bytes!($path).len()] = *include_bytes!($path);
        &SOURCE as &[u8]
    }};
}
pub(crate) use lua_source;

/// Keeps the error value on top of `l` (popping it) for [`guard`] to raise
/// unchanged; returns the body's `Err` for it.
///
/// # Safety
/// `l` must be a valid state with the error value on top.
pub unsafe fn propagate(l: *mut lua_State) -> String {
    // SAFETY: `l` is valid with the error value on top (caller's contract); raw calls on the registry
    unsafe {
        ffi::lua_pushlightuserdata(l, key_ptr(&PROPAGATED_KEY));
        ffi::lua_insert(l, -2);
        ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
    }
    PROPAGATED.to_string()
}

/// An error raised with `msg` as it is, without our `chunk:line:` prefix
/// (as LuaJIT raises its own errors from C functions).
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn raw_error(l: *mut lua_State, msg: &str) -> String {
    // SAFETY: `l` is a valid state (caller's contract)
    unsafe { push_bytes(l, msg.as_bytes()) };
    // SAFETY: the message was just pushed on top of `l`
    unsafe { propagate(l) }
}

/// `msg` raised with the position of the Lua function `level` calls above
/// the running C function, as lua-resty-core's `error(msg, level + 1)`
/// places it (no position when that frame is a C function or absent).
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn error_at_level(l: *mut lua_State, level: c_int, msg: &str) -> String {
    // SAFETY: lua_Debug is plain C data, all-zero is a valid value
    let mut ar: ffi::lua_Debug = unsafe { std::mem::zeroed() };
    let mut text = String::new();
    // SAFETY: `l` is valid (caller's contract) and `ar` is a live lua_Debug
    if unsafe { ffi::lua_getstack(l, level, &mut ar) } != 0
        // SAFETY: lua_getstack filled `ar` for a live frame of `l`
        && unsafe { ffi::lua_getinfo(l, c"Sl".as_ptr(), &mut ar) } != 0
        && ar.currentline > 0
    {
        // SAFETY: lua_getinfo filled short_src with a NUL-terminated string
        let src = unsafe { CStr::from_ptr(ar.short_src.as_ptr()) }.to_string_lossy();
        text = format!("{src}:{}: ", ar.currentline);
    }
    text.push_str(msg);
    // SAFETY: `l` is a valid state (caller's contract)
    unsafe { raw_error(l, &text) }
}

fn key_ptr(key: &'static u8) -> *mut c_void {
    key as *const u8 as *mut c_void
}

/// Pushes registry[key] and clears that slot.
unsafe fn take_registry(l: *mut lua_State, key: &'static u8) {
    // SAFETY: `l` is the running state; raw registry access cannot raise
    unsafe {
        ffi::lua_pushlightuserdata(l, key_ptr(key));
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
        ffi::lua_pushlightuserdata(l, key_ptr(key));
        ffi::lua_pushnil(l);
        ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
    }
}

/// The absolute form of stack index `idx`.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn abs_index(l: *mut lua_State, idx: c_int) -> c_int {
    if idx > 0 || idx <= ffi::LUA_REGISTRYINDEX {
        idx
    } else {
        // SAFETY: `l` is a valid state (caller's contract)
        (unsafe { ffi::lua_gettop(l) }) + idx + 1
    }
}

/// Makes room for `n` more values, or fails as LuaJIT would.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn check_stack(l: *mut lua_State, n: c_int) -> Result<(), String> {
    // SAFETY: `l` is a valid state (caller's contract)
    if unsafe { ffi::lua_checkstack(l, n) } == 0 {
        return Err("stack overflow".into());
    }
    Ok(())
}

/// Does the metatable of the value at `idx` have field `event`?
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn has_metamethod(l: *mut lua_State, idx: c_int, event: &CStr) -> bool {
    // SAFETY: `l` is a valid state (caller's contract)
    if unsafe { ffi::lua_getmetatable(l, idx) } == 0 {
        return false;
    }
    // SAFETY: lua_getmetatable pushed the metatable at -1
    unsafe { get_raw(l, -1, event) };
    // SAFETY: the field value is on top
    let found = unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TNIL;
    // SAFETY: pops the field value and the metatable pushed above
    unsafe { ffi::lua_pop(l, 2) };
    found
}

/// `t[name] = v` with `v` popped from the top, raw: for tables of ours.
///
/// # Safety
/// `l` must be a valid state with a table at `idx` and the value on top.
pub unsafe fn set_raw(l: *mut lua_State, idx: c_int, name: &CStr) {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `idx` holds a table and the value is on top (caller's contract)
    unsafe {
        ffi::lua_pushstring(l, name.as_ptr());
        ffi::lua_insert(l, -2);
        ffi::lua_rawset(l, idx);
    }
}

/// Pushes `t[name]`, raw: for tables of ours (the registry, `package`...).
///
/// # Safety
/// `l` must be a valid state with a table at `idx`.
pub unsafe fn get_raw(l: *mut lua_State, idx: c_int, name: &CStr) {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `idx` holds a table (caller's contract); rawget cannot raise
    unsafe {
        ffi::lua_pushstring(l, name.as_ptr());
        ffi::lua_rawget(l, idx);
    }
}

/// The full userdata at `idx` if its metatable is `registry[mt]`: how a
/// method tells its own objects from another type's.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn udata_of(l: *mut lua_State, idx: c_int, mt: &CStr) -> Option<*mut c_void> {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `l` is a valid state; both calls only read `idx`
    if unsafe { ffi::lua_type(l, idx) } != ffi::LUA_TUSERDATA || unsafe { ffi::lua_getmetatable(l, idx) } == 0
    {
        return None;
    }
    // SAFETY: the registry is a table; rawget cannot raise
    unsafe { get_raw(l, ffi::LUA_REGISTRYINDEX, mt) };
    // SAFETY: the value's metatable and registry[mt] are the two top values
    let ours = unsafe { ffi::lua_rawequal(l, -1, -2) } != 0;
    // SAFETY: pops the two values pushed above
    unsafe { ffi::lua_pop(l, 2) };
    // SAFETY: `idx` was checked to hold a full userdata
    ours.then(|| unsafe { ffi::lua_touserdata(l, idx) })
}

/// Pushes `registry[key]` for a light userdata key: the address of a
/// static of the caller's. Unlike a string name, the key needs no string
/// interning, which matters on paths that run at every method call.
///
/// # Safety
/// `l` must be a valid state with room on its stack.
pub unsafe fn get_registry(l: *mut lua_State, key: &'static u8) {
    // SAFETY: `l` is a valid state with room (caller's contract); raw registry access
    unsafe {
        ffi::lua_pushlightuserdata(l, key as *const u8 as *mut c_void);
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
    }
}

/// `registry[key] = ` the value on top of the stack, which stays there.
///
/// # Safety
/// `l` must be a valid state with a value on top and room on its stack.
pub unsafe fn set_registry(l: *mut lua_State, key: &'static u8) {
    // SAFETY: `l` is valid with the value on top (caller's contract); raw registry access
    unsafe {
        ffi::lua_pushlightuserdata(l, key as *const u8 as *mut c_void);
        ffi::lua_pushvalue(l, -2);
        ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
    }
}

/// [`udata_of`] for a metatable kept at `registry[key]` ([`set_registry`]).
/// The metatable found is noted on the current VM (vm::Vm::note_ud_mt):
/// later checks compare addresses instead of fetching `registry[key]`,
/// which costs half of this check on every socket method call.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn udata_with(l: *mut lua_State, idx: c_int, key: &'static u8) -> Option<*mut c_void> {
    // SAFETY: `l` is a valid state (caller's contract)
    let idx = unsafe { abs_index(l, idx) };
    // SAFETY: `l` is a valid state; both calls only read `idx`
    if unsafe { ffi::lua_type(l, idx) } != ffi::LUA_TUSERDATA || unsafe { ffi::lua_getmetatable(l, idx) } == 0
    {
        return None;
    }
    // SAFETY: the value's metatable is on top
    let mt = unsafe { ffi::lua_topointer(l, -1) };
    let vm = vm::current();
    // Both the noted metatable and this one are alive (the first anchored
    // in the current VM's registry, the second on this stack): equal
    // addresses are the same table.
    let ours = if vm.is_some_and(|vm| vm.is_ud_mt(key, mt)) {
        true
    } else {
        // SAFETY: `l` is a valid state with the metatable on top
        unsafe { get_registry(l, key) };
        // SAFETY: the value's metatable and registry[key] are the two top values
        let same = unsafe { ffi::lua_rawequal(l, -1, -2) } != 0;
        if let (true, Some(vm)) = (same, vm) {
            // SAFETY: `l` is a valid state (caller's contract)
            unsafe { vm.note_ud_mt(l, key, mt) };
        }
        // SAFETY: pops registry[key]
        unsafe { ffi::lua_pop(l, 1) };
        same
    };
    // SAFETY: pops the metatable
    unsafe { ffi::lua_pop(l, 1) };
    // SAFETY: `idx` was checked to hold a full userdata
    ours.then(|| unsafe { ffi::lua_touserdata(l, idx) })
}

/// `luaL_newmetatable` without raising: pushes `registry[name]`, creating
/// it as a new table when absent; true when created.
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn new_metatable(l: *mut lua_State, name: &CStr) -> bool {
    // SAFETY: `l` is a valid state (caller's contract)
    unsafe { get_raw(l, ffi::LUA_REGISTRYINDEX, name) };
    // SAFETY: registry[name] is on top
    if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TNIL {
        return false;
    }
    // SAFETY: `l` is valid; the nil on top is replaced by a new table stored raw
    unsafe {
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 4);
        ffi::lua_pushvalue(l, -1);
        set_raw(l, ffi::LUA_REGISTRYINDEX, name);
    }
    true
}

/// # Safety
/// `l` must be a valid Lua state with room on its stack.
pub unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    // SAFETY: `l` is a valid state (caller's contract); `b` is a live slice of b.len() bytes
    unsafe { ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len()) };
}

/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn push_cstr(l: *mut lua_State, s: &CStr) {
    // SAFETY: `l` is a valid state (caller's contract); `s` is NUL-terminated
    unsafe { ffi::lua_pushstring(l, s.as_ptr()) };
}

/// Borrow the bytes of a string (or number, converted in place) at `idx`.
///
/// # Safety
/// The returned slice lives as long as the value stays on the stack.
pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    // SAFETY: `l` is a valid state (caller's contract)
    let p = unsafe { ffi::lua_tolstring(l, idx, &mut len) };
    if p.is_null() {
        None
    } else {
        // SAFETY: lua_tolstring gave `len` bytes at `p`, alive while the value stays on the stack
        Some(unsafe { std::slice::from_raw_parts(p.cast(), len) })
    }
}

/// Borrow the bytes of the string at `idx`, whose type the caller has just
/// checked: no second type check (a string is not converted, so nothing
/// can allocate or raise).
///
/// # Safety
/// `l` must be a valid state holding a string (`LUA_TSTRING`) at `idx`;
/// the slice lives as long as the value stays on the stack.
pub unsafe fn string_bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: a string at `idx` (caller's contract): lua_tolstring returns its bytes as they are
    let p = unsafe { mlua::ffi::lua_tolstring(l, idx, &mut len) };
    // SAFETY: lua_tolstring gave `len` bytes at `p`, alive while the value stays on the stack
    unsafe { std::slice::from_raw_parts(p.cast(), len) }
}

/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: `l` is a valid state (caller's contract)
    let t = unsafe { ffi::lua_type(l, idx) };
    // SAFETY: lua_typename returns a static NUL-terminated name
    (unsafe { CStr::from_ptr(ffi::lua_typename(l, t)) })
        .to_string_lossy()
        .into_owned()
}

/// The error text of `luaL_argerror`, without the position prefix.
pub fn bad_arg(n: c_int, fname: &str, extra: &str) -> String {
    format!("bad argument #{n} to '{fname}' ({extra})")
}

/// A string argument, as luaL_checklstring would take it.
///
/// # Safety
/// The returned slice lives as long as the value stays on the stack.
pub unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int, fname: &str) -> Result<&'a [u8], String> {
    // SAFETY: `l` is a valid state (caller's contract)
    match unsafe { ffi::lua_type(l, idx) } {
        // SAFETY: a string, just checked; the slice lives as long as it stays on the stack (our contract)
        ffi::LUA_TSTRING => Ok(unsafe { string_bytes(l, idx) }),
        // SAFETY: a number, converted in place; the slice lives as long as it stays on the stack (our contract)
        ffi::LUA_TNUMBER => Ok(unsafe { to_bytes(l, idx) }.unwrap_or_default()),
        ffi::LUA_TNONE => Err(bad_arg(idx, fname, "string expected, got no value")),
        _ => Err(bad_arg(
            idx,
            fname,
            // SAFETY: `l` is a valid state (caller's contract)
            &format!("string expected, got {}", unsafe { type_name(l, idx) }),
        )),
    }
}

/// A number argument, as luaL_checknumber would take it.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn check_number(l: *mut lua_State, idx: c_int, fname: &str) -> Result<f64, String> {
    // SAFETY: `l` is a valid state (caller's contract)
    let t = unsafe { ffi::lua_type(l, idx) };
    // SAFETY: `l` is a valid state (caller's contract)
    if t == ffi::LUA_TNUMBER || (t == ffi::LUA_TSTRING && unsafe { ffi::lua_isnumber(l, idx) } != 0) {
        // SAFETY: `l` is a valid state (caller's contract)
        return Ok(unsafe { ffi::lua_tonumber(l, idx) });
    }
    let got = if t == ffi::LUA_TNONE {
        "no value".to_string()
    } else {
        // SAFETY: `l` is a valid state (caller's contract)
        unsafe { type_name(l, idx) }
    };
    Err(bad_arg(idx, fname, &format!("number expected, got {got}")))
}

/// # Safety
/// `l` must be a valid Lua state with a table at `idx`.
pub unsafe fn set_fn(l: *mut lua_State, idx: c_int, name: &CStr, f: ffi::lua_CFunction) {
    // SAFETY: `l` is valid with a table at `idx` (caller's contract); the push moves it one down
    unsafe {
        ffi::lua_pushcfunction(l, f);
        set_raw(l, if idx < 0 { idx - 1 } else { idx }, name);
    }
}

/// # Safety
/// `l` must be a valid Lua state with a table at `idx`.
pub unsafe fn set_int(l: *mut lua_State, idx: c_int, name: &CStr, v: i64) {
    // SAFETY: `l` is valid with a table at `idx` (caller's contract); the push moves it one down
    unsafe {
        ffi::lua_pushinteger(l, v as ffi::lua_Integer);
        set_raw(l, if idx < 0 { idx - 1 } else { idx }, name);
    }
}

/// # Safety
/// `l` must be a valid Lua state with a table at `idx`.
pub unsafe fn set_str(l: *mut lua_State, idx: c_int, name: &CStr, v: &[u8]) {
    // SAFETY: `l` is valid with a table at `idx` (caller's contract); the push moves it one down
    unsafe {
        push_bytes(l, v);
        set_raw(l, if idx < 0 { idx - 1 } else { idx }, name);
    }
}
