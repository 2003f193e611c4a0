//! What our own Lua faces and their FFI functions share: the codes those
//! functions return and the buffer the faces read request data from.
//!
//! A call through LuaJIT's FFI is cheap in a compiled trace but not in the
//! interpreter, where request handlers without loops run: there every
//! argument is converted one by one, a pointer argument is checked for
//! type compatibility, and a pointer result is boxed in a new cdata. So the
//! private functions our faces call (`ngx_http_lua_rs_*`, next to
//! lua-nginx-module's `ngx_http_lua_ffi_*`, which stay for code written
//! against that ABI) take strings and numbers only and return a number:
//! a value's length, its bytes copied here, where the face's `ffi.string`
//! reads them through a pointer it fetched once.

use std::cell::UnsafeCell;
use std::ffi::c_int;

use crate::glue::loop_local::loop_local;

/// Our faces' codes besides a length: "ask the classic function" (an error
/// to raise, a value too long for the buffer, no request running), and
/// not found (Lua's nil).
pub const FALLBACK: c_int = -1;
pub const NOT_FOUND: c_int = -5;

/// lua-nginx-module's codes, for the functions of its ABI we export.
pub const FFI_OK: c_int = 0;
pub const FFI_ERROR: c_int = -1;
pub const FFI_DECLINED: c_int = -5;
pub const FFI_BAD_CONTEXT: c_int = -101;

/// Values longer than this go through the classic C functions instead.
pub const LEN: usize = 4096;

/// The buffer's bytes, aligned for the pairs written at its start.
#[repr(C, align(16))]
struct Aligned([u8; LEN]);

loop_local! {
    static SCRATCH: UnsafeCell<Aligned> = UnsafeCell::new(Aligned([0; LEN]));
}

/// The running thread's buffer: the event loop's for the VMs requests run
/// in, which a face may fetch once; a pool thread's own for a VM of
/// `ngx.run_worker_thread`, which runs on whichever pool thread takes it,
/// so a face loaded there (ngx.re.sub's) fetches it on every call.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_scratch() -> *mut u8 {
    SCRATCH.with(|b| b.get().cast())
}

/// Copies `value` into the buffer: its length, or None when it does not fit.
pub fn put(value: &[u8]) -> Option<usize> {
    put_mapped(value, |c| c)
}

/// Copies `value` into the buffer, each byte through `map`: its length, or
/// None when it does not fit.
pub fn put_mapped(value: &[u8], map: impl Fn(u8) -> u8) -> Option<usize> {
    if value.len() > LEN {
        return None;
    }
    SCRATCH.with(|b| {
        // SAFETY: the buffer has LEN >= value.len() bytes; nothing else
        // holds a reference into it (the faces read it only between calls).
        let dst = unsafe { std::slice::from_raw_parts_mut(b.get().cast::<u8>(), value.len()) };
        for (d, &c) in dst.iter_mut().zip(value) {
            *d = map(c);
        }
    });
    Some(value.len())
}

/// The answer of a read for a face: the value's length (its bytes in the
/// buffer), NOT_FOUND for none, FALLBACK for a value that does not fit.
pub fn answer(found: Option<&[u8]>) -> c_int {
    match found {
        None => NOT_FOUND,
        Some(v) => put(v).map_or(FALLBACK, |n| n as c_int),
    }
}

/// Appends parts to the buffer, as long as they fit.
pub struct Writer {
    buf: *mut u8,
    len: usize,
    overflow: bool,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            buf: SCRATCH.with(|b| b.get().cast()),
            len: 0,
            overflow: false,
        }
    }

    pub fn push(&mut self, part: &[u8]) {
        if self.overflow || part.len() > LEN - self.len {
            self.overflow = true;
            return;
        }
        // SAFETY: len + part.len() <= LEN (checked above), in the running
        // thread's buffer, which nothing else references during the call
        // that writes it.
        unsafe { copy_small(part, self.buf.add(self.len)) };
        self.len += part.len();
    }

    /// The length written, or None when a part did not fit.
    pub fn finish(self) -> Option<usize> {
        (!self.overflow).then_some(self.len)
    }
}

impl Default for Writer {
    fn default() -> Writer {
        Writer::new()
    }
}

