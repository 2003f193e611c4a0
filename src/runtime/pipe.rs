//! The engine of `ngx.pipe`: a child process with pipes to its stdin,
//! stdout and stderr, read and written without blocking the worker (each
//! pipe end is an nginx connection, as a cosocket's socket is), and its
//! exit status (runtime/pipe_reap.rs).
//!
//! A `Proc` is boxed and owned by its Lua object; waits point into it and
//! cannot outlive it (the waiting coroutine holds the object). The child
//! is killed (SIGKILL) when the object is collected or the request that
//! spawned it ends, as in lua-nginx-module; it is reaped either way.

use std::ffi::{CString, c_int, c_void};
use std::mem::MaybeUninit;
use std::ptr::{self, addr_of_mut};

use nginx_sys::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_del_timer, ngx_delete_posted_event,
    ngx_event_t, ngx_get_connection, ngx_handle_read_event, ngx_handle_write_event, ngx_msec_t,
    ngx_post_event, ngx_posted_events,
};

use super::ctx::RequestCtx;
use super::pipe_reap::{self, Ended};
use super::scheduler::{Wait, wake};
use crate::glue::log as nlog;
use crate::lua::{ffi, lua_State, push_bytes};

/// A read's end: the data, or the error with the bytes read so far.
pub type ReadResult = Result<Vec<u8>, (String, Vec<u8>)>;

/// A write's end: the bytes written, or the error.
pub type WriteResult = Result<usize, String>;

/// What finished a waiting pipe call.
enum Finished {
    Read(ReadResult),
    Write(WriteResult),
}

/// What a read returns: the bytes of a line (without its end), a count of
/// bytes, whatever is there (at most n), or everything until EOF.
#[derive(Clone, Copy)]
pub enum ReadKind {
    All,
    Bytes(usize),
    Line,
    Any(usize),
}

/// Index of each pipe in `Proc::chans`.
pub const STDIN: usize = 0;
pub const STDOUT: usize = 1;
pub const STDERR: usize = 2;

/// Index of each timeout in `Proc::timeouts`.
pub const T_WRITE: usize = 0;
pub const T_STDOUT: usize = 1;
pub const T_STDERR: usize = 2;
pub const T_WAIT: usize = 3;

enum Op {
    Read(ReadKind),
    Write,
}

/// One pipe end.
struct Chan {
    proc_: *mut Proc,
    /// Null once closed.
    c: *mut ngx_connection_t,
    /// Read: bytes received and not yet returned. Write: the data to send.
    buf: Vec<u8>,
    sent: usize,
    eof: bool,
    errno: c_int,
    /// The waiting call on this pipe.
    waiter: Option<(*mut RequestCtx, *mut lua_State, Op)>,
    /// Set by a shutdown while a call waits: the error it gets.
    abort: Option<&'static str>,
    stderr: bool,
}

pub struct Proc {
    pub pid: libc::pid_t,
    pub timeouts: [ngx_msec_t; 4],
    pub merge_stderr: bool,
    chunk: usize,
    chans: [Option<Box<Chan>>; 3],
    /// The child's end, once reaped.
    ended: Option<Ended>,
    /// Pipes closed after a finished wait, a kill on collection, ...
    closed: bool,
    waiter: Option<(*mut RequestCtx, *mut lua_State)>,
    wait_ev: ngx_event_t,
    cleanup: *mut nginx_sys::ngx_pool_cleanup_t,
    /// The request's end destroyed it already (lua-nginx-module then
    /// forgets the process: its collection logs nothing more).
    released: bool,
}

/// What a call that may wait gives back.
pub enum Step<T> {
    Done(T),
    Wait(Box<dyn Wait>),
}

/// What `spawn` needs, prepared before the fork (the child may only make
/// async-signal-safe calls: no allocation).
pub struct Spawn {
    pub file: CString,
    pub argv: Vec<CString>,
    pub env: Option<Vec<CString>>,
    pub merge_stderr: bool,
    pub buffer_size: usize,
    pub timeouts: [ngx_msec_t; 4],
}

