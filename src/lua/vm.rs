//! The Lua VM of a configuration cycle: created while nginx parses the
//! configuration (so init_by_lua runs in the master and workers inherit the
//! state through fork), owned by the cycle's main conf.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::lifecycle as raw;
use super::{ffi, lua_State, push_bytes, to_bytes};
use crate::glue::loop_local::loop_local;

/// luaL_loadfile's status for a file it could not open or read.
const LUA_ERRFILE: c_int = 6;

/// Why Lua code could not be loaded.
pub struct LoadError {
    pub msg: String,
    /// The file could not be opened or read (lua-nginx-module answers 404).
    pub unreadable: bool,
}

impl From<LoadError> for String {
    fn from(e: LoadError) -> String {
        e.msg
    }
}

pub struct Vm {
    /// The state, closed when the Vm drops.
    main: *mut lua_State,
    /// `*_by_lua_file` chunks by resolved path (lua_code_cache on).
    files: RefCell<HashMap<Vec<u8>, c_int>>,
    /// Inline chunks compiled in this VM, by the address of their code
    /// (a request's own VM, lua_code_cache off: the cycle VM keeps them
    /// on the code itself).
    inline: RefCell<HashMap<usize, c_int>>,
    /// Coroutines that returned normally, with their registry references,
    /// kept for reuse: a request then costs no new coroutine.
    idle_threads: RefCell<Vec<(*mut lua_State, c_int)>>,
    /// lua_thread_cache_max_entries.
    idle_threads_max: Cell<usize>,
    /// What the layers above keep for as long as this VM lives (timers,
    /// socket pools, the regex cache...), one value per type, at the slot
    /// of its type ([`VmState`]): see [`Vm::state`]. Dropped after
    /// `Drop::drop` has closed the state, so it outlives the `__gc` handlers
    /// that run then.
    states: RefCell<Vec<Option<Box<dyn Any>>>>,
    /// The state's registry table: tells whether a coroutine is this VM's.
    registry: *const c_void,
    /// Userdata metatables met by lua::udata_with, as (registry key,
    /// metatable) addresses: a method's type check compares its object's
    /// metatable with these instead of fetching `registry[key]`. Each
    /// metatable is anchored in this VM's registry, so an address here
    /// names that table for as long as the cache exists.
    ud_mts: [Cell<(usize, usize)>; UD_MTS],
}

/// Userdata types whose metatables `Vm::ud_mts` keeps.
const UD_MTS: usize = 4;

/// How many finished coroutines a worker keeps for reuse, by default.
const IDLE_THREADS_MAX: usize = 1024;

// Per thread, without a thread-local access on the event loop's (see
// loop_local): a pool thread of ngx.run_worker_thread sees no VM.
loop_local! {
    // The VM of the cycle this process runs: a per-process pointer by
    // nature (reset when a new cycle's configuration creates its VM), so it
    // cannot live on a VM itself.
    static CURRENT: Cell<*const Vm> = const { Cell::new(ptr::null()) };
    // The VM of the request whose code runs now, when that request has its
    // own (lua_code_cache off): a property of the call in progress, set by
    // `Scope` around it.
    static SCOPE: Cell<*const Vm> = const { Cell::new(ptr::null()) };
}

/// How many scopes that made a request's own VM current are open on the
/// event loop's thread. While none is, SCOPE is null there, and the scopes
/// of requests that run in the cycle's VM (every request with
/// lua_code_cache on) need not touch it: thread-local accesses cost a call
/// in a shared library, and the request path makes several. A process-wide
/// count, so another thread (a worker thread's VM) only sees a value that
/// sends it to the thread-local, never a wrong VM.
static OWN_SCOPES: AtomicUsize = AtomicUsize::new(0);

/// The VM Lua code runs in now: the running request's own VM inside its
/// `Scope`, else the cycle's. Inlined (as `cycle`): the request path asks
/// many times per request, and a call costs more than the read.
#[inline]
pub fn current() -> Option<&'static Vm> {
    let p = if OWN_SCOPES.load(Relaxed) == 0 {
        ptr::null()
    } else {
        SCOPE.get()
    };
    let p = if p.is_null() { CURRENT.get() } else { p };
    // SAFETY: SCOPE points to a VM kept alive by whoever entered the scope
    // for its duration; CURRENT points into the live main conf of the
    // current cycle and is reset whenever that conf is replaced.
    unsafe { p.as_ref() }
}

/// The VM of the running cycle, whatever request runs.
#[inline]
pub fn cycle() -> Option<&'static Vm> {
    let p = CURRENT.get();
    // SAFETY: as in `current`.
    unsafe { p.as_ref() }
}

