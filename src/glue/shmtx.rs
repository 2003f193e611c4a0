//! A held `ngx_shmtx_t` (a shared memory zone's mutex), taken and released
//! without a call into nginx when nobody else wants it.
//!
//! nginx's `ngx_shmtx_lock` and `ngx_shmtx_unlock` cost ~50 instructions
//! per pair (the debug-log checks, the calls); a shared dict operation
//! takes the zone's mutex once, and the workloads make many. The protocol
//! is nginx's, done inline for its uncontended case: the lock word goes
//! from 0 to our pid with a compare-and-swap, and back to 0 on release,
//! after which a process sleeping on the mutex's semaphore (it counted
//! itself in `wait` first) is woken up with one `sem_post`, as nginx's
//! own release does. Contention falls back to `ngx_shmtx_lock`, which
//! spins and then sleeps as for every other user of the mutex.

use std::sync::atomic::{AtomicUsize, Ordering};

use nginx_sys::{ngx_pid, ngx_shmtx_lock, ngx_shmtx_t};

/// The mutex `mtx` held until this is dropped.
pub struct Held(*mut ngx_shmtx_t);

/// The atomic word at `p`.
///
/// # Safety
/// `p` points to an `ngx_atomic_t` of a live zone (aligned, shared by
/// every process only through atomic operations).
unsafe fn word<'a>(p: *mut nginx_sys::ngx_atomic_t) -> &'a AtomicUsize {
    // SAFETY: per the contract above; ngx_atomic_t is an unsigned long, the
    // size and alignment of usize on every platform nginx supports atomics on.
    unsafe { AtomicUsize::from_ptr(p.cast()) }
}

fn pid() -> usize {
    // SAFETY: nginx sets ngx_pid once at process start; read-only after.
    unsafe { ngx_pid as usize }
}

/// Takes `mtx`.
///
/// # Safety
/// `mtx` is a mutex created by `ngx_shmtx_create` in a live shared zone,
/// not held by this process (nginx's mutexes do not nest).
#[inline]
pub unsafe fn lock(mtx: *mut ngx_shmtx_t) -> Held {
    // SAFETY: a created mutex's `lock` points to its word in the zone
    let w = unsafe { word((*mtx).lock) };
    if w.load(Ordering::Relaxed) != 0
        || w.compare_exchange(0, pid(), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        // Someone holds it: nginx's spin, then sleep on the semaphore.
        // SAFETY: per this function's contract
        unsafe { ngx_shmtx_lock(mtx) };
    }
    Held(mtx)
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        let mtx = self.0;
        // SAFETY: `lock` took this created mutex; its words are in the zone
        let w = unsafe { word((*mtx).lock) };
        if w.compare_exchange(pid(), 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return; // not ours (as in nginx, nothing to release)
        }
        // SAFETY: as above; `semaphore` is set once at creation
        if unsafe { (*mtx).semaphore } != 0 {
            // SAFETY: as above; a mutex with a semaphore has its `wait` word
            let waiting = unsafe { word((*mtx).wait) };
            if waiting.load(Ordering::SeqCst) as isize > 0 {
                // SAFETY: as above
                unsafe { wake_one(mtx, waiting) };
            }
        }
    }
}

/// Takes one sleeper off the `wait` count and posts the semaphore it
/// sleeps on (nothing when the count dropped to 0 meanwhile).
///
/// # Safety
/// `mtx` is a created mutex with a semaphore; `waiting` is its wait word.
#[cold]
#[inline(never)]
unsafe fn wake_one(mtx: *mut ngx_shmtx_t, waiting: &AtomicUsize) {
    let mut n = waiting.load(Ordering::SeqCst);
    loop {
        if n as isize <= 0 {
            return;
        }
        match waiting.compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::SeqCst) {
            Ok(_) => break,
            Err(now) => n = now,
        }
    }
    // SAFETY: the mutex's semaphore was initialised (`semaphore` is set)
    if unsafe { nginx_sys::sem_post(std::ptr::addr_of_mut!((*mtx).sem)) } == -1 {
        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        super::log::log_error_errno!(
            std::ptr::null_mut(),
            super::log::NGX_LOG_ALERT,
            err,
            "sem_post() failed while waking up on shmtx"
        );
    }
}