fn strerror(e: c_int) -> String {
    // SAFETY: strerror returns a static string for any value.
    unsafe {
        std::ffi::CStr::from_ptr(libc::strerror(e))
            .to_string_lossy()
            .into_owned()
    }
}

/// Two pipes' ends as (read, write), close-on-exec.
fn pipe() -> Result<[c_int; 2], String> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: a plain system call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(format!("pipe failed: {}", strerror(errno())));
    }
    Ok(fds)
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn close_all(fds: &[c_int]) {
    for &fd in fds {
        if fd >= 0 {
            // SAFETY: fds we created and still own.
            unsafe { libc::close(fd) };
        }
    }
}

/// Starts the child. The returned box is owned by the caller's Lua object.
///
/// # Safety
/// Runs in the worker's event loop.
pub unsafe fn spawn(s: Spawn, r: *mut nginx_sys::ngx_http_request_t) -> Result<Box<Proc>, String> {
    pipe_reap::ensure_handler()?;
    let inp = pipe()?;
    let out = pipe().inspect_err(|_| close_all(&inp))?;
    let err = if s.merge_stderr {
        [-1, -1]
    } else {
        pipe().inspect_err(|_| close_all(&[inp[0], inp[1], out[0], out[1]]))?
    };
    let mut argv: Vec<*const libc::c_char> = s.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(ptr::null());
    let envp: Option<Vec<*const libc::c_char>> = s.env.as_ref().map(|env| {
        let mut v: Vec<_> = env.iter().map(|e| e.as_ptr()).collect();
        v.push(ptr::null());
        v
    });
    // The error log keeps its fd in the child, for the exec failure line.
    // SAFETY: the cycle's log is live; a non-null file of it too.
    let log_fd = unsafe {
        let log = nlog::cycle_log();
        if (*log).file.is_null() {
            -1
        } else {
            (*(*log).file).fd
        }
    };
    // The child's error line, as nginx would format it; the child adds
    // the errno part.
    let fail_line = format!(
        "{} [error] {}#{}: lua pipe child {}() failed while executing {}",
        // SAFETY: nginx's cached time string, updated by the event loop.
        String::from_utf8_lossy(unsafe {
            let t = ptr::addr_of!(nginx_sys::ngx_cached_err_log_time).read();
            std::slice::from_raw_parts(t.data, t.len)
        }),
        // SAFETY: set once at process start.
        unsafe { nginx_sys::ngx_pid },
        // SAFETY: set once at process start (the thread id of nginx's one thread).
        unsafe { nginx_sys::ngx_pid },
        if s.env.is_some() { "execvpe" } else { "execvp" },
        s.file.to_string_lossy()
    );

    // SAFETY: fork; the child below makes only async-signal-safe calls on
    // memory prepared above, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        close_all(&[inp[0], inp[1], out[0], out[1], err[0], err[1]]);
        return Err(format!("fork failed: {}", strerror(errno())));
    }
    if pid == 0 {
        // SAFETY: the child: reset what nginx changed, wire the pipes to
        // 0, 1 and 2, close every other descriptor, exec.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut());
            libc::dup2(inp[0], 0);
            libc::dup2(out[1], 1);
            libc::dup2(if s.merge_stderr { out[1] } else { err[1] }, 2);
            let keep = if log_fd > 2 { log_fd as libc::c_uint } else { 0 };
            if keep > 3 {
                libc::syscall(libc::SYS_close_range, 3u32, keep - 1, 0u32);
            }
            let from = if keep >= 3 { keep + 1 } else { 3 };
            if libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) == -1 {
                // Kernels before 5.9: one by one, up to the limit.
                let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(1024, 1 << 20) as c_int;
                for fd in 3..max {
                    if fd as libc::c_uint != keep {
                        libc::close(fd);
                    }
                }
            }
            if keep > 0 {
                // Open until exec only: the program gets 0, 1 and 2 alone.
                libc::fcntl(keep as c_int, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            match &envp {
                Some(env) => libc::execvpe(s.file.as_ptr(), argv.as_ptr(), env.as_ptr()),
                None => libc::execvp(s.file.as_ptr(), argv.as_ptr()),
            };
            if keep > 0 {
                write_exec_failure(keep as c_int, fail_line.as_bytes(), *libc::__errno_location());
            }
            libc::_exit(1);
        }
    }

    close_all(&[inp[0], out[1], err[1]]);
    let pp = Box::into_raw(Box::new(Proc {
        pid,
        timeouts: s.timeouts,
        merge_stderr: s.merge_stderr,
        chunk: s.buffer_size.max(1),
        chans: [None, None, None],
        ended: None,
        closed: false,
        waiter: None,
        // SAFETY: an all-zero event is nginx's initial event state.
        wait_ev: unsafe { MaybeUninit::zeroed().assume_init() },
        cleanup: ptr::null_mut(),
        released: false,
    }));
    // SAFETY: `pp` is ours (a fresh box) until handed back below.
    unsafe {
        (*pp).wait_ev.data = pp.cast();
        (*pp).wait_ev.handler = Some(on_wait_event);
        (*pp).wait_ev.log = nlog::cycle_log();
        pipe_reap::watch(pid, pp.cast(), on_child_end);
        for (i, fd) in [(STDIN, inp[1]), (STDOUT, out[0]), (STDERR, err[0])] {
            if fd < 0 {
                continue;
            }
            match new_chan(pp, fd, i == STDERR) {
                Ok(ch) => (*pp).chans[i] = Some(ch),
                Err(e) => {
                    close_all(&[fd]);
                    destroy(pp);
                    return Err(e);
                }
            }
        }
        // The debug lines name a process by its address, as lua-nginx-module's
        // do (nginx's `%p`: upper-case hex).
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe spawn process:{:X} pid:{pid} merge_stderr:{} buffer_size:{}",
            pp as usize,
            s.merge_stderr as u8,
            s.buffer_size
        );
        if r.is_null() && super::context::current() == super::context::INIT_WORKER {
            INIT_WORKER_PROCS.with(|v| v.borrow_mut().push(pp));
        }
        if !r.is_null() {
            let cln = nginx_sys::ngx_pool_cleanup_add((*r).pool, 0);
            if !cln.is_null() {
                (*cln).handler = Some(cleanup_handler);
                (*cln).data = pp.cast();
                (*pp).cleanup = cln;
            }
        }
        Ok(Box::from_raw(pp))
    }
}

