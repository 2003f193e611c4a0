//! The `*_by_lua_block` reader (src/directives/lua_lexer.rs).
//!
//! Raw bytes: no panic; on success the code is exactly the bytes before the
//! closing `}` and nothing after it was needed; on failure the whole input
//! was read and the message is one of the end-of-file errors.
//!
//! Generated Lua text (code, nested braces, short strings with escapes, long
//! strings and comments of any level, line comments, all holding braces,
//! quotes and brackets): followed by `}`, it is given back byte for byte;
//! left open in a string, a long bracket or a brace, the matching error.

use crate::input_gen::Gen;
use crate::lua_lexer::{Source, read_block};

/// A byte source over a slice, counting what was consumed.
pub struct Bytes<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl Source for Bytes<'_> {
    fn next(&mut self) -> Result<Option<u8>, String> {
        let b = self.data.get(self.pos).copied();
        if b.is_some() {
            self.pos += 1;
        }
        Ok(b)
    }
    fn peek(&mut self) -> Result<Option<u8>, String> {
        Ok(self.data.get(self.pos).copied())
    }
}

const EOF_BRACE: &str = "unexpected end of file, expecting \"}\"";
const EOF_STRING: &str = "unexpected end of file, unterminated Lua string in the block";
/// The start of the error for a long bracket left open (its close follows).
const EOF_LONG: &str = "Lua code block missing the closing long bracket \"]";

fn eof_long(level: usize) -> String {
    format!(
        "{EOF_LONG}{}]\", the inlined Lua code may be too long",
        "=".repeat(level)
    )
}

/// Reads a block from `data`: the result and how many bytes were consumed.
pub fn read(data: &[u8]) -> (Result<Vec<u8>, String>, usize) {
    read_within(data, usize::MAX)
}

/// The same, long brackets limited to `window` bytes.
pub fn read_within(data: &[u8], window: usize) -> (Result<Vec<u8>, String>, usize) {
    let mut src = Bytes { data, pos: 0 };
    let r = read_block(&mut src, window);
    (r, src.pos)
}

pub fn run(data: &[u8]) {
    raw(data);
    generated(data);
}

fn raw(data: &[u8]) {
    let (r, pos) = read(data);
    match &r {
        Ok(code) => {
            assert!(pos >= 1 && data[pos - 1] == b'}', "the block must end at a '}}'");
            assert_eq!(code, &data[..pos - 1], "the code is every byte before the '}}'");
            // Nothing after the `}` was looked at: the same prefix alone
            // reads the same.
            let (again, pos2) = read(&data[..pos]);
            assert_eq!(again.as_deref(), Ok(&code[..]));
            assert_eq!(pos2, pos);
        }
        Err(e) => {
            assert_eq!(pos, data.len(), "errors come only at the end of the input");
            assert!(
                [EOF_BRACE, EOF_STRING].contains(&e.as_str()) || e.starts_with(EOF_LONG),
                "unexpected error {e:?}"
            );
        }
    }
    // A small window changes nothing but long brackets that outgrow it.
    let (small, _) = read_within(data, 16);
    if small != r {
        let e = small.expect_err("a window only adds errors");
        assert!(e.starts_with(EOF_LONG), "unexpected error {e:?}");
    }
}

/// Code bytes that are not the start of anything: no braces, quotes, `[` or
/// `-` (they have tokens of their own).
const CODE: &[u8] = b"abcxyz019 _\t\n\r;=.,:()*/+<>~#]\x00\xc3\xff";
/// Bytes that matter inside strings and comments.
const TRICKY: &[u8] = b"{}[]=-'\"\\\n\r]]";

/// A long bracket `[==[ ... ]==]` of a random level whose content holds no
/// earlier close of the same level.
fn long_bracket(g: &mut Gen) -> Vec<u8> {
    let level = g.below(4);
    let close: Vec<u8> = [&b"]"[..], &b"=".repeat(level), b"]"].concat();
    let mut content = g.mixed(24, TRICKY);
    let mut whole = [&content[..], &close].concat();
    if find(&whole, &close) != Some(content.len()) {
        content.retain(|&c| c != b']');
        whole = [&content[..], &close].concat();
    }
    [&b"["[..], &b"=".repeat(level), b"[", &whole].concat()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Lua text that ends outside any string or comment, braces balanced.
fn lua_text(g: &mut Gen, depth: usize, out: &mut Vec<u8>) {
    let n = g.below(12);
    for _ in 0..n {
        if g.is_empty() {
            return;
        }
        match g.below(9) {
            0 => {
                let k = 1 + g.below(8);
                out.extend((0..k).map(|_| g.pick(CODE)));
            }
            // a minus that does not start a comment
            1 => out.extend([b'-', g.pick(b" 1a(")]),
            2 if depth < 4 => {
                out.push(b'{');
                lua_text(g, depth + 1, out);
                out.push(b'}');
            }
            3 | 2 => {
                let q = g.pick(b"\"'");
                out.push(q);
                for _ in 0..g.below(16) {
                    if g.below(5) == 0 {
                        out.extend([b'\\', g.byte()]);
                    } else {
                        let c = g.pick(TRICKY);
                        let c = if g.bool() { c } else { g.byte() };
                        out.push(if c == q || c == b'\\' { b'x' } else { c });
                    }
                }
                out.push(q);
            }
            4 => out.extend(long_bracket(g)),
            5 => {
                out.extend(b"--");
                let mut c = g.mixed(20, TRICKY);
                c.retain(|&b| b != b'\n');
                if c.first() == Some(&b'[') {
                    c.insert(0, b' ');
                }
                out.extend(c);
                out.push(b'\n');
            }
            6 => {
                out.extend(b"--");
                out.extend(long_bracket(g));
            }
            // a `[` that opens no long bracket (an index, `[=` then not `[`)
            7 => {
                out.push(b'[');
                out.extend(b"=".repeat(g.below(3)));
                out.push(g.pick(b"1a ]"));
            }
            _ => out.push(g.pick(b"\n\t ")),
        }
    }
}

fn generated(data: &[u8]) {
    let mut g = Gen::new(data);
    let mut text = Vec::new();
    lua_text(&mut g, 0, &mut text);
    let ending = g.below(5);
    let mut input = text.clone();
    let want: Result<Vec<u8>, String> = match ending {
        0 => Err(EOF_BRACE.into()),
        1 => {
            input.push(b'{');
            for _ in 0..g.below(8) {
                let c = g.pick(CODE);
                input.push(c);
            }
            Err(EOF_BRACE.into())
        }
        2 => {
            let q = g.pick(b"\"'");
            input.push(q);
            input.extend(g.mixed(8, b"{}-[]").into_iter().filter(|&c| c != q && c != b'\\'));
            Err(EOF_STRING.into())
        }
        3 => {
            let open = long_bracket(&mut g);
            // drop the close: `[==[` and the content, the close removed
            let level = open.iter().skip(1).take_while(|&&c| c == b'=').count();
            input.extend(&open[..open.len() - (level + 2)]);
            Err(eof_long(level))
        }
        _ => {
            input.push(b'}');
            input.extend(g.bytes(8));
            Ok(text.clone())
        }
    };
    let (got, pos) = read(&input);
    match want {
        Ok(code) => {
            assert_eq!(
                got.as_deref(),
                Ok(&code[..]),
                "text {:?}",
                String::from_utf8_lossy(&text)
            );
            assert_eq!(pos, code.len() + 1);
        }
        Err(e) => assert_eq!(
            got,
            Err(e.to_string()),
            "input {:?}",
            String::from_utf8_lossy(&input)
        ),
    }
}