/// Whether `vm` is the cycle's VM (not a request's own).
#[inline]
pub fn is_cycle(vm: &Vm) -> bool {
    ptr::eq(CURRENT.get(), vm)
}

/// Makes a request's own VM (or, given None, the cycle's) the current one
/// until dropped.
pub struct Scope(ScopeKind);

enum ScopeKind {
    /// SCOPE was null and stays so: nothing to restore.
    Untouched,
    /// SCOPE was set to null; its previous value.
    Cleared(*const Vm),
    /// SCOPE was set to a request's VM (counted in OWN_SCOPES); its
    /// previous value.
    Own(*const Vm),
}

impl Scope {
    pub fn enter(vm: Option<&Vm>) -> Scope {
        Scope(match vm {
            // No own VM is current anywhere: SCOPE is null already.
            None if OWN_SCOPES.load(Relaxed) == 0 => ScopeKind::Untouched,
            None => ScopeKind::Cleared(SCOPE.replace(ptr::null())),
            Some(v) => {
                OWN_SCOPES.fetch_add(1, Relaxed);
                ScopeKind::Own(SCOPE.replace(v as *const Vm))
            }
        })
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        match self.0 {
            ScopeKind::Untouched => {}
            ScopeKind::Cleared(prev) => SCOPE.set(prev),
            ScopeKind::Own(prev) => {
                SCOPE.set(prev);
                OWN_SCOPES.fetch_sub(1, Relaxed);
            }
        }
    }
}

pub fn set_current(vm: Option<&Vm>) {
    CURRENT.set(vm.map_or(ptr::null(), |v| v as *const Vm));
}

/// A value the layers above keep per VM ([`Vm::state`]), declared with
/// [`vm_state!`]: each such type has a slot of its own, the same in every
/// VM, so that finding it is an index, not a search.
pub trait VmState: Default + 'static {
    fn slot() -> usize;
}

/// Slots given out so far.
static SLOTS: AtomicUsize = AtomicUsize::new(0);

/// The slot kept in `s`, given out on first use. A race between threads
/// wastes a slot number, nothing more.
pub fn slot_of(s: &AtomicUsize) -> usize {
    let n = s.load(Relaxed);
    if n != usize::MAX {
        return n;
    }
    let new = SLOTS.fetch_add(1, Relaxed);
    match s.compare_exchange(usize::MAX, new, Relaxed, Relaxed) {
        Ok(_) => new,
        Err(taken) => taken,
    }
}

/// Declares a type kept per VM (see [`VmState`]).
macro_rules! vm_state {
    ($t:ty) => {
        impl $crate::lua::vm::VmState for $t {
            #[inline]
            fn slot() -> usize {
                static SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);
                $crate::lua::vm::slot_of(&SLOT)
            }
        }
    };
}
pub(crate) use vm_state;

/// Runs `f` on the state `T` of the running cycle's VM (see [`Vm::state`]);
/// without a VM, on a default value that is not kept. The states are the
/// worker's (timers, socket pools, caches): a request's own VM shares the
/// cycle's.
pub fn with_current_state<T: VmState, R>(f: impl FnOnce(&T) -> R) -> R {
    match cycle() {
        Some(vm) => f(vm.state::<T>()),
        None => f(&T::default()),
    }
}

/// The state of type `T` on the VM of the running cycle (see
/// [`Vm::state`]); None while no VM exists.
pub fn current_state<T: VmState>() -> Option<&'static T> {
    cycle().map(|vm| vm.state::<T>())
}

impl Vm {
    pub fn new() -> Result<Vm, String> {
        // LuaJIT's own allocator, as lua-nginx-module has it: it serves
        // LuaJIT's many small objects faster than glibc's malloc, which
        // mlua's `Lua` would route them through.
        // SAFETY: plain constructor; a null result is handled.
        let main = unsafe { raw::luaL_newstate() };
        if main.is_null() {
            return Err("failed to create the Lua VM: out of memory".into());
        }
        // The standard libraries as luaL_openlibs opens them for
        // lua-nginx-module: `ffi` is loaded by `require`, not a global.
        // SAFETY: `main` is the fresh state, nothing runs on it yet.
        unsafe { raw::luaL_openlibs(main) };
        let vm = Vm {
            main,
            files: RefCell::new(HashMap::new()),
            inline: RefCell::new(HashMap::new()),
            idle_threads: RefCell::new(Vec::new()),
            idle_threads_max: Cell::new(IDLE_THREADS_MAX),
            states: RefCell::new(Vec::new()),
            // SAFETY: `main` is the fresh state; the registry is always there
            registry: unsafe { ffi::lua_topointer(main, ffi::LUA_REGISTRYINDEX) },
            ud_mts: Default::default(),
        };
        // SAFETY: `main` is the freshly created state, not running.
        unsafe {
            super::alloc::install(main)?;
            super::protected::install(main)?;
        }
        Ok(vm)
    }