/// `line (errno: text)\n` to `fd`, in the forked child: no allocation.
unsafe fn write_exec_failure(fd: c_int, line: &[u8], e: c_int) {
    let mut buf = [0u8; 1024];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        let k = b.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&b[..k]);
        n += k;
    };
    put(line);
    put(b" (");
    let mut digits = [0u8; 12];
    let mut d = digits.len();
    let mut v = e.unsigned_abs();
    loop {
        d -= 1;
        digits[d] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[d..]);
    put(b": ");
    // SAFETY: strerror gives a static string for any value.
    put(unsafe { std::ffi::CStr::from_ptr(libc::strerror(e)).to_bytes() });
    put(b")\n");
    // SAFETY: write(2) is async-signal-safe.
    unsafe { libc::write(fd, buf.as_ptr().cast(), n) };
}

unsafe fn new_chan(pp: *mut Proc, fd: c_int, stderr: bool) -> Result<Box<Chan>, String> {
    // SAFETY: our fd; the connection is ours until closed.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl == -1 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) == -1 {
            return Err(format!("ioctl(FIONBIO) failed: {}", strerror(errno())));
        }
        let c = ngx_get_connection(fd, nlog::cycle_log());
        if c.is_null() {
            return Err("no connection".into());
        }
        let mut ch = Box::new(Chan {
            proc_: pp,
            c,
            buf: Vec::new(),
            sent: 0,
            eof: false,
            errno: 0,
            waiter: None,
            abort: None,
            stderr,
        });
        (*c).data = (&mut *ch as *mut Chan).cast();
        (*(*c).read).handler = Some(on_chan_event);
        (*(*c).write).handler = Some(on_chan_event);
        (*(*c).read).log = nlog::cycle_log();
        (*(*c).write).log = nlog::cycle_log();
        Ok(ch)
    }
}

