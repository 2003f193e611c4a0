//! The buffer our own Lua faces read request data from.
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

use crate::glue::loop_local::loop_local;

/// Values longer than this go through the classic C functions instead.
pub const LEN: usize = 4096;

loop_local! {
    static SCRATCH: UnsafeCell<[u8; LEN]> = UnsafeCell::new([0; LEN]);
}

/// The running thread's buffer (the event loop's, for every VM the
/// workers run requests in).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_scratch() -> *mut u8 {
    SCRATCH.with(|b| b.get().cast())
}

/// Copies `value` into the buffer: its length, or None when it does not fit.
pub fn put(value: &[u8]) -> Option<usize> {
    if value.len() > LEN {
        return None;
    }
    SCRATCH.with(|b| {
        // SAFETY: the buffer has LEN >= value.len() bytes; nothing else
        // holds a reference into it (the faces read it only between calls).
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), b.get().cast::<u8>(), value.len()) };
    });
    Some(value.len())
}

/// Appends parts to the buffer, as long as they fit.
pub struct Writer {
    len: usize,
    overflow: bool,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            len: 0,
            overflow: false,
        }
    }

    pub fn push(&mut self, part: &[u8]) {
        if self.overflow || part.len() > LEN - self.len {
            self.overflow = true;
            return;
        }
        let at = self.len;
        SCRATCH.with(|b| {
            // SAFETY: at + part.len() <= LEN (checked above); nothing else
            // holds a reference into the buffer.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), b.get().cast::<u8>().add(at), part.len()) };
        });
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
