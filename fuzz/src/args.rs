//! Query-string and form decoding (`parse_args` in src/glue/escape.rs:
//! `ngx.req.get_uri_args`, `get_post_args`, `ngx.decode_args`).
//!
//! Raw bytes, with any limit: no panic, the same pairs as a reference
//! parser written independently, at most `max` pairs, "truncated" only when
//! a further pair was left out.
//!
//! Generated pairs (any bytes in keys and values, bare keys), encoded as
//! `ngx.encode_args` does, with empty pieces and empty keys mixed in: they
//! come back in order, cut at the limit.

use crate::escape::unescape_model;
use crate::escape_impl::{escape_uri, parse_args, Arg};
use crate::gen::Gen;

/// Reference: `&`-separated pieces, key before the first `=`, pieces with
/// an empty (raw) key skipped.
fn model(s: &[u8]) -> Vec<Arg> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..=s.len() {
        if i < s.len() && s[i] != b'&' {
            continue;
        }
        let piece = &s[start..i];
        start = i + 1;
        let eq = piece.iter().position(|&c| c == b'=');
        let key = &piece[..eq.unwrap_or(piece.len())];
        if key.is_empty() {
            continue;
        }
        out.push((unescape_model(key), eq.map(|e| unescape_model(&piece[e + 1..]))));
    }
    out
}

fn check_limit(all: &[Arg], s: &[u8], max: usize) {
    let (got, truncated) = parse_args(s, max);
    if max == 0 || all.len() <= max {
        assert_eq!(got, all);
        assert!(!truncated, "truncated without a limit reached");
    } else {
        assert_eq!(got, &all[..max]);
        assert!(truncated, "{} pairs, limit {max}, not truncated", all.len());
    }
}

pub fn run(data: &[u8]) {
    let all = model(data);
    let max = data.first().map_or(0, |&b| (b % 8) as usize);
    check_limit(&all, data, 0);
    check_limit(&all, data, max);

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
    let max = g.below(6);
    check_limit(&pairs, &query, 0);
    check_limit(&pairs, &query, max);
}
