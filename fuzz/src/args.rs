//! Query-string and form decoding (`for_each_arg` in src/glue/escape.rs:
//! `ngx.req.get_uri_args`, `get_post_args`, `ngx.decode_args`).
//!
//! Raw bytes, with any limit: no panic, and the same pairs and "truncated"
//! as a reference scanner written independently from lua-nginx-module's
//! rule (ngx_http_lua_parse_args): every piece that a `&` ends counts
//! toward the limit, even one with an empty key (which is not stored), and
//! reaching the limit at such a `&` stops with "truncated".
//!
//! Generated pairs (any bytes in keys and values, bare keys), encoded as
//! `ngx.encode_args` does, with empty pieces and empty keys mixed in: with
//! no limit they come back in order; with one, as the reference says.

use crate::escape::unescape_model;
use crate::escape_impl::{escape_uri, for_each_arg};
use crate::input_gen::Gen;

/// One decoded pair; `None` is a bare key's value.
type Arg = (Vec<u8>, Option<Vec<u8>>);

/// The pairs `for_each_arg` gives for `s` (unescaped in place in a copy,
/// as the module does), and whether the limit cut them short.
fn parse_args(s: &[u8], max: usize) -> (Vec<Arg>, bool) {
    let mut buf = s.to_vec();
    let mut out = Vec::new();
    let truncated = for_each_arg(&mut buf, max, |k, v| {
        out.push((k.to_vec(), v.map(<[u8]>::to_vec)))
    });
    (out, truncated)
}

fn model(s: &[u8], max: usize) -> (Vec<Arg>, bool) {
    let mut out = Vec::new();
    let mut count = 0;
    let mut start = 0;
    for i in 0..=s.len() {
        let at_end = i == s.len();
        if !at_end && s[i] != b'&' {
            continue;
        }
        let piece = &s[start..i];
        start = i + 1;
        let eq = piece.iter().position(|&c| c == b'=');
        let key = &piece[..eq.unwrap_or(piece.len())];
        if !key.is_empty() {
            out.push((unescape_model(key), eq.map(|e| unescape_model(&piece[e + 1..]))));
        }
        if at_end {
            break;
        }
        count += 1;
        if max > 0 && count == max {
            return (out, true);
        }
    }
    (out, false)
}

fn check(s: &[u8], max: usize) {
    assert_eq!(parse_args(s, max), model(s, max), "input {s:?}, limit {max}");
}

pub fn run(data: &[u8]) {
    let max = data.first().map_or(0, |&b| (b % 8) as usize);
    check(data, 0);
    check(data, max);

    let mut g = Gen::new(data);
    let mut pairs: Vec<Arg> = Vec::new();
    let mut query = Vec::new();
    for _ in 0..g.below(10) {
        match g.below(8) {
            0 => query.push(b'&'),
            1 => {
                query.extend(b"&=");
                query.extend(escape_uri(&g.bytes(6), false));
            }
            _ => {
                let mut key = g.mixed(8, b"&=+% ");
                if key.is_empty() {
                    key.push(b'k');
                }
                let value = g.bool().then(|| g.mixed(12, b"&=+% "));
                if !query.is_empty() {
                    query.push(b'&');
                }
                query.extend(escape_uri(&key, false));
                if let Some(v) = &value {
                    query.push(b'=');
                    query.extend(escape_uri(v, false));
                }
                pairs.push((key, value));
            }
        }
    }
    assert_eq!(parse_args(&query, 0), (pairs, false));
    check(&query, g.below(6));
}
