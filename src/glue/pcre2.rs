//! PCRE2 (8-bit), the regex library nginx itself links: the few functions
//! ngx.re.* needs, and `Regex`, a compiled pattern with its own match data.
//!
//! Linked dynamically against the system libpcre2-8 (build.rs asks
//! pkg-config); /usr/sbin/nginx loads the same library.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::ptr;

pub const ANCHORED: u32 = 0x8000_0000;
pub const NO_UTF_CHECK: u32 = 0x4000_0000;
pub const ALT_BSUX: u32 = 0x0000_0002;
pub const CASELESS: u32 = 0x0000_0008;
pub const DOTALL: u32 = 0x0000_0020;
pub const DUPNAMES: u32 = 0x0000_0040;
pub const EXTENDED: u32 = 0x0000_0080;
pub const MATCH_UNSET_BACKREF: u32 = 0x0000_0200;
pub const MULTILINE: u32 = 0x0000_0400;
pub const UTF: u32 = 0x0008_0000;

const JIT_COMPLETE: u32 = 1;
const INFO_CAPTURECOUNT: u32 = 4;
const INFO_NAMECOUNT: u32 = 17;
const INFO_NAMEENTRYSIZE: u32 = 18;
const INFO_NAMETABLE: u32 = 19;
pub const ERROR_NOMATCH: c_int = -1;
const UNSET: usize = usize::MAX;
/// PCRE2's own default match limit, used when lua_regex_match_limit is 0.
const DEFAULT_MATCH_LIMIT: u32 = 10_000_000;
const DFA_WORKSPACE: usize = 100;

#[allow(non_camel_case_types)]
type pcre2_code = c_void;
#[allow(non_camel_case_types)]
type pcre2_match_data = c_void;
#[allow(non_camel_case_types)]
type pcre2_match_context = c_void;
#[allow(non_camel_case_types)]
type pcre2_jit_stack = c_void;

#[link(name = "pcre2-8")]
unsafe extern "C" {
    fn pcre2_compile_8(
        pattern: *const u8,
        len: usize,
        options: u32,
        errcode: *mut c_int,
        erroffset: *mut usize,
        ccontext: *mut c_void,
    ) -> *mut pcre2_code;
    fn pcre2_code_free_8(code: *mut pcre2_code);
    fn pcre2_jit_compile_8(code: *mut pcre2_code, options: u32) -> c_int;
    fn pcre2_pattern_info_8(code: *const pcre2_code, what: u32, where_: *mut c_void) -> c_int;
    fn pcre2_get_error_message_8(code: c_int, buf: *mut u8, len: usize) -> c_int;
    fn pcre2_match_data_create_from_pattern_8(
        code: *const pcre2_code,
        gcontext: *mut c_void,
    ) -> *mut pcre2_match_data;
    fn pcre2_match_data_free_8(md: *mut pcre2_match_data);
    fn pcre2_get_ovector_pointer_8(md: *mut pcre2_match_data) -> *mut usize;
    fn pcre2_match_8(
        code: *const pcre2_code,
        subject: *const u8,
        len: usize,
        start: usize,
        options: u32,
        md: *mut pcre2_match_data,
        mcontext: *mut pcre2_match_context,
    ) -> c_int;
    fn pcre2_jit_match_8(
        code: *const pcre2_code,
        subject: *const u8,
        len: usize,
        start: usize,
        options: u32,
        md: *mut pcre2_match_data,
        mcontext: *mut pcre2_match_context,
    ) -> c_int;
    fn pcre2_dfa_match_8(
        code: *const pcre2_code,
        subject: *const u8,
        len: usize,
        start: usize,
        options: u32,
        md: *mut pcre2_match_data,
        mcontext: *mut pcre2_match_context,
        workspace: *mut c_int,
        wscount: usize,
    ) -> c_int;
    fn pcre2_match_context_create_8(gcontext: *mut c_void) -> *mut pcre2_match_context;
    fn pcre2_set_match_limit_8(mcontext: *mut pcre2_match_context, limit: u32) -> c_int;
    fn pcre2_jit_stack_create_8(start: usize, max: usize, gcontext: *mut c_void) -> *mut pcre2_jit_stack;
    fn pcre2_jit_stack_free_8(stack: *mut pcre2_jit_stack);
    fn pcre2_match_context_free_8(mcontext: *mut pcre2_match_context);
    fn pcre2_jit_stack_assign_8(mcontext: *mut pcre2_match_context, cb: *mut c_void, data: *mut c_void);
}

/// How a pattern is compiled and run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mode {
    /// PCRE2 compile options.
    pub options: u32,
    pub jit: bool,
    pub dfa: bool,
    /// `U`: the subject is trusted to be valid UTF-8.
    pub no_utf_check: bool,
}