    pub fn main(&self) -> *mut lua_State {
        self.main
    }

    /// Whether `mt` is the metatable kept at `registry[key]` of this VM, as
    /// noted by [`Vm::note_ud_mt`] (false when not noted).
    #[inline]
    pub fn is_ud_mt(&self, key: &'static u8, mt: *const c_void) -> bool {
        let k = key as *const u8 as usize;
        self.ud_mts.iter().any(|c| c.get() == (k, mt as usize))
    }

    /// Notes `mt`, just found at `registry[key]` of the VM that `l` runs
    /// in, when that VM is this one (a metatable of another VM may be
    /// freed while this one lives).
    ///
    /// # Safety
    /// `l` must be a valid state.
    pub unsafe fn note_ud_mt(&self, l: *mut lua_State, key: &'static u8, mt: *const c_void) {
        // SAFETY: `l` is a valid state (caller's contract)
        if unsafe { ffi::lua_topointer(l, ffi::LUA_REGISTRYINDEX) } != self.registry {
            return;
        }
        let k = key as *const u8 as usize;
        if let Some(free) = self.ud_mts.iter().find(|c| c.get().0 == 0 || c.get().0 == k) {
            free.set((k, mt as usize));
        }
    }

    /// The value of type `T` this VM keeps for the layers above, created
    /// (with `T::default()`) on first use and dropped with the VM. `T`
    /// changes through interior mutability (`Cell`, `RefCell`).
    pub fn state<T: VmState>(&self) -> &T {
        let slot = T::slot();
        let found = self
            .states
            .borrow()
            .get(slot)
            .and_then(|s| s.as_deref())
            .map(|b| b as *const dyn Any);
        let p = match found {
            Some(p) => p,
            None => {
                // Built outside the borrow: `T::default()` may use states.
                let value: Box<dyn Any> = Box::new(T::default());
                let p = &*value as *const dyn Any;
                let mut states = self.states.borrow_mut();
                if states.len() <= slot {
                    states.resize_with(slot + 1, || None);
                }
                states[slot] = Some(value);
                p
            }
        };
        // SAFETY: slot `T::slot()` is T's alone (vm_state!) and holds a
        // boxed `T`, never removed nor replaced while the VM lives (a
        // growing Vec moves the Box, not the value it points to), so it
        // outlives `&self`.
        unsafe { &*(p as *const T) }
    }

