//! Turns fuzzer bytes into choices. Every method is total: once the bytes
//! run out it answers 0/empty, so generators end by themselves.

pub struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Gen<'a> {
    pub fn new(data: &'a [u8]) -> Gen<'a> {
        Gen { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number in `0..n` (`n` > 0), from up to two bytes.
    pub fn below(&mut self, n: usize) -> usize {
        let v = if n > 256 {
            (self.byte() as usize) << 8 | self.byte() as usize
        } else {
            self.byte() as usize
        };
        v % n
    }

    /// One of `set`.
    pub fn pick(&mut self, set: &[u8]) -> u8 {
        set[self.below(set.len())]
    }

    /// Up to `max` raw bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.byte()).collect()
    }

    /// Up to `max` bytes, each either raw (half of the time) or from `set`,
    /// so that the bytes that matter to a parser come often.
    pub fn mixed(&mut self, max: usize, set: &[u8]) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| {
                let b = self.byte();
                if b & 0x80 != 0 {
                    set[(b & 0x7f) as usize % set.len()]
                } else {
                    self.byte()
                }
            })
            .collect()
    }

    /// Split points for feeding `len` bytes in pieces: sorted, in 0..=len.
    pub fn cuts(&mut self, len: usize) -> Vec<usize> {
        let n = self.below(8);
        let mut c: Vec<usize> = (0..n).map(|_| self.below(len + 1)).collect();
        c.sort_unstable();
        c
    }
}

/// `data` cut at `cuts` (sorted) into consecutive pieces.
pub fn pieces<'d>(data: &'d [u8], cuts: &[usize]) -> Vec<&'d [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        out.push(&data[at..c]);
        at = c;
    }
    out.push(&data[at..]);
    out
}