/// A compiled pattern and the match data its matches fill.
pub struct Regex {
    code: *mut pcre2_code,
    md: *mut pcre2_match_data,
    pub mode: Mode,
    /// Number of capturing groups (0 in DFA mode, which has none).
    pub ncaptures: usize,
    /// (group number, name), in PCRE2's name table order.
    pub names: Vec<(usize, Vec<u8>)>,
    /// Matches go straight to the JIT code (`pcre2_jit_match`): the
    /// pattern was JIT-compiled and the subject needs no UTF check, which
    /// is all `pcre2_match` would do on top (about 120 instructions a
    /// match).
    jit_direct: bool,
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: both were created by compile() and are freed only here.
        unsafe {
            pcre2_match_data_free_8(self.md);
            pcre2_code_free_8(self.code);
        }
    }
}

/// nginx's wording: `pcre2_compile() failed: <why> in "<pattern>"`, with
/// ` at "<rest>"` when the error is not at the end.
fn compile_error(errcode: c_int, offset: usize, pattern: &[u8]) -> String {
    let mut buf = [0u8; 128];
    // SAFETY: the buffer and its length match.
    let n = unsafe { pcre2_get_error_message_8(errcode, buf.as_mut_ptr(), buf.len()) };
    let why = String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned();
    let pat = String::from_utf8_lossy(pattern);
    if offset >= pattern.len() {
        format!("pcre2_compile() failed: {why} in \"{pat}\"")
    } else {
        let rest = String::from_utf8_lossy(&pattern[offset..]);
        format!("pcre2_compile() failed: {why} in \"{pat}\" at \"{rest}\"")
    }
}

/// Compiles `pattern`; the error text is nginx's.
pub fn compile(pattern: &[u8], mode: Mode) -> Result<Regex, String> {
    let (mut errcode, mut erroff) = (0, 0usize);
    // SAFETY: pattern pointer and length match; out-params are locals.
    let code = unsafe {
        pcre2_compile_8(
            pattern.as_ptr(),
            pattern.len(),
            mode.options,
            &mut errcode,
            &mut erroff,
            ptr::null_mut(),
        )
    };
    if code.is_null() {
        return Err(compile_error(errcode, erroff, pattern));
    }
    let mut jit_direct = false;
    if mode.jit {
        // A pattern the JIT cannot handle still runs in the interpreter,
        // as in lua-nginx-module. (DFA matching never uses the JIT code.)
        // SAFETY: code is a valid compiled pattern.
        let jitted = mode.dfa || unsafe { pcre2_jit_compile_8(code, JIT_COMPLETE) } == 0;
        jit_direct = jitted && !mode.dfa && (mode.options & UTF == 0 || mode.no_utf_check);
        super::log::log_debug_http!(
            super::log::cycle_log(),
            "pcre JIT compiling result: {}",
            jitted as u8
        );
    }
    // SAFETY: code is valid; the match data is freed with the Regex.
    let md = unsafe { pcre2_match_data_create_from_pattern_8(code, ptr::null_mut()) };
    if md.is_null() {
        // SAFETY: code is ours and not shared yet.
        unsafe { pcre2_code_free_8(code) };
        return Err("pcre2_match_data_create_from_pattern() failed".into());
    }
    let mut re = Regex {
        code,
        md,
        mode,
        ncaptures: 0,
        names: Vec::new(),
        jit_direct,
    };
    if !mode.dfa {
        re.ncaptures = re.info_u32(INFO_CAPTURECOUNT) as usize;
    }
    re.names = re.read_names();
    Ok(re)
}

impl Regex {
    fn info_u32(&self, what: u32) -> u32 {
        let mut v = 0u32;
        // SAFETY: the asked items are uint32_t.
        unsafe { pcre2_pattern_info_8(self.code, what, (&mut v as *mut u32).cast()) };
        v
    }

    fn read_names(&self) -> Vec<(usize, Vec<u8>)> {
        let count = self.info_u32(INFO_NAMECOUNT) as usize;
        let size = self.info_u32(INFO_NAMEENTRYSIZE) as usize;
        if count == 0 || self.mode.dfa {
            return Vec::new();
        }
        let mut table: *const u8 = ptr::null();
        // SAFETY: INFO_NAMETABLE yields a pointer into the compiled code,
        // `count` entries of `size` bytes: a 2-byte group number, then the
        // NUL-terminated name.
        unsafe {
            pcre2_pattern_info_8(self.code, INFO_NAMETABLE, (&mut table as *mut *const u8).cast());
            let all = std::slice::from_raw_parts(table, count * size);
            all.chunks(size)
                .map(|e| {
                    let n = ((e[0] as usize) << 8) | e[1] as usize;
                    let name = &e[2..];
                    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                    (n, name[..end].to_vec())
                })
                .collect()
        }
    }