thread_local! {
    // Per process: init_worker_by_lua runs once per worker process. What
    // it spawned dies when it ends, as with lua-nginx-module's fake
    // request there.
    static INIT_WORKER_PROCS: std::cell::RefCell<Vec<*mut Proc>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// init_worker_by_lua ended: its children are killed, their pipes closed.
pub fn end_init_worker() {
    for p in INIT_WORKER_PROCS.with(|v| std::mem::take(&mut *v.borrow_mut())) {
        // SAFETY: destroy removes a Proc from the list before freeing it.
        unsafe { kill_and_close(p) };
    }
}

unsafe extern "C" fn cleanup_handler(data: *mut c_void) {
    crate::glue::catch((), || {
        // SAFETY: destroy clears this cleanup before the Proc goes.
        unsafe {
            let p = data as *mut Proc;
            (*p).cleanup = ptr::null_mut();
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua pipe destroy process:{:X} pid:{}",
                p as usize,
                (*p).pid
            );
            kill_and_close(p);
            (*p).released = true;
        }
    })
}

/// The child ended (from the reaper).
unsafe fn on_child_end(data: *mut c_void, how: Ended) {
    let p = data as *mut Proc;
    // SAFETY: the Proc is live (destroy forgets the pid first).
    unsafe {
        (*p).ended = Some(how);
        if (*p).waiter.is_some() {
            let ev = addr_of_mut!((*p).wait_ev);
            if (*ev).timer_set() != 0 {
                ngx_del_timer(ev);
            }
            ngx_post_event(ev, addr_of_mut!(ngx_posted_events));
        }
    }
}

/// SIGKILL if still alive, then close the pipes (request end, collection).
///
/// # Safety
/// `p` must be live.
pub unsafe fn kill_and_close(p: *mut Proc) {
    // SAFETY: the caller's contract.
    unsafe {
        if (*p).ended.is_none() && !(*p).closed {
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua pipe kill process:{:X} pid:{}",
                p as usize,
                (*p).pid
            );
            if libc::kill((*p).pid, libc::SIGKILL) == -1 && errno() != libc::ESRCH {
                nlog::log_error!(
                    nlog::cycle_log(),
                    nginx_sys::NGX_LOG_ERR,
                    "lua pipe failed to kill process pid:{}",
                    (*p).pid
                );
            }
        }
        finalize(p);
    }
}

/// For the object's `__gc`: kill, close, stop following the pid, free.
///
/// # Safety
/// `p` comes from `Box::into_raw` of a spawned Proc, and is not used after.
pub unsafe fn destroy(p: *mut Proc) {
    // SAFETY: the caller's contract.
    unsafe {
        if !(*p).released {
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua pipe destroy process:{:X} pid:{}",
                p as usize,
                (*p).pid
            );
        }
        INIT_WORKER_PROCS.with(|v| v.borrow_mut().retain(|&q| q != p));
        kill_and_close(p);
        pipe_reap::forget((*p).pid);
        if !(*p).cleanup.is_null() {
            (*(*p).cleanup).handler = None;
        }
        let ev = addr_of_mut!((*p).wait_ev);
        if (*ev).timer_set() != 0 {
            ngx_del_timer(ev);
        }
        if (*ev).posted() != 0 {
            ngx_delete_posted_event(ev);
        }
        drop(Box::from_raw(p));
    }
}

/// Closes every pipe: a call waiting on one gets "closed" (child gone) or
/// "aborted".
unsafe fn finalize(p: *mut Proc) {
    // SAFETY: a live Proc.
    unsafe {
        (*p).closed = true;
        for i in [STDIN, STDOUT, STDERR] {
            close_chan(p, i);
        }
    }
}

