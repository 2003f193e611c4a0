//! The shared dict value codec (src/glue/shdict_codec.rs).
//!
//! Raw `(tag, bytes)` as found in a zone: `decode` never panics and accepts
//! exactly what `encode` can produce (a 1-byte boolean, an 8-byte number,
//! any string); `decode_num` agrees with it.
//!
//! Generated values: decode(encode(v)) is v (numbers bit for bit, NaN and
//! -0 included); nil encodes to the tag 0 that means "delete".

use crate::input_gen::Gen;
use crate::shdict_codec_impl::{Owned, T_BOOLEAN, T_NUMBER, T_STRING, Value, decode, decode_num, encode};

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
}
