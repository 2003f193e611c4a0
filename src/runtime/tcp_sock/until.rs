//! The matcher behind `receiveuntil`: a pattern scanned byte by byte
//! across reads, as lua-nginx-module does.
//!
//! Bytes that may start the pattern are not handed out while undecided: they
//! live in the iterator's match state (not in the socket's buffer), so a
//! `receive()` between two iterator calls does not see them, and a read that
//! fails meanwhile returns the data before them only. When a candidate turns
//! out not to be the pattern, the bytes it held are released as data (the
//! pattern's own prefix, since that is what they were).
//!
//! The state is per iterator and survives between calls. With a size limit,
//! a call that finds the pattern returns the data before it and the next call
//! returns `nil, nil, nil` (the end of that piece of the stream).

use std::cell::Cell;

pub struct UntilPat {
    pub pat: Vec<u8>,
    pub inclusive: bool,
    /// fail[k]: the length of the longest proper border of pat[..k].
    fail: Vec<usize>,
    /// Bytes of the pattern matched so far; -1 after a size-limited call
    /// found the pattern (the next call ends that piece).
    pub state: Cell<isize>,
}

/// What one scan of buffered bytes did.
pub enum Scan {
    /// The read is complete; `used` bytes were consumed.
    Done(usize),
    /// All bytes consumed, more are needed.
    Again,
}

impl UntilPat {
    pub fn new(pat: Vec<u8>, inclusive: bool) -> UntilPat {
        let mut fail = vec![0usize; pat.len() + 1];
        let mut k = 0;
        for i in 1..pat.len() {
            while k > 0 && pat[i] != pat[k] {
                k = fail[k];
            }
            if pat[i] == pat[k] {
                k += 1;
            }
            fail[i + 1] = k;
        }
        UntilPat {
            pat,
            inclusive,
            fail,
            state: Cell::new(0),
        }
    }

    /// The match state after byte `c` breaks a partial match of `s` bytes:
    /// the longest pattern prefix that `pat[..s]` + `c` ends with.
    fn recover(&self, mut s: usize, c: u8) -> usize {
        while s > 0 {
            s = self.fail[s];
            if self.pat[s] == c {
                return s + 1;
            }
        }
        0
    }

    /// Scans `input`, appending data to `out`. `limit` is the size asked
    /// for (0: none), `rest` what is left of it.
    pub fn scan(&self, input: &[u8], out: &mut Vec<u8>, limit: usize, rest: &mut usize) -> Scan {
        let pat = &self.pat;
        let mut state = self.state.get().max(0) as usize;
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            if c == pat[state] {
                i += 1;
                state += 1;
                if state == pat.len() {
                    self.state.set(if limit > 0 { -1 } else { 0 });
                    if self.inclusive {
                        out.extend_from_slice(pat);
                    }
                    return Scan::Done(i);
                }
                continue;
            }
            if state == 0 {
                out.push(c);
                i += 1;
                if limit > 0 {
                    *rest -= 1;
                    if *rest == 0 {
                        self.state.set(0);
                        return Scan::Done(i);
                    }
                }
                continue;
            }
            let next = if state >= 2 { self.recover(state, c) } else { 0 };
            if next < 2 {
                // Not a longer candidate: the held bytes are data; `c` is
                // looked at again from the start state.
                out.extend_from_slice(&pat[..state]);
                if limit > 0 {
                    if *rest <= state {
                        *rest = 0;
                        self.state.set(0);
                        return Scan::Done(i);
                    }
                    *rest -= state;
                }
                state = 0;
                continue;
            }
            // A shorter candidate goes on with `c`: release what dropped off
            // its front.
            let released = state + 1 - next;
            out.extend_from_slice(&pat[..released]);
            i += 1;
            state = next;
            if limit > 0 {
                if *rest <= released {
                    *rest = 0;
                    self.state.set(state as isize);
                    return Scan::Done(i);
                }
                *rest -= released;
            }
        }
        self.state.set(state as isize);
        Scan::Again
    }
}