/// Closes one pipe end (shutdown).
unsafe fn close_chan(p: *mut Proc, i: usize) {
    // SAFETY: a live Proc; its chans are boxed.
    unsafe {
        let Some(ch) = (*p).chans[i].as_deref_mut() else {
            return;
        };
        if ch.c.is_null() {
            return;
        }
        if ch.waiter.is_some() {
            // Fail the waiting call from the event loop, not from here.
            ch.abort = Some(if (*p).ended.is_some() { "closed" } else { "aborted" });
            let ev = if i == STDIN { (*ch.c).write } else { (*ch.c).read };
            if (*ev).timer_set() != 0 {
                ngx_del_timer(ev);
            }
            ngx_post_event(ev, addr_of_mut!(ngx_posted_events));
            return;
        }
        ngx_close_connection(ch.c);
        ch.c = ptr::null_mut();
    }
}

/// `proc:shutdown(direction)`.
///
/// # Safety
/// `p` must be live.
pub unsafe fn shutdown(p: *mut Proc, i: usize) -> Result<(), &'static str> {
    // SAFETY: the caller's contract.
    unsafe {
        if (*p).closed {
            return Err("closed");
        }
        if i == STDERR && (*p).merge_stderr {
            return Err("merged to stdout");
        }
        close_chan(p, i);
    }
    Ok(())
}

/// `proc:kill(signum)`.
///
/// # Safety
/// `p` must be live.
pub unsafe fn kill(p: *mut Proc, sig: c_int) -> Result<(), String> {
    // SAFETY: the caller's contract.
    unsafe {
        if (*p).ended.is_some() || (*p).closed {
            return Err("exited".into());
        }
        if libc::kill((*p).pid, sig) == -1 {
            return Err(match errno() {
                libc::EINVAL => "invalid signal".into(),
                libc::ESRCH => "exited".into(),
                e => strerror(e),
            });
        }
    }
    Ok(())
}

/// Takes what `kind` asks for from the buffered bytes, or the error that
/// ends it (with the bytes read so far); None: more is needed.
fn take(ch: &mut Chan, kind: ReadKind) -> Option<ReadResult> {
    let got = match kind {
        ReadKind::Line => ch.buf.iter().position(|&b| b == b'\n').map(|pos| {
            let mut line: Vec<u8> = ch.buf.drain(..=pos).collect();
            line.pop();
            line.retain(|&b| b != b'\r');
            line
        }),
        ReadKind::Bytes(n) if ch.buf.len() >= n => Some(ch.buf.drain(..n).collect()),
        ReadKind::Any(max) if !ch.buf.is_empty() => {
            let n = max.min(ch.buf.len());
            Some(ch.buf.drain(..n).collect())
        }
        ReadKind::All if ch.eof => Some(std::mem::take(&mut ch.buf)),
        _ => None,
    };
    if let Some(v) = got {
        return Some(Ok(v));
    }
    if ch.eof {
        return Some(Err(("closed".into(), std::mem::take(&mut ch.buf))));
    }
    if ch.errno != 0 {
        return Some(Err((strerror(ch.errno), std::mem::take(&mut ch.buf))));
    }
    None
}

/// Reads until `kind` is satisfied or the pipe would block (None).
unsafe fn try_read(ch: &mut Chan, kind: ReadKind, chunk: usize) -> Option<ReadResult> {
    for _ in 0..1_000_000 {
        if let Some(r) = take(ch, kind) {
            return Some(r);
        }
        let old = ch.buf.len();
        ch.buf.resize(old + chunk, 0);
        // SAFETY: the pipe's fd; the buffer has `chunk` free bytes at `old`.
        let n = unsafe { libc::read((*ch.c).fd, ch.buf.as_mut_ptr().add(old).cast(), chunk) };
        let e = errno();
        ch.buf.truncate(old + n.max(0) as usize);
        match n {
            0 => ch.eof = true,
            -1 if e == libc::EAGAIN => return None,
            -1 if e == libc::EINTR => {}
            -1 => ch.errno = e,
            _ => {}
        }
    }
    None
}