    /// Runs the pattern on `subject` from byte `start`. `Ok(None)`: no match;
    /// `Ok(Some(n))`: the first `n` pairs of `ovector()` are set; `Err(rc)`:
    /// PCRE2's error code.
    pub fn exec(&self, subject: &[u8], start: usize, limit: usize) -> Result<Option<usize>, c_int> {
        if start > subject.len() {
            return Ok(None);
        }
        let opts = if self.mode.no_utf_check { NO_UTF_CHECK } else { 0 };
        let rc = with_match_context(limit, |mctx| {
            // SAFETY: code and match data are ours; subject pointer and length match.
            unsafe {
                if self.mode.dfa {
                    let mut ws = [0 as c_int; DFA_WORKSPACE];
                    pcre2_dfa_match_8(
                        self.code,
                        subject.as_ptr(),
                        subject.len(),
                        start,
                        opts,
                        self.md,
                        mctx,
                        ws.as_mut_ptr(),
                        ws.len(),
                    )
                } else {
                    // The two take the same arguments.
                    let run = if self.jit_direct {
                        pcre2_jit_match_8
                    } else {
                        pcre2_match_8
                    };
                    run(
                        self.code,
                        subject.as_ptr(),
                        subject.len(),
                        start,
                        opts,
                        self.md,
                        mctx,
                    )
                }
            }
        });
        match rc {
            ERROR_NOMATCH => Ok(None),
            // 0: the ovector was too small. DFA reports the longest match first.
            0 if self.mode.dfa => Ok(Some(1)),
            0 => Err(0),
            n if n < 0 => Err(n),
            n if self.mode.dfa => Ok(Some(n.min(1) as usize)),
            n => Ok(Some(n as usize)),
        }
    }

    /// Group `i` of the last match, `None` when it did not take part.
    pub fn group(&self, i: usize) -> Option<(usize, usize)> {
        // SAFETY: the ovector has ncaptures + 1 pairs and i is checked.
        unsafe {
            if i > self.ncaptures {
                return None;
            }
            let ov = pcre2_get_ovector_pointer_8(self.md);
            let (s, e) = (*ov.add(2 * i), *ov.add(2 * i + 1));
            (s != UNSET && e != UNSET).then_some((s, e))
        }
    }
}

struct MatchState {
    mctx: *mut pcre2_match_context,
    jit_stack: *mut pcre2_jit_stack,
}

// Per thread (ngx.run_worker_thread's VMs match on pool threads), without
// a thread-local access on the event loop's.
super::loop_local::loop_local! {
    // One match context per process: it carries lua_regex_match_limit (set
    // before each match from the configuration) and the JIT stack of
    // ngx.re.opt("jit_stack_size"); PCRE2 scratch memory, no cycle's state
    // (and this leaf cannot reach the VM).
    static MATCH: RefCell<MatchState> = const {
        RefCell::new(MatchState { mctx: ptr::null_mut(), jit_stack: ptr::null_mut() })
    };
}

fn with_match_context<R>(limit: usize, f: impl FnOnce(*mut pcre2_match_context) -> R) -> R {
    let mctx = MATCH.with(|m| {
        let mut m = m.borrow_mut();
        if m.mctx.is_null() {
            // SAFETY: default general context; kept for the process lifetime.
            m.mctx = unsafe { pcre2_match_context_create_8(ptr::null_mut()) };
        }
        m.mctx
    });
    if !mctx.is_null() {
        let limit = if limit == 0 {
            DEFAULT_MATCH_LIMIT
        } else {
            limit.min(u32::MAX as usize) as u32
        };
        // SAFETY: mctx is a live match context.
        unsafe { pcre2_set_match_limit_8(mctx, limit) };
    }
    f(mctx)
}

/// Frees this thread's match context and JIT stack, as the process exits
/// (called from exit_process, once no Lua code runs any more; a pool
/// thread's go with its thread-local).
pub fn release_match_state() {
    MATCH.with(|m| m.borrow_mut().release());
}

impl MatchState {
    fn release(&mut self) {
        // SAFETY: both were created by this module for this thread and are
        // nulled here, so nothing uses or frees them again.
        unsafe {
            if !self.mctx.is_null() {
                pcre2_match_context_free_8(self.mctx);
            }
            if !self.jit_stack.is_null() {
                pcre2_jit_stack_free_8(self.jit_stack);
            }
        }
        self.mctx = ptr::null_mut();
        self.jit_stack = ptr::null_mut();
    }
}

impl Drop for MatchState {
    fn drop(&mut self) {
        self.release();
    }
}

/// Gives JIT matches a stack of up to `size` bytes.
pub fn set_jit_stack_size(size: usize) -> Result<(), String> {
    const MIN: usize = 32 * 1024;
    let size = size.max(MIN);
    with_match_context(0, |mctx| {
        if mctx.is_null() {
            return Err("pcre2_match_context_create() failed".to_string());
        }
        // SAFETY: the new stack replaces the old one on the context before
        // the old one is freed; no match runs meanwhile (one thread).
        unsafe {
            let stack = pcre2_jit_stack_create_8(MIN, size, ptr::null_mut());
            if stack.is_null() {
                return Err("pcre2_jit_stack_create() failed".to_string());
            }
            pcre2_jit_stack_assign_8(mctx, ptr::null_mut(), stack);
            MATCH.with(|m| {
                let mut m = m.borrow_mut();
                if !m.jit_stack.is_null() {
                    pcre2_jit_stack_free_8(m.jit_stack);
                }
                m.jit_stack = stack;
            });
        }
        Ok(())
    })
}
