//! How `ngx.shared.DICT` values are stored as bytes: a type tag (Lua's, as
//! lua-nginx-module numbers them) and the value's bytes. Pure (no nginx), so
//! that the fuzz targets in `fuzz/` can check it.

/// The value types, numbered as Lua's type tags (and lua-nginx-module's).
pub const T_BOOLEAN: u8 = 1;
pub const T_NUMBER: u8 = 3;
pub const T_STRING: u8 = 4;
pub const T_LIST: u8 = 5;

/// A value to store.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Nil,
    Bool(bool),
    Num(f64),
    Str(&'a [u8]),
}

/// A value read back.
#[derive(Debug)]
pub enum Owned {
    Bool(bool),
    Num(f64),
    Str(Vec<u8>),
}

/// The tag and bytes to store for `v` (tag 0 and no bytes for nil, which
/// deletes). `scratch` holds the bytes of a boolean or number.
pub fn encode<'a>(v: &'a Value<'a>, scratch: &'a mut [u8; 8]) -> (u8, &'a [u8]) {
    match v {
        Value::Nil => (0, &[]),
        Value::Bool(b) => {
            scratch[0] = *b as u8;
            (T_BOOLEAN, &scratch[..1])
        }
        Value::Num(f) => {
            *scratch = f.to_ne_bytes();
            (T_NUMBER, &scratch[..])
        }
        Value::Str(s) => (T_STRING, s),
    }
}

/// The number stored as `(ty, b)`, if it is one.
pub fn decode_num(ty: u8, b: &[u8]) -> Option<f64> {
    let a: [u8; 8] = b.try_into().ok().filter(|_| ty == T_NUMBER)?;
    Some(f64::from_ne_bytes(a))
}

/// The value stored as `(ty, b)`. The zone is shared memory that every
/// worker writes, so a tag or size that `encode` cannot have produced is an
/// error (lua-nginx-module's messages), never a panic.
pub fn decode(ty: u8, b: &[u8]) -> Result<Owned, &'static str> {
    match ty {
        T_BOOLEAN => match b {
            [c] => Ok(Owned::Bool(*c != 0)),
            _ => Err("bad lua boolean value size found"),
        },
        T_NUMBER => decode_num(ty, b)
            .map(Owned::Num)
            .ok_or("bad lua number value size found"),
        T_STRING => Ok(Owned::Str(b.to_vec())),
        _ => Err("bad value type found"),
    }
}