/// Writes the rest of `ch.buf`: Some(total) when all is written.
unsafe fn try_write(ch: &mut Chan) -> Option<WriteResult> {
    for _ in 0..1_000_000 {
        if ch.sent >= ch.buf.len() {
            let n = ch.buf.len();
            ch.buf.clear();
            ch.sent = 0;
            return Some(Ok(n));
        }
        let rest = &ch.buf[ch.sent..];
        // SAFETY: the pipe's fd and our buffer.
        let n = unsafe { libc::write((*ch.c).fd, rest.as_ptr().cast(), rest.len()) };
        if n >= 0 {
            ch.sent += n as usize;
            continue;
        }
        match errno() {
            libc::EAGAIN => return None,
            libc::EINTR => {}
            e => {
                ch.buf.clear();
                ch.sent = 0;
                nlog::log_debug_http!(
                    nlog::cycle_log(),
                    "lua pipe write data error pipe:{:X} ({e}: {})",
                    ch as *const Chan as usize,
                    strerror(e)
                );
                // lua-nginx-module: a reader gone is "closed".
                return Some(Err(if e == libc::EPIPE {
                    "closed".into()
                } else {
                    strerror(e)
                }));
            }
        }
    }
    None
}

/// The pipe of a read or write call, or the error it returns at once.
unsafe fn chan_for(p: *mut Proc, i: usize, busy: &'static str) -> Result<*mut Chan, &'static str> {
    // SAFETY: a live Proc.
    unsafe {
        if (*p).closed {
            return Err("closed");
        }
        if i == STDERR && (*p).merge_stderr {
            return Err("merged to stdout");
        }
        let Some(ch) = (*p).chans[i].as_deref_mut() else {
            return Err("closed");
        };
        if ch.c.is_null() {
            return Err("closed");
        }
        if ch.waiter.is_some() {
            return Err(busy);
        }
        Ok(ch)
    }
}

/// `proc:stdout_read_*()` / `stderr_read_*()`.
///
/// # Safety
/// `p` live; `ctx`/`co` the running request thread.
pub unsafe fn read(
    p: *mut Proc,
    i: usize,
    kind: ReadKind,
    ctx: *mut RequestCtx,
    co: *mut lua_State,
) -> Result<Step<ReadResult>, &'static str> {
    // SAFETY: the caller's contract.
    unsafe {
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe read process:{:X} pid:{}",
            p as usize,
            (*p).pid
        );
        let ch = &mut *chan_for(p, i, "pipe busy reading")?;
        if let Some(r) = try_read(ch, kind, (*p).chunk) {
            return Ok(Step::Done(r));
        }
        let rev = (*ch.c).read;
        ngx_handle_read_event(rev, 0);
        let t = (*p).timeouts[if i == STDERR { T_STDERR } else { T_STDOUT }];
        if t > 0 {
            ngx_add_timer(rev, t);
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua pipe add timer for reading: {t}(ms) proc:{:X} pid:{}",
                p as usize,
                (*p).pid
            );
        }
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe read yielding process:{:X} pid:{}",
            p as usize,
            (*p).pid
        );
        ch.waiter = Some((ctx, co, Op::Read(kind)));
        Ok(Step::Wait(Box::new(ChanWait(ch))))
    }
}

/// `proc:write(data)`.
///
/// # Safety
/// As [`read`].
pub unsafe fn write(
    p: *mut Proc,
    data: &[u8],
    ctx: *mut RequestCtx,
    co: *mut lua_State,
) -> Result<Step<WriteResult>, &'static str> {
    // SAFETY: the caller's contract.
    unsafe {
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe write process:{:X} pid:{}",
            p as usize,
            (*p).pid
        );
        let ch = &mut *chan_for(p, STDIN, "pipe busy writing")?;
        ch.buf.clear();
        ch.buf.extend_from_slice(data);
        ch.sent = 0;
        if let Some(r) = try_write(ch) {
            return Ok(Step::Done(r));
        }
        let wev = (*ch.c).write;
        ngx_handle_write_event(wev, 0);
        let t = (*p).timeouts[T_WRITE];
        if t > 0 {
            ngx_add_timer(wev, t);
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua pipe add timer for writing: {t}(ms) proc:{:X} pid:{}",
                p as usize,
                (*p).pid
            );
        }
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe write yielding process:{:X} pid:{}",
            p as usize,
            (*p).pid
        );
        ch.waiter = Some((ctx, co, Op::Write));
        Ok(Step::Wait(Box::new(ChanWait(ch))))
    }
}

