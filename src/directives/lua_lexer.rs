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
}

/// Lexer state between bytes.
enum State {
    Code,
    Quoted(u8),
    LongBracket { level: usize },
    LineComment,
}

/// Reads up to the `}` that closes the block (consumed, not returned) and
/// returns the code before it, byte for byte.
pub fn read_block<S: Source>(rd: &mut S) -> Result<Vec<u8>, String> {
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
                    state = match open_long_bracket(rd, &mut out)? {
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
                        if let Some(level) = open_long_bracket(rd, &mut out)? {
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
