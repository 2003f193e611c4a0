//! Per-thread state without a thread-local access on nginx's event-loop
//! thread.
//!
//! This module is a shared library, so every `thread_local!` access is a
//! call to `__tls_get_addr` (some 15 instructions; stable Rust cannot ask
//! for another TLS model), and the request path makes dozens. Nearly all of
//! them happen on one thread: the worker's event loop (nginx is single
//! threaded, apart from its thread pools). The only other threads that run
//! our code are the pool threads of `ngx.run_worker_thread`, whose VMs call
//! the API too (guards, object creation, regexes).
//!
//! A [`LoopLocal`] keeps the event-loop thread's value in a plain static
//! and every other thread's in a `thread_local!`: each thread still sees a
//! value of its own, exactly as with a thread-local, and the event loop
//! pays a compare with the thread pointer instead of the call.
//!
//! Which thread is the event loop's: the first one to ask. Our code first
//! runs while nginx parses its configuration, on the main thread of the
//! master (or of the single process), and only that thread's copies (a
//! worker forked from it keeps the same thread pointer, as it keeps every
//! other value of the parent's thread) run nginx's event loop; pool threads
//! run our code only for tasks that code posted from the event loop.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread::LocalKey;

/// The thread pointer of the event loop's thread; 0 until [`on_loop`]
/// first runs.
static LOOP_THREAD: AtomicUsize = AtomicUsize::new(0);

/// The running thread's thread pointer: distinct for every live thread, and
/// constant for a thread's life.
#[inline(always)]
fn thread_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: usize;
        // SAFETY: the x86-64 TLS ABI keeps the thread pointer itself in the
        // first word of the thread control block (%fs:0); the load has no
        // other effect. `nomem`/`pure`: the value never changes for a
        // thread, so the compiler may reuse one read within a function.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp,
                options(nostack, preserves_flags, pure, nomem))
        };
        tp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let tp: usize;
        // SAFETY: TPIDR_EL0 is the thread pointer register; reading it has
        // no other effect. `nomem`/`pure` as above.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp,
                options(nostack, preserves_flags, pure, nomem))
        };
        tp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // SAFETY: pthread_self has no preconditions; its result is unique
        // among live threads.
        unsafe { libc::pthread_self() as usize }
    }
}

/// Is the running thread nginx's event loop's?
#[inline(always)]
pub fn on_loop() -> bool {
    let me = thread_pointer();
    let t = LOOP_THREAD.load(Relaxed);
    t == me || (t == 0 && claim(me))
}

/// The first thread to ask becomes the event loop's (see the module's
/// comment).
#[cold]
#[inline(never)]
fn claim(me: usize) -> bool {
    match LOOP_THREAD.compare_exchange(0, me, Relaxed, Relaxed) {
        Ok(_) => true,
        Err(t) => t == me,
    }
}

/// A value per thread: a static for the event loop's thread, a
/// `thread_local!` for the others. Declared with [`loop_local!`].
pub struct LoopLocal<T: 'static> {
    /// The event loop thread's value; touched by that thread only.
    on_loop: UnsafeCell<T>,
    /// Every other thread's value.
    elsewhere: &'static LocalKey<T>,
}

// SAFETY: `on_loop` is only ever reached through `with` on the event
// loop's thread (`on_loop()` is true for that one thread alone, for the
// life of the process), so no two threads share it: `T` need not be Sync.
// It is never moved to another thread nor dropped (a static), so `T` need
// not be Send either. The other threads reach their own `thread_local!`.
unsafe impl<T: 'static> Sync for LoopLocal<T> {}

impl<T: 'static> LoopLocal<T> {
    /// For [`loop_local!`]: `value` must be the initial value of `elsewhere`.
    #[doc(hidden)]
    pub const fn new(value: T, elsewhere: &'static LocalKey<T>) -> LoopLocal<T> {
        LoopLocal {
            on_loop: UnsafeCell::new(value),
            elsewhere,
        }
    }

    /// Runs `f` on the running thread's value, as `LocalKey::with`.
    #[inline(always)]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        if on_loop() {
            // SAFETY: this is the event loop's thread, the only one that
            // reaches `on_loop` (see the Sync impl); only shared references
            // are made, and `f` cannot keep one beyond its call.
            f(unsafe { &*self.on_loop.get() })
        } else {
            self.elsewhere.with(f)
        }
    }
}

impl<T: Copy + 'static> LoopLocal<Cell<T>> {
    #[inline(always)]
    pub fn get(&'static self) -> T {
        self.with(Cell::get)
    }

    #[inline(always)]
    pub fn set(&'static self, v: T) {
        self.with(|c| c.set(v))
    }

    #[inline(always)]
    pub fn replace(&'static self, v: T) -> T {
        self.with(|c| c.replace(v))
    }
}

/// `loop_local! { static NAME: Type = const_init; }`: a [`LoopLocal`],
/// declared as `thread_local!` declares its keys (const initializers only).
macro_rules! loop_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)*) => {$(
        $(#[$attr])*
        $vis static $name: $crate::glue::loop_local::LoopLocal<$t> = {
            ::std::thread_local! {
                static ELSEWHERE: $t = const { $init };
            }
            $crate::glue::loop_local::LoopLocal::new($init, &ELSEWHERE)
        };
    )*};
}
pub(crate) use loop_local;