/// `proc:wait()`: (true | false, "exit" | "signal" | "unknown", status).
///
/// # Safety
/// As [`read`].
pub unsafe fn wait(
    p: *mut Proc,
    ctx: *mut RequestCtx,
    co: *mut lua_State,
) -> Result<Step<Ended>, &'static str> {
    // SAFETY: the caller's contract.
    unsafe {
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe wait process:{:X} pid:{}",
            p as usize,
            (*p).pid
        );
        if (*p).closed {
            return Err("exited");
        }
        if (*p).waiter.is_some() {
            return Err("pipe busy waiting");
        }
        if let Some(how) = (*p).ended {
            finalize(p);
            return Ok(Step::Done(how));
        }
        (*p).waiter = Some((ctx, co));
        let t = (*p).timeouts[T_WAIT];
        if t > 0 {
            ngx_add_timer(addr_of_mut!((*p).wait_ev), t);
            nlog::log_debug_http!(
                nlog::cycle_log(),
                "lua pipe add timer for waiting: {t}(ms) process:{:X} pid:{}",
                p as usize,
                (*p).pid
            );
        }
        nlog::log_debug_http!(
            nlog::cycle_log(),
            "lua pipe wait yielding process:{:X} pid:{}",
            p as usize,
            (*p).pid
        );
        Ok(Step::Wait(Box::new(ProcWait(p))))
    }
}

/// Pushes wait()'s results.
///
/// # Safety
/// `l` must have room for 3 values.
pub unsafe fn push_ended(l: *mut lua_State, how: Ended) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        ffi::lua_pushboolean(l, (how.1 == 0) as c_int);
        let reason: &[u8] = match how.0 {
            1 => b"exit",
            2 => b"signal",
            _ => b"unknown",
        };
        push_bytes(l, reason);
        ffi::lua_pushinteger(l, how.1 as _);
    }
    3
}

/// Pushes a read's results: data, or nil, err, partial.
///
/// # Safety
/// `l` must have room for 3 values.
pub unsafe fn push_read(l: *mut lua_State, r: ReadResult) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        match r {
            Ok(data) => {
                push_bytes(l, &data);
                1
            }
            Err((e, partial)) => {
                ffi::lua_pushnil(l);
                push_bytes(l, e.as_bytes());
                push_bytes(l, &partial);
                3
            }
        }
    }
}

/// Pushes a write's results: bytes written, or nil, err.
///
/// # Safety
/// `l` must have room for 2 values.
pub unsafe fn push_write(l: *mut lua_State, r: WriteResult) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        match r {
            Ok(n) => {
                ffi::lua_pushinteger(l, n as _);
                1
            }
            Err(e) => {
                ffi::lua_pushnil(l);
                push_bytes(l, e.as_bytes());
                2
            }
        }
    }
}

struct ChanWait(*mut Chan);

impl Wait for ChanWait {}

impl Drop for ChanWait {
    fn drop(&mut self) {
        // SAFETY: the Chan lives in its Proc, which outlives the waiting
        // coroutine's hold on it.
        unsafe {
            let ch = &mut *self.0;
            // Still set: dropped before its event finished it (the thread
            // was killed or the request ended).
            if let Some((_, _, op)) = ch.waiter.take() {
                let what = match op {
                    Op::Write => "write",
                    Op::Read(_) if ch.stderr => "read stderr",
                    Op::Read(_) => "read stdout",
                };
                nlog::log_debug_http!(nlog::cycle_log(), "lua pipe proc {what} cleanup");
            }
            if !ch.c.is_null() {
                for ev in [(*ch.c).read, (*ch.c).write] {
                    if (*ev).timer_set() != 0 {
                        ngx_del_timer(ev);
                    }
                    if (*ev).posted() != 0 {
                        ngx_delete_posted_event(ev);
                    }
                }
                if ch.abort.take().is_some() {
                    ngx_close_connection(ch.c);
                    ch.c = ptr::null_mut();
                }
            }
        }
    }
}

