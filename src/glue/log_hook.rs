//! `lua_capture_error_log` on a stock nginx: a log writer of ours on every
//! error log of the cycle that copies each line into the worker's
//! [`LogRing`], then writes it where nginx would have (the file, or the
//! writer that was there: syslog, memory).
//!
//! lua-nginx-module needs OpenResty's nginx patch, which calls a hook once
//! per line inside `ngx_log_error_core`. Stock nginx (>= 1.7) calls
//! `log->writer` instead of writing the file itself, once per log of the
//! chain that accepts the level; the first log of a chain always does (the
//! `ngx_log_error` macro has just checked its level), so the hook goes on
//! the first log of every chain (`error_log` of the main level, of each
//! server and location, and the listening sockets' copies) and only the
//! first log captures. Connections copy the writer of their location's log
//! (`ngx_set_connection_log`), timers copy the cycle's.

use std::ffi::c_void;
use std::ptr;

use nginx_sys::{
    ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_main_conf_t,
    ngx_http_core_module, ngx_http_core_srv_conf_t, ngx_http_location_tree_node_t, ngx_http_module,
    ngx_listening_t, ngx_log_t, ngx_log_writer_pt, ngx_palloc, ngx_pool_t, ngx_uint_t,
};

use super::log_ring::LogRing;

/// What our writer needs to know about one log: the writer and data it
/// replaced (from the cycle's pool, as long-lived as the log).
struct Hook {
    writer: ngx_log_writer_pt,
    wdata: *mut c_void,
    ring: *mut LogRing,
}

/// The thread that runs the event loop: only its lines are captured. nginx's
/// thread pool threads log too (their debug lines); the ring is not shared
/// with them.
static LOOP_THREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Locations nest; a bound on the walk keeps a malformed tree from looping.
const MAX_DEPTH: usize = 64;

/// Puts the capture writer on every error log of `cycle`'s http block.
/// Idempotent: a log that has it already is left alone.
///
/// # Safety
/// `cycle` must be the running cycle, its configuration complete;
/// `ring` must live as long as the cycle's pool.
pub unsafe fn install(cycle: *mut ngx_cycle_t, ring: *mut LogRing) {
    // SAFETY: pthread_self has no preconditions.
    LOOP_THREAD.store(
        unsafe { libc::pthread_self() } as usize,
        std::sync::atomic::Ordering::Relaxed,
    );
    // SAFETY: the cycle and every structure reached from it are live, and
    // nothing else runs in this worker while it starts.
    unsafe {
        let pool = (*cycle).pool;
        hook(pool, ptr::addr_of_mut!((*cycle).new_log), ring);
        hook(pool, (*cycle).log, ring);
        let ls = (*cycle).listening.elts as *mut ngx_listening_t;
        for i in 0..(*cycle).listening.nelts {
            hook(pool, ptr::addr_of_mut!((*ls.add(i)).log), ring);
        }
        let ctx = *(*cycle).conf_ctx.add(ngx_http_module.index) as *mut ngx_http_conf_ctx_t;
        if ctx.is_null() {
            return;
        }
        let core = ngx_http_core_module.ctx_index;
        let http_clcf = *(*ctx).loc_conf.add(core) as *mut ngx_http_core_loc_conf_t;
        walk_location(pool, http_clcf, ring, 0);
        let cmcf = *(*ctx).main_conf.add(core) as *mut ngx_http_core_main_conf_t;
        let servers = (*cmcf).servers.elts as *mut *mut ngx_http_core_srv_conf_t;
        for i in 0..(*cmcf).servers.nelts {
            let cscf = *servers.add(i);
            let clcf = *(*(*cscf).ctx).loc_conf.add(core) as *mut ngx_http_core_loc_conf_t;
            walk_location(pool, clcf, ring, 0);
            walk_list(pool, (*cscf).named_locations, ring, 0);
        }
    }
}

/// Hooks `clcf`'s log and those of the locations inside it.
unsafe fn walk_location(
    pool: *mut ngx_pool_t,
    clcf: *mut ngx_http_core_loc_conf_t,
    ring: *mut LogRing,
    depth: usize,
) {
    if clcf.is_null() || depth > MAX_DEPTH {
        return;
    }
    // SAFETY: a location configuration of the running cycle.
    unsafe {
        hook(pool, (*clcf).error_log, ring);
        walk_tree(pool, (*clcf).static_locations, ring, depth + 1);
        walk_list(pool, (*clcf).regex_locations, ring, depth + 1);
    }
}

