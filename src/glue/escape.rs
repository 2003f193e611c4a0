//! Byte-level encodings shared by the URI, args and header APIs: percent
//! escaping as lua-nginx-module does it, and query-string parsing.

use std::borrow::Cow;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// What `ngx.escape_uri` leaves as it is in a URI component (its default
/// type 2): RFC 3986's unreserved bytes and, as lua-nginx-module's table
/// has it, `!`, `'`, `(`, `)` and `*`.
fn component_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'!' | b'\'' | b'(' | b')' | b'*')
}

/// Controls, space, DEL and 8-bit bytes: escaped by every type but 5 and 6.
fn control_or_8bit(c: u8) -> bool {
    c <= 0x20 || c >= 0x7f
}

/// What must be escaped in a whole URI (`ngx.escape_uri(s, 0)`, nginx's
/// URI escaping): controls, space, 8-bit bytes, `#`, `%` and `?`.
fn uri_reserved(c: u8) -> bool {
    control_or_8bit(c) || matches!(c, b'#' | b'%' | b'?')
}

/// Which bytes `ngx.escape_uri(s, kind)` escapes, for lua-nginx-module's
/// types: 0 a whole URI, 1 query arguments, 2 a URI component, 3 HTML, 4 a
/// refresh header, 5 and 6 memcached keys and mail auth. `None` for other
/// kinds.
pub fn escape_kind(kind: i64) -> Option<fn(u8) -> bool> {
    Some(match kind {
        0 => uri_reserved,
        1 => |c| uri_reserved(c) || c == b'+',
        2 => |c| !component_safe(c),
        3 => |c| control_or_8bit(c) || matches!(c, b'"' | b'#' | b'%' | b'\''),
        4 => |c| control_or_8bit(c) || matches!(c, b'"' | b'\''),
        5 | 6 => |c| c <= 0x20 || c == b'%',
        _ => return None,
    })
}

/// The escaping of `ngx.escape_uri(s, kind)` ([`escape_kind`]).
pub fn escape_uri_kind(s: &[u8], kind: i64) -> Option<Vec<u8>> {
    Some(escape_with(s, escape_kind(kind)?))
}

/// The length of `s` escaped where `must` says so.
pub fn escaped_len(s: &[u8], must: fn(u8) -> bool) -> usize {
    s.len() + 2 * s.iter().filter(|&&c| must(c)).count()
}

/// `s` escaped where `must` says so, written at the start of `dst`, which
/// has room for [`escaped_len`] bytes.
pub fn escape_into(s: &[u8], must: fn(u8) -> bool, dst: &mut [u8]) {
    let mut o = 0;
    for &c in s {
        if must(c) {
            dst[o..o + 3].copy_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
            o += 3;
        } else {
            dst[o] = c;
            o += 1;
        }
    }
}

/// Header names: separators of RFC 7230 tokens, controls and 8-bit bytes.
fn header_name_unsafe(c: u8) -> bool {
    c <= 0x20
        || c >= 0x7f
        || matches!(
            c,
            b'"' | b'('
                | b')'
                | b','
                | b'/'
                | b':'
                | b';'
                | b'<'
                | b'='
                | b'>'
                | b'?'
                | b'@'
                | b'['
                | b']'
                | b'\\'
                | b'{'
                | b'}'
        )
}

/// Header values: every control byte but TAB (CR and LF would split the
/// header).
fn header_value_unsafe(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

fn escape_with(s: &[u8], must: impl Fn(u8) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    escape_append(s, must, &mut out);
    out
}

/// `s` escaped where `must` says so, appended to `out`.
fn escape_append(s: &[u8], must: impl Fn(u8) -> bool, out: &mut Vec<u8>) {
    out.reserve(s.len());
    for &c in s {
        if must(c) {
            out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        } else {
            out.push(c);
        }
    }
}

/// `ngx.escape_uri` of type 2 (a URI component, the default), or of type 0
/// (a whole URI) when `whole_uri`.
// The module appends (`escape_uri_append`); the fuzz targets check this.
#[allow(dead_code)]
pub fn escape_uri(s: &[u8], whole_uri: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    escape_uri_append(s, whole_uri, &mut out);
    out
}

/// [`escape_uri`] appended to `out`.
pub fn escape_uri_append(s: &[u8], whole_uri: bool, out: &mut Vec<u8>) {
    if whole_uri {
        escape_append(s, uri_reserved, out)
    } else {
        escape_append(s, |c| !component_safe(c), out)
    }
}

/// A header name made safe: borrowed as it is when nothing needs escaping
/// (the usual case, which then costs no allocation).
pub fn escape_header_name(s: &[u8]) -> Cow<'_, [u8]> {
    if s.iter().any(|&c| header_name_unsafe(c)) {
        Cow::Owned(escape_with(s, header_name_unsafe))
    } else {
        Cow::Borrowed(s)
    }
}

/// A header value made safe, borrowed when nothing needs escaping.
pub fn escape_header_value(s: &[u8]) -> Cow<'_, [u8]> {
    if s.iter().any(|&c| header_value_unsafe(c)) {
        Cow::Owned(escape_with(s, header_value_unsafe))
    } else {
        Cow::Borrowed(s)
    }
}

