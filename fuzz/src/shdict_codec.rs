//! The shared dict value codec (src/glue/shdict_codec.rs).
//!
//! Raw `(tag, bytes)` as found in a zone: `decode` never panics and accepts
//! exactly what `encode` can produce (a 1-byte boolean, an 8-byte number,
//! any string); `decode_num` agrees with it.
//!
//! Generated values: decode(encode(v)) is v (numbers bit for bit, NaN and
//! -0 included); nil encodes to the tag 0 that means "delete".
//!
//! Keys (src/glue/shdict_key.rs): the word-wise `eq` agrees with `==` on
//! generated pairs (equal, one byte changed, any two), and equal keys hash
//! alike wherever they sit in memory.

use crate::input_gen::Gen;
use crate::shdict_codec_impl::{Owned, T_BOOLEAN, T_NUMBER, T_STRING, Value, decode, decode_num, encode};
use crate::shdict_key_impl as key;

pub fn run(data: &[u8]) {
    if let Some((&ty, bytes)) = data.split_first() {
        let valid = match ty {
            T_BOOLEAN => bytes.len() == 1,
            T_NUMBER => bytes.len() == 8,
            T_STRING => true,
            _ => false,
        };
        let d = decode(ty, bytes);
        assert_eq!(d.is_ok(), valid, "tag {ty}, {} bytes: {d:?}", bytes.len());
        let n = decode_num(ty, bytes);
        match d {
            Ok(Owned::Num(x)) => assert_eq!(n.map(f64::to_bits), Some(x.to_bits())),
            _ => assert!(n.is_none()),
        }
    }

    let mut scratch = [0u8; 8];
    assert_eq!(encode(&Value::Nil, &mut scratch), (0, &[][..]));

    let mut g = Gen::new(data);
    while !g.is_empty() {
        let bytes = g.bytes(64);
        let v = match g.below(3) {
            0 => Value::Bool(g.bool()),
            1 => {
                let mut b = [0u8; 8];
                b.iter_mut().for_each(|x| *x = g.byte());
                Value::Num(f64::from_bits(u64::from_le_bytes(b)))
            }
            _ => Value::Str(&bytes),
        };
        let mut scratch = [0u8; 8];
        let (ty, enc) = encode(&v, &mut scratch);
        let enc = enc.to_vec();
        match (v, decode(ty, &enc)) {
            (Value::Bool(a), Ok(Owned::Bool(b))) => assert_eq!(a, b),
            (Value::Num(a), Ok(Owned::Num(b))) => assert_eq!(a.to_bits(), b.to_bits()),
            (Value::Str(a), Ok(Owned::Str(b))) => assert_eq!(a, &b[..]),
            (v, d) => panic!("{v:?} came back as {d:?}"),
        }
    }
    keys(data);
}

fn keys(data: &[u8]) {
    let mut g = Gen::new(data);
    while !g.is_empty() {
        let a = g.bytes(80);
        let b = g.bytes(80);
        assert_eq!(key::eq(&a, &b), a == b, "{a:?} {b:?}");
        // The same bytes at another address (another alignment).
        let mut moved = vec![0u8; a.len() + 1];
        moved[1..].copy_from_slice(&a);
        assert!(key::eq(&a, &moved[1..]));
        assert_eq!(key::hash(&a), key::hash(&moved[1..]));
        if !a.is_empty() {
            let mut c = a.clone();
            let i = g.below(a.len());
            c[i] ^= 1 << g.below(8);
            assert!(!key::eq(&a, &c), "{a:?} {c:?}");
        }
    }
}