/// Copies `src` to `dst`. A template's parts are mostly a few bytes, for
/// which a call to memcpy costs several times the copy: up to 16 bytes
/// are copied as two overlapping words (or bytes), as memcpy itself does.
///
/// # Safety
/// `dst` is writable for `src.len()` bytes and does not overlap `src`.
#[inline]
unsafe fn copy_small(src: &[u8], dst: *mut u8) {
    let (n, s) = (src.len(), src.as_ptr());
    // SAFETY: every access is within the first `n` bytes of `s` and `dst`
    // (the caller's contract); unaligned reads and writes are allowed.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                *dst = *s;
                *dst.add(n / 2) = *s.add(n / 2);
                *dst.add(n - 1) = *s.add(n - 1);
            }
            4..=7 => copy_ends::<u32>(s, dst, n),
            8..=16 => copy_ends::<u64>(s, dst, n),
            _ => std::ptr::copy_nonoverlapping(s, dst, n),
        }
    }
}

/// Copies `n` bytes from `s` to `dst` as two words of type `W`, the first
/// and the last, which overlap when `n` is under two words.
///
/// # Safety
/// `size_of::<W>() <= n`; `s` is readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_ends<W: Copy>(s: *const u8, dst: *mut u8, n: usize) {
    let w = std::mem::size_of::<W>();
    // SAFETY: both words lie within the first `n` bytes (the caller's
    // contract); unaligned reads and writes are allowed.
    unsafe {
        let (a, b) = (
            s.cast::<W>().read_unaligned(),
            s.add(n - w).cast::<W>().read_unaligned(),
        );
        dst.cast::<W>().write_unaligned(a);
        dst.add(n - w).cast::<W>().write_unaligned(b);
    }
}

/// A key and value for a table our faces build in Lua: `value` null stands
/// for Lua's true (a query argument without '='). Lua declares it as
/// `ngx_http_lua_rs_pair_t`.
#[repr(C)]
pub struct Pair {
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
}

/// Fills the buffer with pairs from its start and, from its end, the
/// bytes of keys that need a copy (lower-cased header names).
pub struct PairWriter {
    n: usize,
    tail: usize,
}

impl PairWriter {
    pub fn new() -> PairWriter {
        PairWriter { n: 0, tail: LEN }
    }

    /// Adds a pair whose key and value live at least until the face has
    /// read them (in the request's memory); false when it does not fit.
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) -> bool {
        let size = std::mem::size_of::<Pair>();
        if (self.n + 1) * size > self.tail {
            return false;
        }
        let pair = Pair {
            key: key.as_ptr(),
            key_len: key.len(),
            value: value.map_or(std::ptr::null(), <[u8]>::as_ptr),
            value_len: value.map_or(0, <[u8]>::len),
        };
        let at = self.n * size;
        SCRATCH.with(|b| {
            // SAFETY: at + size <= tail <= LEN (checked above); the buffer
            // is 16-aligned and `at` a multiple of the size of Pair, whose
            // alignment divides it.
            unsafe { std::ptr::write(b.get().cast::<u8>().add(at).cast::<Pair>(), pair) };
        });
        self.n += 1;
        true
    }

    /// Adds a pair whose key is `key` lower-cased, copied into the buffer.
    pub fn push_lowered(&mut self, key: &[u8], value: Option<&[u8]>) -> bool {
        let size = std::mem::size_of::<Pair>();
        if key.len() > self.tail || (self.n + 1) * size > self.tail - key.len() {
            return false;
        }
        self.tail -= key.len();
        let at = self.tail;
        let copy = SCRATCH.with(|b| {
            // SAFETY: [at, at + key.len()) lies in the buffer, past every
            // pair (checked above); nothing else refers to those bytes.
            unsafe {
                let dst = b.get().cast::<u8>().add(at);
                std::ptr::copy_nonoverlapping(key.as_ptr(), dst, key.len());
                let copy = std::slice::from_raw_parts_mut(dst, key.len());
                copy.make_ascii_lowercase();
                &*copy
            }
        });
        self.push(copy, value)
    }

    /// The number of pairs added.
    pub fn count(&self) -> usize {
        self.n
    }
}

impl Default for PairWriter {
    fn default() -> PairWriter {
        PairWriter::new()
    }
}
