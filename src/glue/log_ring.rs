//! The ring buffer of `lua_capture_error_log`: error-log lines of this
//! worker, oldest first, each with its level and time.
//!
//! The layout and the eviction rules are lua-nginx-module's, so that a
//! buffer of a given size holds the same lines as there: each entry is a
//! 16-byte header (time as a double, length, level) followed by the text;
//! an entry never wraps, so when the space up to the end cannot hold it the
//! end is marked (`sentinel`) and writing starts again at the front, and
//! the oldest entries are thrown away until the new one fits.
//!
//! The buffer lives in the cycle's pool (allocated by the directive), not in
//! a Rust owner: nginx may log through it until the pool itself is freed.

use std::ptr;

/// Bytes of the header before each entry's text.
const HEADER: usize = 16;

#[repr(C)]
struct Header {
    time: f64,
    len: u32,
    level: u32,
}

/// One worker's captured lines. Offsets into `data`, which holds `size`
/// bytes.
pub struct LogRing {
    data: *mut u8,
    size: usize,
    head: usize,
    tail: usize,
    sentinel: usize,
    count: usize,
    /// Lines of a level above this one (less severe) are not kept.
    pub filter_level: usize,
}

impl LogRing {
    /// A ring over `size` bytes at `data`, keeping every level.
    ///
    /// # Safety
    /// `data` must point to `size` writable bytes that outlive the ring.
    pub unsafe fn new(data: *mut u8, size: usize) -> LogRing {
        LogRing {
            data,
            size,
            head: 0,
            tail: 0,
            sentinel: size,
            count: 0,
            filter_level: nginx_sys::NGX_LOG_DEBUG as usize,
        }
    }

    fn reset(&mut self) {
        self.head = 0;
        self.tail = 0;
        self.sentinel = self.size;
        self.count = 0;
    }

    fn header(&self, at: usize) -> Header {
        // SAFETY: `at` is the offset of an entry's header, which was written
        // whole inside the buffer (read unaligned: entries are packed).
        unsafe { ptr::read_unaligned(self.data.add(at) as *const Header) }
    }

    /// Where the next entry starts: the front when no header fits before
    /// the end, or when `head` reached the end mark.
    fn next_header(&self) -> usize {
        if self.size - self.head < HEADER || self.head >= self.sentinel {
            0
        } else {
            self.head
        }
    }

    fn throw_away(&mut self) {
        if self.count == 0 {
            return;
        }
        let h = self.header(self.head);
        self.head += HEADER + h.len as usize;
        self.count -= 1;
        if self.count == 0 {
            self.reset();
        }
        self.head = self.next_header();
    }

    fn free_space(&self) -> usize {
        if self.count == 0 {
            self.size
        } else if self.tail > self.head {
            self.size - self.tail
        } else {
            self.head - self.tail
        }
    }

    /// Keeps `text` (a line without its newline) at `level`, dropping the
    /// oldest lines as needed; a line larger than the whole buffer is not
    /// kept.
    pub fn write(&mut self, level: usize, text: &[u8], now: f64) {
        let need = text.len() + HEADER;
        if need > self.size {
            return;
        }
        if self.free_space() < need {
            if self.size - self.tail < need {
                // Not enough room before the end: drop everything between
                // head and the end mark, then wrap to the front.
                let mut guard = self.count;
                while self.head >= self.tail && self.count > 0 && guard > 0 {
                    self.throw_away();
                    guard -= 1;
                }
                self.sentinel = self.tail;
                self.tail = 0;
            }
            let mut guard = self.count + 1;
            while self.free_space() < need && guard > 0 {
                self.throw_away();
                guard -= 1;
            }
            if self.free_space() < need {
                return;
            }
        }
        let h = Header {
            time: now,
            len: text.len() as u32,
            level: level as u32,
        };
        // SAFETY: free_space() >= need, so header and text fit in the
        // buffer from `tail` on.
        unsafe {
            ptr::write_unaligned(self.data.add(self.tail) as *mut Header, h);
            ptr::copy_nonoverlapping(text.as_ptr(), self.data.add(self.tail + HEADER), text.len());
        }
        self.tail += need;
        self.count += 1;
        if self.tail > self.sentinel {
            self.sentinel = self.tail;
        }
    }

    /// Takes the oldest line: (level, time, text). The text stays valid
    /// until the next write.
    pub fn read(&mut self) -> Option<(usize, f64, &[u8])> {
        if self.count == 0 || self.head >= self.sentinel {
            return None;
        }
        let h = self.header(self.head);
        let start = self.head + HEADER;
        self.head = start + h.len as usize;
        self.count -= 1;
        if self.count == 0 {
            self.reset();
        }
        self.head = self.next_header();
        // SAFETY: the entry's text was written whole at `start`; a reset
        // only moves offsets, the bytes stay until the next write.
        let text = unsafe { std::slice::from_raw_parts(self.data.add(start), h.len as usize) };
        Some((h.level as usize, h.time, text))
    }
}