/// What lua-nginx-module escapes in a query string given as a Lua string
/// (`ngx.req.set_uri_args("...")`): controls, space and DEL, the bytes that
/// would end or split the request line sent upstream. Everything else,
/// `&`, `=`, `%` and 8-bit bytes included, passes as it is.
fn args_unsafe(c: u8) -> bool {
    c <= 0x20 || c == 0x7f
}

/// A query string from Lua made safe for a request line (see `args_unsafe`).
pub fn escape_args(s: &[u8]) -> Vec<u8> {
    escape_with(s, args_unsafe)
}

/// The first byte lua-nginx-module refuses in a URI given to
/// `ngx.req.set_uri` or `ngx.redirect`: controls other than TAB, and DEL.
pub fn unsafe_uri_byte(s: &[u8]) -> Option<u8> {
    s.iter().copied().find(|&c| (c < 0x20 && c != b'\t') || c == 0x7f)
}

/// A string as lua-nginx-module quotes it in an error message: controls,
/// double quote, backslash and bytes from DEL up become `\xHH`.
pub fn escape_log(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if !(0x20..0x7f).contains(&c) || c == b'"' || c == b'\\' {
            out.push_str(&format!("\\x{c:02X}"));
        } else {
            out.push(c as char);
        }
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `ngx.unescape_uri`: `%XX` decoded, `+` becomes a space, malformed escapes
/// are kept as they are.
pub fn unescape_uri(s: &[u8]) -> Vec<u8> {
    let mut out = s.to_vec();
    let n = unescape_in_place(&mut out);
    out.truncate(n);
    out
}

/// [`unescape_uri`] over the bytes of `s` themselves (the result is never
/// longer than its source); the result's length.
pub fn unescape_in_place(s: &mut [u8]) -> usize {
    let mut i = 0;
    let mut o = 0;
    while i < s.len() {
        let c = match s[i] {
            b'%' if i + 2 < s.len() => match (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                (Some(h), Some(l)) => {
                    i += 2;
                    h << 4 | l
                }
                _ => b'%',
            },
            b'+' => b' ',
            c => c,
        };
        s[o] = c;
        o += 1;
        i += 1;
    }
    o
}

/// Splits a query string as lua-nginx-module does: pairs separated by `&`,
/// keys and values unescaped (in place, in `s`), empty keys dropped; `f`
/// gets each pair, `None` for a bare key's value. Stops after `max` pairs
/// (0: no limit); the result says whether pairs were left out.
pub fn for_each_arg(s: &mut [u8], max: usize, mut f: impl FnMut(&[u8], Option<&[u8]>)) -> bool {
    // lua-nginx-module's counting: every piece that a '&' ends counts
    // toward `max`, even one with an empty key (which is not stored), and
    // reaching `max` there reports "truncated" even if nothing follows.
    let mut count = 0;
    let mut rest = s;
    loop {
        let cur = std::mem::take(&mut rest);
        let (piece, more) = match cur.iter().position(|&c| c == b'&') {
            Some(i) => {
                let (piece, more) = cur.split_at_mut(i);
                (piece, Some(&mut more[1..]))
            }
            None => (cur, None),
        };
        let (k, v) = match piece.iter().position(|&c| c == b'=') {
            Some(i) => {
                let (k, v) = piece.split_at_mut(i);
                let v = &mut v[1..];
                let n = unescape_in_place(v);
                (k, Some(&v[..n]))
            }
            None => (piece, None),
        };
        let n = unescape_in_place(k);
        if n > 0 {
            f(&k[..n], v);
        }
        let Some(more) = more else {
            return false;
        };
        count += 1;
        if max > 0 && count == max {
            return true;
        }
        rest = more;
    }
}

/// How many pairs [`for_each_arg`] could give for `s` at most: a table size.
pub fn arg_count_hint(s: &[u8], max: usize) -> usize {
    let n = s.iter().filter(|&&c| c == b'&').count() + 1;
    if max > 0 { n.min(max) } else { n }
}

/// MIME base64 input for `decode_base64mime`: everything outside the
/// alphabet (line breaks, spaces) is skipped, decoding stops at padding.
pub fn base64_mime_filter(s: &[u8]) -> Vec<u8> {
    s.iter()
        .copied()
        .take_while(|&c| c != b'=')
        .filter(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        .collect()
}

/// `ngx.quote_sql_str`: a single-quoted MySQL string literal.
// The module appends (`quote_sql_append`); the fuzz targets check this.
#[allow(dead_code)]
pub fn quote_sql(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    quote_sql_append(s, &mut out);
    out
}

/// [`quote_sql`] appended to `out`.
pub fn quote_sql_append(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'\'');
    for &c in s {
        match c {
            0 => out.extend_from_slice(b"\\0"),
            8 => out.extend_from_slice(b"\\b"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            26 => out.extend_from_slice(b"\\Z"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\'' => out.extend_from_slice(b"\\'"),
            b'"' => out.extend_from_slice(b"\\\""),
            c => out.push(c),
        }
    }
    out.push(b'\'');
}

/// CRC-32 (IEEE), the checksum nginx's `ngx_crc32_*` compute.
pub fn crc32(s: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in s {
        crc = CRC_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc ^ 0xffff_ffff
}

/// CRC-32's table, built at compile time: no initialisation check on every
/// shared dict lookup.
static CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};
