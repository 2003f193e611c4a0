//! Percent escaping and friends (src/glue/escape.rs).
//!
//! - `unescape_uri` agrees with a reference decoder written independently,
//!   and never grows its input;
//! - `escape_uri` (component and whole-URI) emits only what its kind
//!   allows (a component keeps RFC 3986's unreserved bytes and, as in
//!   lua-nginx-module's table, `!'()*`), `%XX` in upper case, and
//!   `unescape_uri` takes it back to the original (for a whole URI, `+` is
//!   not escaped, so it comes back as a space, as `ngx.unescape_uri`
//!   documents);
//! - header name/value escaping leaves no byte that could split a header
//!   (names: no separator, control or 8-bit byte);
//! - `quote_sql` is a single-quoted literal that unquotes to the input;
//! - `crc32` agrees with the bitwise definition.

use crate::escape_impl::{
    base64_mime_filter, crc32, escape_header_name, escape_header_value, escape_uri, quote_sql, unescape_uri,
};

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Reference decoder: a `%` with two hex digits after it is a byte, `+` a
/// space, anything else itself.
pub fn unescape_model(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'%'
            && let [h, l, more @ ..] = tail
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            out.push(h * 16 + l);
            rest = more;
            continue;
        }
        out.push(if c == b'+' { b' ' } else { c });
        rest = tail;
    }
    out
}

fn is_upper_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'A'..=b'F').contains(&c)
}

/// Every `%` of `e` starts an upper-case `%XX`; returns the bytes that are
/// not part of an escape.
fn plain_bytes(e: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < e.len() {
        if e[i] == b'%' {
            assert!(
                i + 2 < e.len() && is_upper_hex(e[i + 1]) && is_upper_hex(e[i + 2]),
                "a bare % in {e:?}"
            );
            i += 3;
        } else {
            out.push(e[i]);
            i += 1;
        }
    }
    out
}

fn bitwise_crc32(s: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in s {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Undoes `quote_sql`, checking that nothing but escapes stands for a quote
/// or a backslash.
fn unquote_sql(q: &[u8]) -> Vec<u8> {
    assert!(
        q.len() >= 2 && q[0] == b'\'' && q[q.len() - 1] == b'\'',
        "not quoted: {q:?}"
    );
    let inner = &q[1..q.len() - 1];
    let mut out = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        assert!(c != b'\'' && c != b'"', "an unescaped quote in {q:?}");
        if c == b'\\' {
            let e = inner.get(i + 1).copied().expect("a trailing backslash");
            out.push(match e {
                b'0' => 0,
                b'b' => 8,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'Z' => 26,
                b'\\' | b'\'' | b'"' => e,
                _ => panic!("unknown escape \\{}", e as char),
            });
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

pub fn run(data: &[u8]) {
    let u = unescape_uri(data);
    assert_eq!(u, unescape_model(data));
    assert!(u.len() <= data.len());

    let component = escape_uri(data, false);
    let plain = plain_bytes(&component);
    assert!(
        plain
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"-._~!'()*".contains(&c))
    );
    assert_eq!(unescape_uri(&component), data);

    let whole = escape_uri(data, true);
    assert!(
        plain_bytes(&whole)
            .iter()
            .all(|&c| c > 0x20 && c < 0x7f && !b"#?".contains(&c))
    );
    let back: Vec<u8> = data.iter().map(|&c| if c == b'+' { b' ' } else { c }).collect();
    assert_eq!(unescape_uri(&whole), back);

    // (`%` itself is not escaped in header names, as in lua-nginx-module)
    let name = escape_header_name(data);
    assert!(
        name.iter()
            .all(|&c| c > 0x20 && c < 0x7f && !b"\"(),/:;<=>?@[\\]{}".contains(&c))
    );
    let value = escape_header_value(data);
    assert!(!value.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0));

    assert_eq!(unquote_sql(&quote_sql(data)), data);
    assert_eq!(crc32(data), bitwise_crc32(data));

    let b64 = base64_mime_filter(data);
    assert!(
        b64.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    );
    assert!(b64.len() <= data.len());
}
