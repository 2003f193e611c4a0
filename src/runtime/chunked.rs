//! A decoder for chunked transfer encoding, fed as bytes arrive (the
//! request body of `ngx.req.socket()` for chunked requests).

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Size,
    Ext,
    SizeLf,
    Data,
    DataEnd,
    Trailer,
    Done,
}

#[derive(Debug)]
pub struct Chunked {
    st: St,
    size: u64,
    digits: usize,
    line_empty: bool,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            st: St::Size,
            size: 0,
            digits: 0,
            line_empty: true,
        }
    }
}

impl Chunked {
    pub fn done(&self) -> bool {
        self.st == St::Done
    }

    /// Decodes `input`, appending the body bytes to `out`. Bytes after the
    /// end of the body are ignored. Err on malformed input.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        let mut i = 0;
        while i < input.len() && self.st != St::Done {
            let b = input[i];
            match self.st {
                St::Data => {
                    let n = (self.size as usize).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + n]);
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.st = St::DataEnd;
                    }
                    continue;
                }
                St::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).ok_or(())? as u64;
                        self.size = self.size.checked_mul(16).ok_or(())? + d;
                        self.digits += 1;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.st = St::Ext,
                    b'\r' if self.digits > 0 => self.st = St::SizeLf,
                    b'\n' if self.digits > 0 => self.end_size_line(),
                    _ => return Err(()),
                },
                St::Ext => {
                    if b == b'\n' {
                        self.end_size_line();
                    }
                }
                St::SizeLf => {
                    if b != b'\n' {
                        return Err(());
                    }
                    self.end_size_line();
                }
                St::DataEnd => match b {
                    b'\r' => {}
                    b'\n' => {
                        self.st = St::Size;
                        self.size = 0;
                        self.digits = 0;
                    }
                    _ => return Err(()),
                },
                St::Trailer => match b {
                    b'\r' => {}
                    b'\n' if self.line_empty => self.st = St::Done,
                    b'\n' => self.line_empty = true,
                    _ => self.line_empty = false,
                },
                St::Done => {}
            }
            i += 1;
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        if self.size == 0 {
            self.st = St::Trailer;
            self.line_empty = true;
        } else {
            self.st = St::Data;
        }
    }
}
