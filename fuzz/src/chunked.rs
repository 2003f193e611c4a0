//! The chunked transfer-encoding decoder (src/runtime/chunked.rs).
//!
//! Raw bytes, fed whole and fed in random pieces: no panic, and the same
//! body, error and end state either way (a decoder fed as bytes arrive must
//! not depend on where reads split); the body is never longer than the input.
//!
//! Generated bodies (random chunks, hex sizes in either case with leading
//! zeros, extensions, CRLF or bare LF, trailer fields, bytes after the end),
//! fed in random pieces: the body comes back exactly, the decoder ends at the
//! terminating chunk and ignores what follows.

use crate::chunked_impl::Chunked;
use crate::input_gen::{Gen, pieces};

/// Feeds `input` in pieces; stops at the first error like its callers do.
fn decode(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<(), ()>, bool) {
    let mut c = Chunked::default();
    let mut out = Vec::new();
    for p in pieces(input, cuts) {
        if let Err(e) = c.feed(p, &mut out) {
            return (out, Err(e), c.done());
        }
    }
    (out, Ok(()), c.done())
}

pub fn run(data: &[u8]) {
    raw(data);
    generated(data);
}

fn raw(data: &[u8]) {
    let whole = decode(data, &[]);
    assert!(whole.0.len() <= data.len());
    // cuts taken from the input itself, so the fuzzer explores them too
    let mut g = Gen::new(data);
    let cuts = g.cuts(data.len());
    assert_eq!(decode(data, &cuts), whole, "split at {cuts:?}");
    let every: Vec<usize> = (0..=data.len()).collect();
    assert_eq!(decode(data, &every), whole, "fed byte by byte");
}

fn eol(g: &mut Gen) -> &'static [u8] {
    if g.below(4) == 0 { b"\n" } else { b"\r\n" }
}

fn size_line(g: &mut Gen, size: usize, out: &mut Vec<u8>) {
    out.extend(b"0".repeat(g.below(3)));
    let hex = if g.bool() {
        format!("{size:x}")
    } else {
        format!("{size:X}")
    };
    out.extend(hex.as_bytes());
    match g.below(4) {
        0 => out.extend(b";name=value"),
        1 => out.extend(b" ;q=\"a;b\""),
        2 => out.extend(b"\t;x"),
        _ => {}
    }
    out.extend(eol(g));
}

fn generated(data: &[u8]) {
    let mut g = Gen::new(data);
    let mut body = Vec::new();
    let mut wire = Vec::new();
    for _ in 0..g.below(6) {
        // sizes up to a few hundred bytes, sometimes a single byte
        let n = 1 + g.below(300);
        let chunk: Vec<u8> = (0..n).map(|i| g.byte() ^ i as u8).collect();
        size_line(&mut g, n, &mut wire);
        wire.extend(&chunk);
        wire.extend(eol(&mut g));
        body.extend(chunk);
    }
    size_line(&mut g, 0, &mut wire);
    for _ in 0..g.below(3) {
        wire.extend(b"X-Trailer: v\r");
        wire.extend(eol(&mut g));
    }
    wire.extend(eol(&mut g));
    let end = wire.len();
    wire.extend(g.bytes(16));
    let cuts = g.cuts(wire.len());

    let mut c = Chunked::default();
    let mut out = Vec::new();
    let mut fed = 0;
    for p in pieces(&wire, &cuts) {
        assert!(!c.done() || fed >= end, "done before the last chunk");
        assert_eq!(
            c.feed(p, &mut out),
            Ok(()),
            "wire {:?}",
            String::from_utf8_lossy(&wire)
        );
        fed += p.len();
        if fed >= end {
            assert!(c.done(), "not done after the last chunk");
        }
    }
    assert!(c.done());
    assert_eq!(out, body);
}