struct ProcWait(*mut Proc);

impl Wait for ProcWait {}

impl Drop for ProcWait {
    fn drop(&mut self) {
        // SAFETY: as ChanWait.
        unsafe {
            let p = self.0;
            if (*p).waiter.take().is_some() {
                nlog::log_debug_http!(nlog::cycle_log(), "lua pipe proc wait cleanup");
            }
            let ev = addr_of_mut!((*p).wait_ev);
            if (*ev).timer_set() != 0 {
                ngx_del_timer(ev);
            }
            if (*ev).posted() != 0 {
                ngx_delete_posted_event(ev);
            }
        }
    }
}

unsafe extern "C" fn on_wait_event(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: the Proc's own event; a waiter holds the Proc.
        unsafe {
            let p = (*ev).data as *mut Proc;
            let Some((ctx, co)) = (*p).waiter else {
                return;
            };
            let timedout = (*ev).timedout() != 0;
            (*ev).set_timedout(0);
            (*p).waiter = None;
            drop((*ctx).take_wait(co));
            if ffi::lua_checkstack(co, 3) == 0 {
                return;
            }
            let n = if timedout {
                ffi::lua_pushnil(co);
                push_bytes(co, b"timeout");
                2
            } else {
                let how = (*p).ended.unwrap_or((3, 0));
                finalize(p);
                push_ended(co, how)
            };
            wake(ctx, co, n);
        }
    })
}

unsafe extern "C" fn on_chan_event(ev: *mut ngx_event_t) {
    crate::glue::catch((), || {
        // SAFETY: a pipe connection's event; its Chan is live while the
        // connection is open.
        unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            let ch = &mut *((*c).data as *mut Chan);
            let Some((ctx, co, kind)) = ch.waiter.as_ref().map(|(a, b, k)| {
                (
                    *a,
                    *b,
                    match k {
                        Op::Read(k) => Some(*k),
                        Op::Write => None,
                    },
                )
            }) else {
                return;
            };
            let timedout = (*ev).timedout() != 0;
            (*ev).set_timedout(0);
            let p = ch.proc_;
            let outcome: Option<Finished> = if let Some(e) = ch.abort {
                Some(match kind {
                    Some(_) => Finished::Read(Err((e.to_string(), std::mem::take(&mut ch.buf)))),
                    None => Finished::Write(Err(e.to_string())),
                })
            } else if timedout {
                Some(match kind {
                    Some(_) => Finished::Read(Err(("timeout".into(), std::mem::take(&mut ch.buf)))),
                    None => Finished::Write(Err("timeout".into())),
                })
            } else {
                match kind {
                    Some(k) => try_read(ch, k, (*p).chunk).map(Finished::Read),
                    None => try_write(ch).map(Finished::Write),
                }
            };
            let Some(fin) = outcome else {
                // Not done: wait for more.
                if kind.is_some() {
                    ngx_handle_read_event(ev, 0);
                } else {
                    ngx_handle_write_event(ev, 0);
                }
                return;
            };
            // Detaching the wait deletes the timer and, after an abort,
            // closes the pipe.
            let ch = &mut *((*c).data as *mut Chan);
            ch.waiter = None;
            drop((*ctx).take_wait(co));
            if ffi::lua_checkstack(co, 3) == 0 {
                return;
            }
            let n = match fin {
                Finished::Read(r) => push_read(co, r),
                Finished::Write(w) => push_write(co, w),
            };
            wake(ctx, co, n);
        }
    })
}