/// A null-terminated array of locations (regex or named ones).
unsafe fn walk_list(
    pool: *mut ngx_pool_t,
    list: *mut *mut ngx_http_core_loc_conf_t,
    ring: *mut LogRing,
    depth: usize,
) {
    if list.is_null() {
        return;
    }
    let mut i = 0;
    // SAFETY: nginx ends these arrays with a null entry.
    unsafe {
        while !(*list.add(i)).is_null() && i < 100_000 {
            walk_location(pool, *list.add(i), ring, depth);
            i += 1;
        }
    }
}

/// nginx's static location tree: each node may hold an exact and an
/// inclusive (prefix) location, and a subtree of longer prefixes.
unsafe fn walk_tree(
    pool: *mut ngx_pool_t,
    node: *mut ngx_http_location_tree_node_t,
    ring: *mut LogRing,
    depth: usize,
) {
    if node.is_null() || depth > MAX_DEPTH * 4 {
        return;
    }
    // SAFETY: a node of the running cycle's location tree.
    unsafe {
        walk_location(pool, (*node).exact, ring, depth);
        walk_location(pool, (*node).inclusive, ring, depth);
        walk_tree(pool, (*node).left, ring, depth + 1);
        walk_tree(pool, (*node).right, ring, depth + 1);
        walk_tree(pool, (*node).tree, ring, depth + 1);
    }
}

/// Puts our writer on the head `log` of a chain.
unsafe fn hook(pool: *mut ngx_pool_t, log: *mut ngx_log_t, ring: *mut LogRing) {
    if log.is_null() {
        return;
    }
    // SAFETY: a live log of the cycle; the Hook comes from the cycle's pool.
    unsafe {
        // By address: a log that has our writer is hooked already.
        let ours = writer as unsafe extern "C" fn(_, _, _, _) as usize;
        if (*log).writer.map(|w| w as usize) == Some(ours) {
            return;
        }
        let h = ngx_palloc(pool, size_of::<Hook>()) as *mut Hook;
        if h.is_null() {
            return;
        }
        h.write(Hook {
            writer: (*log).writer,
            wdata: (*log).wdata,
            ring,
        });
        (*log).writer = Some(writer);
        (*log).wdata = h.cast();
    }
}

/// Called by `ngx_log_error_core` with the whole line (ending in "\n").
unsafe extern "C" fn writer(log: *mut ngx_log_t, level: ngx_uint_t, buf: *mut u8, len: usize) {
    // SAFETY: nginx calls this only for logs `hook` set up, with wdata our
    // Hook, and `buf` holding `len` bytes.
    unsafe {
        let h = (*log).wdata as *mut Hook;
        let line = std::slice::from_raw_parts(buf, len);
        let ring = &mut *(*h).ring;
        let on_loop = libc::pthread_self() as usize == LOOP_THREAD.load(std::sync::atomic::Ordering::Relaxed);
        if on_loop && level <= ring.filter_level {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            ring.write(level, text, now());
        }
        match (*h).writer {
            Some(w) => {
                // The replaced writer reads its own data from the log.
                (*log).wdata = (*h).wdata;
                w(log, level, buf, len);
                (*log).wdata = h.cast();
            }
            None => write_file(log, line),
        }
    }
}

/// What `ngx_log_error_core` does for a file log: skip for a second after
/// the disk was full.
unsafe fn write_file(log: *mut ngx_log_t, line: &[u8]) {
    // SAFETY: a live file log; ngx_cached_time is set once nginx runs.
    unsafe {
        let file = (*log).file;
        if file.is_null() {
            return;
        }
        let sec = (*nginx_sys::ngx_cached_time).sec;
        if sec == (*log).disk_full_time {
            return;
        }
        let n = libc::write((*file).fd, line.as_ptr().cast(), line.len());
        if n == -1 && *libc::__errno_location() == libc::ENOSPC {
            (*log).disk_full_time = sec;
        }
    }
}

/// nginx's cached time in seconds, with milliseconds.
fn now() -> f64 {
    // SAFETY: ngx_cached_time is set before any log line is written.
    unsafe {
        let tp = nginx_sys::ngx_cached_time;
        (*tp).sec as f64 + (*tp).msec as f64 / 1000.0
    }
}
