//! Reads the Lua source of a `*_by_lua_block { ... }` directive.
//!
//! nginx's own tokenizer would split Lua code on `;` and choke on quotes and
//! braces inside strings and comments, so when a `*_by_lua_block` directive is
//! called (just after nginx consumed its `{`), we read the configuration file
//! ourselves, with Lua's lexical rules, up to the matching `}`. Reading goes
//! through nginx's own conf buffer, refilled from the file exactly as
//! `ngx_conf_read_token` does (so blocks larger than the buffer work, line
//! numbers stay right and `nginx -T` dumps the file intact).

use nginx_sys::{ngx_conf_t, ngx_read_file};

/// A byte source over the configuration file that is being parsed.
struct ConfReader {
    cf: *mut ngx_conf_t,
}

impl ConfReader {
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
}

/// Lexer state between bytes.
enum State {
    Code,
    Quoted(u8),
    LongBracket { level: usize },
    LineComment,
}

/// Reads up to the `}` that closes the block and returns the code between.
pub fn read(cf: *mut ngx_conf_t) -> Result<Vec<u8>, String> {
    let mut rd = ConfReader { cf };
    let mut out = Vec::with_capacity(256);
    let mut depth = 0usize;
    let mut state = State::Code;
    while let Some(c) = rd.next()? {
        state = match state {
            State::Code => match c {
                b'{' => {
                    depth += 1;
                    State::Code
                }
                b'}' if depth == 0 => return Ok(out),
                b'}' => {
                    depth -= 1;
                    State::Code
                }
                b'"' | b'\'' => State::Quoted(c),
                b'[' => {
                    out.push(c);
                    state = match open_long_bracket(&mut rd, &mut out)? {
                        Some(level) => State::LongBracket { level },
                        None => State::Code,
                    };
                    continue;
                }
                b'-' if rd.peek()? == Some(b'-') => {
                    out.push(c);
                    out.push(rd.next()?.unwrap_or(b'-'));
                    if rd.peek()? == Some(b'[') {
                        out.push(rd.next()?.unwrap_or(b'['));
                        if let Some(level) = open_long_bracket(&mut rd, &mut out)? {
                            state = State::LongBracket { level };
                            continue;
                        }
                    }
                    state = State::LineComment;
                    continue;
                }
                _ => State::Code,
            },
            State::Quoted(q) => {
                if c == b'\\' {
                    out.push(c);
                    match rd.next()? {
                        Some(e) => out.push(e),
                        None => break,
                    }
                    state = State::Quoted(q);
                    continue;
                }
                if c == q {
                    State::Code
                } else {
                    State::Quoted(q)
                }
            }
            State::LongBracket { level } => {
                if c == b']' {
                    out.push(c);
                    let mut eq = 0;
                    while rd.peek()? == Some(b'=') {
                        out.push(rd.next()?.unwrap_or(b'='));
                        eq += 1;
                    }
                    if eq == level && rd.peek()? == Some(b']') {
                        out.push(rd.next()?.unwrap_or(b']'));
                        state = State::Code;
                    } else {
                        state = State::LongBracket { level };
                    }
                    continue;
                }
                State::LongBracket { level }
            }
            State::LineComment => {
                if c == b'\n' {
                    State::Code
                } else {
                    State::LineComment
                }
            }
        };
        out.push(c);
    }
    Err(match state {
        State::Quoted(_) => "unexpected end of file, unterminated Lua string in the block".into(),
        State::LongBracket { .. } => {
            "unexpected end of file, unterminated Lua long bracket in the block".into()
        }
        _ => "unexpected end of file, expecting \"}\"".into(),
    })
}

/// After a `[`: consumes `=`* and, if a second `[` follows, returns the level
/// of the long bracket it opens.
fn open_long_bracket(rd: &mut ConfReader, out: &mut Vec<u8>) -> Result<Option<usize>, String> {
    let mut level = 0;
    while rd.peek()? == Some(b'=') {
        out.push(rd.next()?.unwrap_or(b'='));
        level += 1;
    }
    if rd.peek()? == Some(b'[') {
        out.push(rd.next()?.unwrap_or(b'['));
        return Ok(Some(level));
    }
    Ok(None)
}
