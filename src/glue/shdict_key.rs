//! The hash and equality of `ngx.shared.DICT` keys, a word at a time.
//!
//! The store orders its tree by this hash, ties broken by the key bytes, so
//! any hash works as long as every process of the module computes the same
//! one (no seed): a collision only costs a byte comparison. Keys are mostly
//! short, so both read a few (possibly overlapping) words instead of
//! looping over bytes as the table crc32 that lua-nginx-module uses does.
//! Pure: the fuzz target `shdict_codec` checks it.

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;

/// The 128-bit product of `a` and `b`, its halves xored: every input bit
/// reaches many output bits with one multiplication.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read64(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn read32(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_le_bytes(w) as u64
}

/// The words of `s` (at most 16 bytes) as two u64s; with the length they
/// determine `s` (the overlapping reads repeat bytes, never lose one).
#[inline(always)]
fn short_words(s: &[u8]) -> (u64, u64) {
    let n = s.len();
    if n >= 8 {
        (read64(s, 0), read64(s, n - 8))
    } else if n >= 4 {
        (read32(s, 0), read32(s, n - 4))
    } else if n > 0 {
        (
            (s[0] as u64) | (s[n / 2] as u64) << 8 | (s[n - 1] as u64) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

/// A key of at most 16 bytes, read once: the tree walk compares a node's
/// key against these words without re-reading the key or calling memcmp.
#[derive(Clone, Copy)]
pub struct Short {
    pub len: usize,
    pub words: (u64, u64),
    pub hash: u64,
}

impl Short {
    /// None for a key longer than 16 bytes.
    #[inline(always)]
    pub fn new(key: &[u8]) -> Option<Short> {
        if key.len() > 16 {
            return None;
        }
        let words = short_words(key);
        Some(Short {
            len: key.len(),
            words,
            hash: fold(words.0 ^ K1, words.1 ^ K0 ^ key.len() as u64),
        })
    }
}

/// Whether `k` is the short key of length `len` and words `words`.
#[inline(always)]
pub fn is_short(k: &[u8], len: usize, words: (u64, u64)) -> bool {
    k.len() == len && short_words(k) == words
}

/// The key's hash (wyhash-style folded multiplications).
#[inline]
pub fn hash(s: &[u8]) -> u64 {
    match Short::new(s) {
        Some(k) => k.hash,
        None => hash_long(s),
    }
}

/// The hash of a key longer than 16 bytes.
#[inline(never)]
pub fn hash_long(s: &[u8]) -> u64 {
    let mut h = K0 ^ s.len() as u64;
    let mut rest = s;
    while rest.len() > 16 {
        h = fold(read64(rest, 0) ^ K1, read64(rest, 8) ^ h);
        rest = &rest[16..];
    }
    let (a, b) = short_words(rest);
    fold(a ^ K1, b ^ h)
}

/// `a == b`, as the tree compares keys: what the fuzz target checks (the
/// module itself calls the parts).
#[allow(dead_code)]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    match Short::new(a) {
        Some(k) => is_short(b, k.len, k.words),
        None => a == b,
    }
}