    /// Compiles `code` and returns a registry reference to the function.
    pub fn compile(&self, code: &[u8], name: &CStr) -> Result<c_int, String> {
        let l = self.main;
        // SAFETY: main state, balanced stack.
        unsafe {
            if ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), name.as_ptr()) != 0 {
                return Err(pop_message(l));
            }
            Ok(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX))
        }
    }

    /// The function of inline code `code` (identified by its address),
    /// compiled in this VM at its first use here.
    pub fn compile_once(&self, key: usize, code: &[u8], name: &CStr) -> Result<c_int, String> {
        if let Some(&f) = self.inline.borrow().get(&key) {
            return Ok(f);
        }
        let f = self.compile(code, name)?;
        self.inline.borrow_mut().insert(key, f);
        Ok(f)
    }

    /// Loads a Lua file (by absolute path), from the cache when `cache` is on.
    pub fn load_file(&self, path: &[u8], cache: bool) -> Result<c_int, LoadError> {
        if cache && let Some(&f) = self.files.borrow().get(path) {
            return Ok(f);
        }
        let cpath = CString::new(path).map_err(|_| LoadError {
            msg: "file path contains a NUL byte".into(),
            unreadable: true,
        })?;
        let l = self.main;
        // SAFETY: main state, balanced stack.
        let f = unsafe {
            let rc = ffi::luaL_loadfile(l, cpath.as_ptr());
            if rc != 0 {
                return Err(LoadError {
                    msg: pop_message(l),
                    unreadable: rc == LUA_ERRFILE,
                });
            }
            ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX)
        };
        if cache {
            self.files.borrow_mut().insert(path.to_vec(), f);
        }
        Ok(f)
    }

    /// A coroutine anchored in the registry, with an empty stack.
    pub fn take_thread(&self) -> (*mut lua_State, c_int) {
        if let Some(t) = self.idle_threads.borrow_mut().pop() {
            crate::glue::log::log_debug_http!(
                crate::glue::log::cycle_log(),
                "lua reusing cached lua thread {:016X} (ref {})",
                t.0 as usize,
                t.1
            );
            return t;
        }
        // SAFETY: main state, balanced stack (luaL_ref pops the thread).
        unsafe {
            let co = ffi::lua_newthread(self.main);
            (co, ffi::luaL_ref(self.main, ffi::LUA_REGISTRYINDEX))
        }
    }

    pub fn set_idle_threads_max(&self, n: usize) {
        self.idle_threads_max.set(n);
    }

    /// Gives back a coroutine from `take_thread`. Only one that returned
    /// normally may be reused (its status is then 0 and nothing is left on
    /// its stack); any other is released.
    ///
    /// # Safety
    /// `co` must be a coroutine of this VM from `take_thread` (anchored by
    /// `co_ref`) that is not running.
    pub unsafe fn give_thread(&self, co: *mut lua_State, co_ref: c_int, finished: bool) {
        let mut idle = self.idle_threads.borrow_mut();
        // SAFETY: `co` is a coroutine of this VM that is not running (caller's contract).
        let clean = finished && unsafe { ffi::lua_status(co) == 0 };
        if clean && idle.len() < self.idle_threads_max.get() {
            // SAFETY: as above.
            unsafe {
                if ffi::lua_gettop(co) != 0 {
                    ffi::lua_settop(co, 0);
                }
            }
            crate::glue::log::log_debug_http!(
                crate::glue::log::cycle_log(),
                "lua caching unused lua thread {:016X} (ref {co_ref})",
                co as usize
            );
            idle.push((co, co_ref));
        } else {
            drop(idle);
            self.unref(co_ref);
        }
    }

    /// Drops a reference taken by `load_file` with the cache off.
    pub fn unref(&self, r: c_int) {
        // SAFETY: `r` is a registry reference of this state.
        unsafe { ffi::luaL_unref(self.main, ffi::LUA_REGISTRYINDEX, r) }
    }

    /// Sets `package.path` or `package.cpath` (`field`), where `;;` stands
    /// for the default path and `$prefix` or `${prefix}` for nginx's prefix
    /// as nginx keeps it, with its trailing slash (as lua-nginx-module
    /// substitutes it: `${prefix}html/?.lua` and `$prefix/html/?.lua` both
    /// work).
    pub fn set_search_path(&self, field: &CStr, value: &[u8], prefix: &[u8]) {
        let l = self.main;
        // SAFETY: main state, balanced stack.
        unsafe {
            super::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
            super::get_raw(l, -1, field);
            let default = to_bytes(l, -1).unwrap_or_default().to_vec();
            ffi::lua_pop(l, 1);
            let v = expand_search_path(value, &default, prefix);
            push_bytes(l, &v);
            super::set_raw(l, -2, field);
            ffi::lua_pop(l, 1);
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let main = self.main as usize;
        crate::glue::log::log_debug_http!(
            crate::glue::log::cycle_log(),
            "lua close the global Lua VM {main:016X}"
        );
        // SAFETY: the state is no longer used (the Vm is its only owner);
        // lua_close runs the remaining `__gc` finalizers protected.
        unsafe { raw::lua_close(self.main) }
    }
}

fn expand_search_path(value: &[u8], default: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + default.len());
    let mut i = 0;
    while i < value.len() {
        if value[i..].starts_with(b";;") {
            out.push(b';');
            out.extend_from_slice(default);
            out.push(b';');
            i += 2;
        } else if value[i..].starts_with(b"$prefix") {
            out.extend_from_slice(prefix);
            i += 7;
        } else if value[i..].starts_with(b"${prefix}") {
            out.extend_from_slice(prefix);
            i += 9;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    out
}

/// Pops the error value on top of `l` as a string.
///
/// # Safety
/// `l` must have a value on top of its stack.
pub unsafe fn pop_message(l: *mut lua_State) -> String {
    // SAFETY: `l` has a value on top (caller's contract)
    let msg = match unsafe { to_bytes(l, -1) } {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        // SAFETY: `l` has a value on top (caller's contract)
        None => format!("(error object is a {} value)", unsafe { super::type_name(l, -1) }),
    };
    // SAFETY: pops that value
    unsafe { ffi::lua_pop(l, 1) };
    msg
}
