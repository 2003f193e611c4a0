//! Reads the Lua source of a `*_by_lua_block { ... }` directive.
//!
//! nginx's own tokenizer would split Lua code on `;` and choke on quotes and
//! braces inside strings and comments, so when a `*_by_lua_block` directive is
//! called (just after nginx consumed its `{`), we read the configuration file
//! ourselves, with Lua's lexical rules, up to the matching `}`. Reading goes
//! through nginx's own conf buffer, refilled from the file exactly as
//! `ngx_conf_read_token` does (so blocks larger than the buffer work, line
//! numbers stay right and `nginx -T` dumps the file intact). The lexer
//! itself is in `lua_lexer.rs`, free of nginx so that it can be fuzzed.
//! A long bracket must close within half the buffer's size (2 KiB):
//! lua-nginx-module searches for its end only in what its buffer holds after
//! it, which depends on where the block falls in the file but is about half
//! the buffer or more.

use nginx_sys::{ngx_conf_t, ngx_read_file};

use super::lua_lexer::{self, Source};

/// A byte source over the configuration file that is being parsed.
struct ConfReader {
    cf: *mut ngx_conf_t,
}

impl Source for ConfReader {
    /// The next byte, refilling nginx's conf buffer from the file when empty.
    fn next(&mut self) -> Result<Option<u8>, String> {
        let b = self.peek()?;
        if let Some(c) = b {
            // SAFETY: peek() left at least one byte at buffer.pos.
            unsafe {
                let cf = &mut *(*self.cf).conf_file;
                (*cf.buffer).pos = (*cf.buffer).pos.add(1);
                if c == b'\n' {
                    cf.line += 1;
                }
            }
        }
        Ok(b)
    }

    fn peek(&mut self) -> Result<Option<u8>, String> {
        // SAFETY: cf->conf_file and its buffer are valid while nginx parses the
        // file; we only move pos/last within [start, end) as nginx does.
        unsafe {
            let cf = &mut *(*self.cf).conf_file;
            let b = &mut *cf.buffer;
            if b.pos >= b.last {
                let size = cf.file.info.st_size;
                if cf.file.offset >= size {
                    return Ok(None);
                }
                let room = b.end.offset_from(b.start) as i64;
                let want = (size - cf.file.offset).min(room) as usize;
                let n = ngx_read_file(&mut cf.file, b.start, want, cf.file.offset);
                if n < 0 || n as usize != want {
                    return Err("failed to read the configuration file".into());
                }
                b.pos = b.start;
                b.last = b.start.add(want);
                if !cf.dump.is_null() {
                    let d = &mut *cf.dump;
                    std::ptr::copy_nonoverlapping(b.pos, d.last, want);
                    d.last = d.last.add(want);
                }
            }
            Ok(Some(*b.pos))
        }
    }

    fn error_lines_back(&mut self, lines: usize) {
        // SAFETY: as in peek(); only the line counter nginx reports changes.
        unsafe {
            let cf = &mut *(*self.cf).conf_file;
            cf.line = cf.line.saturating_sub(lines);
        }
    }
}

/// Reads up to the `}` that closes the block and returns the code between.
/// A long bracket must close within half of nginx's conf buffer: what
/// lua-nginx-module's buffer holds after an opening bracket (where it
/// searches for the close) is about that or more, wherever the block is.
///
/// # Safety
/// `cf` must be the configuration being parsed, inside a directive's setter:
/// the reader moves through its `conf_file` buffer and refills it.
pub unsafe fn read(cf: *mut ngx_conf_t) -> Result<Vec<u8>, String> {
    // SAFETY: cf->conf_file->buffer is valid while nginx parses the file
    // (caller's contract).
    let window = unsafe {
        let b = &*(*(*cf).conf_file).buffer;
        b.end.offset_from(b.start) as usize / 2
    };
    lua_lexer::read_block(&mut ConfReader { cf }, window)
}
