//! The Lua-aware lexer of `*_by_lua_block { ... }`: finds the `}` that
//! closes the block, skipping braces inside Lua strings, comments and long
//! brackets. Pure (no nginx): `lua_block.rs` feeds it nginx's conf buffer,
//! the fuzz targets in `fuzz/` feed it bytes.

/// Where the lexer reads bytes from. `Err` is an I/O failure, reported as is.
pub trait Source {
    /// The next byte (consumed), or `None` at the end of the input.
    fn next(&mut self) -> Result<Option<u8>, String>;
    /// The next byte, not consumed.
    fn peek(&mut self) -> Result<Option<u8>, String>;
    /// The error about to be returned concerns a place `lines` newlines
    /// back (nginx then reports that line).
    fn error_lines_back(&mut self, _lines: usize) {}
}

/// Lexer state between bytes.
enum State {
    Code,
    Quoted(u8),
    /// `open` is where the opening `[` is in the output.
    LongBracket {
        level: usize,
        open: usize,
    },
    LineComment,
}

/// Reads up to the `}` that closes the block (consumed, not returned) and
/// returns the code before it, byte for byte.
///
/// A long bracket (string or comment) must close within `max_long` bytes of
/// its opening `[`: lua-nginx-module looks for the closing bracket only in
/// the configuration buffer it holds (nginx's 4 KiB), and refuses the
/// configuration with "missing the closing long bracket" when it is not
/// there, as it does at the end of the file.
pub fn read_block<S: Source>(rd: &mut S, max_long: usize) -> Result<Vec<u8>, String> {
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
                    let open = out.len();
                    out.push(c);
                    state = match open_long_bracket(rd, &mut out)? {
                        Some(level) => State::LongBracket { level, open },
                        None => State::Code,
                    };
                    continue;
                }
                b'-' if rd.peek()? == Some(b'-') => {
                    out.push(c);
                    out.push(rd.next()?.unwrap_or(b'-'));
                    if rd.peek()? == Some(b'[') {
                        let open = out.len();
                        out.push(rd.next()?.unwrap_or(b'['));
                        if let Some(level) = open_long_bracket(rd, &mut out)? {
                            state = State::LongBracket { level, open };
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
                if c == q { State::Code } else { State::Quoted(q) }
            }
            State::LongBracket { level, open } => {
                if out.len() - open >= max_long {
                    return Err(missing_close(rd, &out[open..], level));
                }
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
                        state = State::LongBracket { level, open };
                    }
                    continue;
                }
                State::LongBracket { level, open }
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
        State::LongBracket { level, open } => missing_close(rd, &out[open..], level),
        _ => "unexpected end of file, expecting \"}\"".into(),
    })
}

/// lua-nginx-module's error for a long bracket that does not close (in the
/// file or in its buffer), reported at the line of the opening bracket.
fn missing_close<S: Source>(rd: &mut S, from_open: &[u8], level: usize) -> String {
    rd.error_lines_back(from_open.iter().filter(|&&c| c == b'\n').count());
    format!(
        "Lua code block missing the closing long bracket \"]{}]\", the inlined Lua code may be too long",
        "=".repeat(level)
    )
}

/// After a `[`: consumes `=`* and, if a second `[` follows, returns the level
/// of the long bracket it opens.
fn open_long_bracket<S: Source>(rd: &mut S, out: &mut Vec<u8>) -> Result<Option<usize>, String> {
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
