//! A compact backtracking regex engine for the Perl patterns that appear in
//! Test::Nginx `.t` files (`qr/.../` values and the plain-text patterns of
//! `*_like` sections).  The runner may only use std, hence this file.
//!
//! Matching works on bytes, like Perl on strings that were never decoded:
//! test files and nginx responses are byte strings, so `.` is one byte and
//! `\w` is ASCII only.
//!
//! Supported: literals and escapes, `.`, classes (ranges, negation, POSIX
//! names, `\d`-style escapes inside), groups (capturing, `(?:)`, named),
//! alternation, greedy/lazy quantifiers, anchors `^ $ \A \z \Z \b \B`,
//! look-ahead/behind, back-references, inline flags `(?i)`/`(?i:...)`, and
//! the flags `i s m x`.  Possessive quantifiers and atomic groups are
//! accepted but behave like their ordinary counterparts.

use std::fmt;

#[derive(Clone, Copy, Default, Debug)]
struct Flags {
    i: bool,
    s: bool,
    m: bool,
    x: bool,
}

#[derive(Clone, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn new() -> Self {
        ByteSet([0; 4])
    }
    fn add(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1u64 << (b & 63);
    }
    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.add(b);
        }
    }
    fn has(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
    }
    fn negate(&mut self) {
        for w in self.0.iter_mut() {
            *w = !*w;
        }
    }
    fn union(&mut self, o: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a |= *b;
        }
    }
    fn fold_case(&mut self) {
        for b in b'a'..=b'z' {
            let u = b.to_ascii_uppercase();
            if self.has(b) || self.has(u) {
                self.add(b);
                self.add(u);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Assert {
    StartText,
    StartLine,
    EndText,
    EndTextNl,
    EndLine,
    WordB,
    NotWordB,
}

enum Node {
    Empty,
    Byte(u8),
    Set(ByteSet),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    Group(Box<Node>, Option<usize>),
    Assert(Assert),
    Look {
        node: Box<Node>,
        ahead: bool,
        negate: bool,
    },
    Backref(usize, bool),
}

impl Node {
    fn nullable(&self) -> bool {
        match self {
            Node::Empty | Node::Assert(_) | Node::Look { .. } | Node::Backref(..) => true,
            Node::Byte(_) | Node::Set(_) => false,
            Node::Concat(v) => v.iter().all(Node::nullable),
            Node::Alt(v) => v.iter().any(Node::nullable),
            Node::Repeat { node, min, .. } => *min == 0 || node.nullable(),
            Node::Group(n, _) => n.nullable(),
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn class_set(kind: u8) -> Option<ByteSet> {
    let mut s = ByteSet::new();
    match kind.to_ascii_lowercase() {
        b'd' => s.add_range(b'0', b'9'),
        b'w' => {
            s.add_range(b'a', b'z');
            s.add_range(b'A', b'Z');
            s.add_range(b'0', b'9');
            s.add(b'_');
        }
        b's' => {
            for &b in b" \t\n\r\x0b\x0c" {
                s.add(b);
            }
        }
        b'h' => {
            s.add(b' ');
            s.add(b'\t');
        }
        b'v' => {
            for &b in b"\n\x0b\x0c\r" {
                s.add(b);
            }
        }
        _ => return None,
    }
    if kind.is_ascii_uppercase() {
        s.negate();
    }
    Some(s)
}

fn posix_set(name: &[u8]) -> Option<ByteSet> {
    let mut s = ByteSet::new();
    let (neg, name) = match name.strip_prefix(b"^") {
        Some(n) => (true, n),
        None => (false, name),
    };
    for b in 0u8..=127 {
        let c = b as char;
        let ok = match name {
            b"alpha" => c.is_ascii_alphabetic(),
            b"digit" => c.is_ascii_digit(),
            b"alnum" => c.is_ascii_alphanumeric(),
            b"upper" => c.is_ascii_uppercase(),
            b"lower" => c.is_ascii_lowercase(),
            b"space" => c.is_ascii_whitespace() || b == 0x0b,
            b"blank" => b == b' ' || b == b'\t',
            b"punct" => c.is_ascii_punctuation(),
            b"xdigit" => c.is_ascii_hexdigit(),
            b"word" => is_word(b),
            b"cntrl" => c.is_ascii_control(),
            b"print" => (0x20..0x7f).contains(&b),
            b"graph" => (0x21..0x7f).contains(&b),
            b"ascii" => true,
            _ => return None,
        };
        if ok {
            s.add(b);
        }
    }
    if neg {
        s.negate();
    }
    Some(s)
}

struct Parser<'a> {
    p: &'a [u8],
    pos: usize,
    ncaps: usize,
    has_backref: bool,
}

type PResult<T> = Result<T, String>;

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.p.get(self.pos).copied()
    }

    fn err<T>(&self, msg: &str) -> PResult<T> {
        Err(format!("{} at offset {}", msg, self.pos))
    }

    fn skip_x(&mut self, f: Flags) {
        if !f.x {
            return;
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'#' {
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == b'\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn parse_alt(&mut self, f: &mut Flags) -> PResult<Node> {
        let mut alts = vec![self.parse_concat(f)?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            alts.push(self.parse_concat(f)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap()
        } else {
            Node::Alt(alts)
        })
    }

    fn parse_concat(&mut self, f: &mut Flags) -> PResult<Node> {
        let mut items = Vec::new();
        loop {
            self.skip_x(*f);
            match self.peek() {
                None | Some(b'|') | Some(b')') => break,
                _ => {}
            }
            let atom = match self.parse_atom(f)? {
                Some(a) => a,
                None => continue,
            };
            let atom = self.parse_quant(atom, *f)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap(),
            _ => Node::Concat(items),
        })
    }

    fn parse_number(&mut self) -> Option<u32> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        std::str::from_utf8(&self.p[start..self.pos]).ok()?.parse().ok()
    }

    /// `{` starts a quantifier only in the forms Perl accepts; anything
    /// else is a literal brace.
    fn try_braces(&mut self) -> Option<(u32, Option<u32>)> {
        let save = self.pos;
        self.pos += 1;
        let min = self.parse_number();
        let res = if self.peek() == Some(b'}') {
            min.map(|m| (m, Some(m)))
        } else if self.peek() == Some(b',') {
            self.pos += 1;
            let max = self.parse_number();
            if self.peek() == Some(b'}') && (min.is_some() || max.is_some()) {
                Some((min.unwrap_or(0), max))
            } else {
                None
            }
        } else {
            None
        };
        match res {
            Some(r) => {
                self.pos += 1;
                Some(r)
            }
            None => {
                self.pos = save;
                None
            }
        }
    }

    fn parse_quant(&mut self, mut atom: Node, f: Flags) -> PResult<Node> {
        loop {
            self.skip_x(f);
            let (min, max) = match self.peek() {
                Some(b'*') => {
                    self.pos += 1;
                    (0, None)
                }
                Some(b'+') => {
                    self.pos += 1;
                    (1, None)
                }
                Some(b'?') => {
                    self.pos += 1;
                    (0, Some(1))
                }
                Some(b'{') => match self.try_braces() {
                    Some(q) => q,
                    None => return Ok(atom),
                },
                _ => return Ok(atom),
            };
            if let Some(mx) = max {
                if mx < min {
                    return self.err("bad quantifier range");
                }
            }
            let mut greedy = true;
            match self.peek() {
                Some(b'?') => {
                    self.pos += 1;
                    greedy = false;
                }
                Some(b'+') => self.pos += 1,
                _ => {}
            }
            if matches!(atom, Node::Assert(_) | Node::Empty) {
                return self.err("quantifier follows nothing");
            }
            atom = Node::Repeat {
                node: Box::new(atom),
                min,
                max,
                greedy,
            };
        }
    }

    fn lit(&self, b: u8, f: Flags) -> Node {
        if f.i && b.is_ascii_alphabetic() {
            let mut s = ByteSet::new();
            s.add(b.to_ascii_lowercase());
            s.add(b.to_ascii_uppercase());
            Node::Set(s)
        } else {
            Node::Byte(b)
        }
    }

    fn parse_hex(&mut self) -> PResult<u32> {
        if self.peek() == Some(b'{') {
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|c| c != b'}') {
                self.pos += 1;
            }
            let s = std::str::from_utf8(&self.p[start..self.pos]).unwrap_or("");
            self.pos += 1;
            u32::from_str_radix(s.trim(), 16).or_else(|_| self.err("bad \\x{...}"))
        } else {
            let start = self.pos;
            while self.pos < start + 2 && self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            let s = std::str::from_utf8(&self.p[start..self.pos]).unwrap_or("");
            Ok(if s.is_empty() {
                0
            } else {
                u32::from_str_radix(s, 16).unwrap_or(0)
            })
        }
    }

    /// Escape value shared by classes and atoms: either one byte or a set.
    fn parse_escape_common(&mut self, c: u8) -> PResult<Result<u8, ByteSet>> {
        Ok(Ok(match c {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'f' => 0x0c,
            b'e' => 0x1b,
            b'a' => 0x07,
            b'0' => {
                let start = self.pos;
                let mut v = 0u32;
                while self.pos < start + 2 && matches!(self.peek(), Some(b'0'..=b'7')) {
                    v = v * 8 + (self.peek().unwrap() - b'0') as u32;
                    self.pos += 1;
                }
                v as u8
            }
            b'x' => {
                let v = self.parse_hex()?;
                if v > 255 {
                    return self.err("code points above \\xff are not supported");
                }
                v as u8
            }
            b'c' => match self.peek() {
                Some(x) => {
                    self.pos += 1;
                    x.to_ascii_uppercase() ^ 0x40
                }
                None => return self.err("bad \\c"),
            },
            b'd' | b'D' | b'w' | b'W' | b's' | b'S' | b'h' | b'H' | b'v' | b'V' => {
                return Ok(Err(class_set(c).unwrap()));
            }
            b'N' => {
                let mut s = ByteSet::new();
                s.add(b'\n');
                s.negate();
                return Ok(Err(s));
            }
            b'p' | b'P' | b'X' | b'R' => return self.err("unicode escapes are not supported"),
            c if c.is_ascii_alphanumeric() => {
                return self.err(&format!("unsupported escape \\{}", c as char))
            }
            c => c,
        }))
    }

    fn parse_class(&mut self, f: Flags) -> PResult<Node> {
        // the '[' was consumed
        let mut set = ByteSet::new();
        let mut neg = false;
        if self.peek() == Some(b'^') {
            neg = true;
            self.pos += 1;
        }
        let mut first = true;
        loop {
            let c = match self.peek() {
                None => return self.err("unterminated character class"),
                Some(c) => c,
            };
            if c == b']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            if c == b'[' && self.p.get(self.pos + 1) == Some(&b':') {
                if let Some(end) = self.p[self.pos + 2..].windows(2).position(|w| w == b":]") {
                    let name = &self.p[self.pos + 2..self.pos + 2 + end];
                    if let Some(s) = posix_set(name) {
                        set.union(&s);
                        self.pos += end + 4;
                        continue;
                    }
                }
            }
            self.pos += 1;
            let lo = if c == b'\\' {
                let e = match self.peek() {
                    Some(e) => e,
                    None => return self.err("trailing backslash"),
                };
                self.pos += 1;
                let e = if e == b'b' {
                    Ok(0x08)
                } else {
                    self.parse_escape_common(e)?
                };
                match e {
                    Ok(b) => b,
                    Err(s) => {
                        set.union(&s);
                        continue;
                    }
                }
            } else {
                c
            };
            if self.peek() == Some(b'-') && self.p.get(self.pos + 1).is_some_and(|&n| n != b']') {
                let save = self.pos;
                self.pos += 1;
                let hc = self.peek().unwrap();
                self.pos += 1;
                let hi = if hc == b'\\' {
                    let e = self.peek().unwrap_or(b'\\');
                    self.pos += 1;
                    self.parse_escape_common(e)?.ok()
                } else {
                    Some(hc)
                };
                match hi {
                    Some(hi) if hi >= lo => {
                        set.add_range(lo, hi);
                        continue;
                    }
                    Some(_) => return self.err("invalid range in character class"),
                    None => {
                        // "a-\d": the dash is literal
                        self.pos = save;
                        set.add(lo);
                        continue;
                    }
                }
            }
            set.add(lo);
        }
        if f.i {
            set.fold_case();
        }
        if neg {
            set.negate();
        }
        Ok(Node::Set(set))
    }

    fn parse_flag_letters(&mut self, f: &mut Flags) -> PResult<()> {
        let mut on = true;
        while let Some(c) = self.peek() {
            match c {
                b'^' => *f = Flags::default(),
                b'-' => on = false,
                b'i' => f.i = on,
                b's' => f.s = on,
                b'm' => f.m = on,
                b'x' => f.x = on,
                b'a' | b'u' | b'l' | b'd' | b'n' | b'p' | b'o' => {}
                b')' | b':' => return Ok(()),
                _ => return self.err("unknown inline flag"),
            }
            self.pos += 1;
        }
        self.err("unterminated group")
    }

    fn expect_close(&mut self) -> PResult<()> {
        if self.peek() != Some(b')') {
            return self.err("missing )");
        }
        self.pos += 1;
        Ok(())
    }

    fn parse_group(&mut self, f: &mut Flags) -> PResult<Option<Node>> {
        // the '(' was consumed
        if self.peek() != Some(b'?') {
            self.ncaps += 1;
            let idx = self.ncaps;
            let mut inner = *f;
            let n = self.parse_alt(&mut inner)?;
            self.expect_close()?;
            return Ok(Some(Node::Group(Box::new(n), Some(idx))));
        }
        self.pos += 1;
        let c = self.peek();
        let look = |p: &mut Self, f: &Flags, ahead: bool, negate: bool| -> PResult<Option<Node>> {
            let mut inner = *f;
            let n = p.parse_alt(&mut inner)?;
            p.expect_close()?;
            Ok(Some(Node::Look {
                node: Box::new(n),
                ahead,
                negate,
            }))
        };
        match c {
            Some(b':') | Some(b'>') => {
                self.pos += 1;
                let mut inner = *f;
                let n = self.parse_alt(&mut inner)?;
                self.expect_close()?;
                Ok(Some(Node::Group(Box::new(n), None)))
            }
            Some(b'=') => {
                self.pos += 1;
                look(self, f, true, false)
            }
            Some(b'!') => {
                self.pos += 1;
                look(self, f, true, true)
            }
            Some(b'#') => {
                while self.peek().is_some_and(|c| c != b')') {
                    self.pos += 1;
                }
                self.expect_close()?;
                Ok(None)
            }
            Some(b'<') if matches!(self.p.get(self.pos + 1), Some(b'=') | Some(b'!')) => {
                let negate = self.p[self.pos + 1] == b'!';
                self.pos += 2;
                look(self, f, false, negate)
            }
            Some(b'<') | Some(b'P') | Some(b'\'') => {
                if c == Some(b'P') {
                    self.pos += 1;
                    if self.peek() != Some(b'<') {
                        return self.err("unsupported (?P construct");
                    }
                }
                let close = if self.peek() == Some(b'\'') { b'\'' } else { b'>' };
                self.pos += 1;
                while self.peek().is_some_and(|c| c != close) {
                    self.pos += 1;
                }
                self.pos += 1;
                self.ncaps += 1;
                let idx = self.ncaps;
                let mut inner = *f;
                let n = self.parse_alt(&mut inner)?;
                self.expect_close()?;
                Ok(Some(Node::Group(Box::new(n), Some(idx))))
            }
            _ => {
                let mut nf = *f;
                self.parse_flag_letters(&mut nf)?;
                if self.peek() == Some(b')') {
                    // (?i) changes the flags for the rest of the enclosing group
                    self.pos += 1;
                    *f = nf;
                    Ok(None)
                } else {
                    self.pos += 1;
                    let n = self.parse_alt(&mut nf)?;
                    self.expect_close()?;
                    Ok(Some(Node::Group(Box::new(n), None)))
                }
            }
        }
    }

    fn parse_atom(&mut self, f: &mut Flags) -> PResult<Option<Node>> {
        let c = self.peek().unwrap();
        self.pos += 1;
        let node = match c {
            b'(' => return self.parse_group(f),
            b'[' => self.parse_class(*f)?,
            b'.' => {
                let mut s = ByteSet::new();
                s.negate();
                if !f.s {
                    s = ByteSet::new();
                    s.add(b'\n');
                    s.negate();
                }
                Node::Set(s)
            }
            b'^' => Node::Assert(if f.m { Assert::StartLine } else { Assert::StartText }),
            b'$' => Node::Assert(if f.m { Assert::EndLine } else { Assert::EndTextNl }),
            b'*' | b'+' | b'?' => return self.err("quantifier follows nothing"),
            b'\\' => {
                let e = match self.peek() {
                    Some(e) => e,
                    None => return self.err("trailing backslash"),
                };
                self.pos += 1;
                match e {
                    b'A' => Node::Assert(Assert::StartText),
                    b'z' => Node::Assert(Assert::EndText),
                    b'Z' => Node::Assert(Assert::EndTextNl),
                    b'b' => Node::Assert(Assert::WordB),
                    b'B' => Node::Assert(Assert::NotWordB),
                    b'G' | b'E' => return Ok(None),
                    b'Q' => {
                        let start = self.pos;
                        let end = self.p[start..]
                            .windows(2)
                            .position(|w| w == b"\\E")
                            .map(|p| start + p)
                            .unwrap_or(self.p.len());
                        self.pos = (end + 2).min(self.p.len());
                        let items: Vec<Node> = self.p[start..end].iter().map(|&b| self.lit(b, *f)).collect();
                        Node::Group(Box::new(Node::Concat(items)), None)
                    }
                    b'1'..=b'9' => {
                        let mut n = (e - b'0') as usize;
                        while let Some(d @ b'0'..=b'9') = self.peek() {
                            let m = n * 10 + (d - b'0') as usize;
                            if m > self.ncaps {
                                break;
                            }
                            n = m;
                            self.pos += 1;
                        }
                        self.has_backref = true;
                        Node::Backref(n, f.i)
                    }
                    b'k' | b'g' => return self.err("named/relative back-references are not supported"),
                    b'K' => return self.err("\\K is not supported"),
                    _ => match self.parse_escape_common(e)? {
                        Ok(b) => self.lit(b, *f),
                        Err(mut s) => {
                            if f.i {
                                s.fold_case();
                            }
                            Node::Set(s)
                        }
                    },
                }
            }
            c => self.lit(c, *f),
        };
        Ok(Some(node))
    }
}

#[derive(Clone, Copy, Debug)]
enum Inst {
    Byte(u8),
    Set(usize),
    Split(usize, usize),
    Jmp(usize),
    Save(usize),
    Assert(Assert),
    Look {
        prog: usize,
        ahead: bool,
        negate: bool,
    },
    Backref(usize, bool),
    /// Remembers where an iteration of a loop that may match empty began.
    Mark(usize),
    /// Fails unless the loop body consumed input since the matching Mark,
    /// which keeps `(a*)*` from looping forever.
    Progress(usize),
    Match,
}

const MAX_INSTS: usize = 200_000;
const STEP_LIMIT: u64 = 200_000_000;

struct Compiler {
    progs: Vec<Vec<Inst>>,
    sets: Vec<ByteSet>,
    nslots: usize,
}

impl Compiler {
    fn emit(&mut self, prog: usize, node: &Node) -> PResult<()> {
        if self.progs[prog].len() > MAX_INSTS {
            return Err("pattern too large".into());
        }
        match node {
            Node::Empty => {}
            Node::Byte(b) => self.progs[prog].push(Inst::Byte(*b)),
            Node::Set(s) => {
                let idx = match self.sets.iter().position(|x| x == s) {
                    Some(i) => i,
                    None => {
                        self.sets.push(s.clone());
                        self.sets.len() - 1
                    }
                };
                self.progs[prog].push(Inst::Set(idx));
            }
            Node::Concat(v) => {
                for n in v {
                    self.emit(prog, n)?;
                }
            }
            Node::Alt(v) => {
                let mut jmps = Vec::new();
                for (i, n) in v.iter().enumerate() {
                    if i + 1 < v.len() {
                        let split = self.progs[prog].len();
                        self.progs[prog].push(Inst::Split(0, 0));
                        self.emit(prog, n)?;
                        jmps.push(self.progs[prog].len());
                        self.progs[prog].push(Inst::Jmp(0));
                        let next = self.progs[prog].len();
                        self.progs[prog][split] = Inst::Split(split + 1, next);
                    } else {
                        self.emit(prog, n)?;
                    }
                }
                let end = self.progs[prog].len();
                for j in jmps {
                    self.progs[prog][j] = Inst::Jmp(end);
                }
            }
            Node::Group(n, cap) => {
                if let Some(c) = cap {
                    self.progs[prog].push(Inst::Save(2 * c));
                    self.emit(prog, n)?;
                    self.progs[prog].push(Inst::Save(2 * c + 1));
                } else {
                    self.emit(prog, n)?;
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => {
                for _ in 0..*min {
                    self.emit(prog, node)?;
                }
                match max {
                    None => {
                        let l0 = self.progs[prog].len();
                        self.progs[prog].push(Inst::Split(0, 0));
                        let mark = if node.nullable() {
                            let m = self.nslots;
                            self.nslots += 1;
                            self.progs[prog].push(Inst::Mark(m));
                            Some(m)
                        } else {
                            None
                        };
                        self.emit(prog, node)?;
                        if let Some(m) = mark {
                            self.progs[prog].push(Inst::Progress(m));
                        }
                        self.progs[prog].push(Inst::Jmp(l0));
                        let end = self.progs[prog].len();
                        self.progs[prog][l0] = if *greedy {
                            Inst::Split(l0 + 1, end)
                        } else {
                            Inst::Split(end, l0 + 1)
                        };
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.progs[prog].len());
                            self.progs[prog].push(Inst::Split(0, 0));
                            self.emit(prog, node)?;
                        }
                        let end = self.progs[prog].len();
                        for s in splits {
                            self.progs[prog][s] = if *greedy {
                                Inst::Split(s + 1, end)
                            } else {
                                Inst::Split(end, s + 1)
                            };
                        }
                    }
                }
            }
            Node::Assert(a) => self.progs[prog].push(Inst::Assert(*a)),
            Node::Look { node, ahead, negate } => {
                self.progs.push(Vec::new());
                let sub = self.progs.len() - 1;
                self.emit(sub, node)?;
                self.progs[sub].push(Inst::Match);
                self.progs[prog].push(Inst::Look {
                    prog: sub,
                    ahead: *ahead,
                    negate: *negate,
                });
            }
            Node::Backref(n, ci) => self.progs[prog].push(Inst::Backref(*n, *ci)),
        }
        Ok(())
    }
}

/// A compiled pattern.
pub struct Regex {
    src: String,
    progs: Vec<Vec<Inst>>,
    sets: Vec<ByteSet>,
    nslots: usize,
    /// Memoising (pc, pos) pairs is only sound when the outcome of a state
    /// depends on nothing else (no back-references or progress marks).
    memo_ok: bool,
    anchored: bool,
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "qr/{}/", self.src)
    }
}

enum Job {
    Try(usize, usize),
    Restore(usize, usize),
}

struct Visited {
    bits: Vec<u64>,
    width: usize,
}

impl Visited {
    fn test_and_set(&mut self, pc: usize, pos: usize) -> bool {
        let i = pc * self.width + pos;
        let (w, b) = (i / 64, i % 64);
        let seen = self.bits[w] & (1 << b) != 0;
        self.bits[w] |= 1 << b;
        seen
    }
}

const UNSET: usize = usize::MAX;

impl Regex {
    /// Compiles `pattern` with Perl modifier letters in `flags` (`i s m x`;
    /// other Perl modifiers such as `g` or `o` are accepted and ignored).
    pub fn new(pattern: &[u8], flags: &str) -> Result<Regex, String> {
        let mut f = Flags::default();
        for c in flags.chars() {
            match c {
                'i' => f.i = true,
                's' => f.s = true,
                'm' => f.m = true,
                'x' => f.x = true,
                _ => {}
            }
        }
        let src = String::from_utf8_lossy(pattern).into_owned();
        let mut p = Parser {
            p: pattern,
            pos: 0,
            ncaps: 0,
            has_backref: false,
        };
        let node = p
            .parse_alt(&mut f)
            .map_err(|e| format!("bad regex /{}/: {}", src, e))?;
        if p.pos < pattern.len() {
            return Err(format!("bad regex /{}/: unmatched ) at offset {}", src, p.pos));
        }
        let anchored = match &node {
            Node::Assert(Assert::StartText) => true,
            Node::Concat(v) => matches!(v.first(), Some(Node::Assert(Assert::StartText))),
            _ => false,
        };
        let mut c = Compiler {
            progs: vec![Vec::new()],
            sets: Vec::new(),
            nslots: 2 * (p.ncaps + 1),
        };
        c.progs[0].push(Inst::Save(0));
        c.emit(0, &node)
            .map_err(|e| format!("bad regex /{}/: {}", src, e))?;
        c.progs[0].push(Inst::Save(1));
        c.progs[0].push(Inst::Match);
        let memo_ok = !p.has_backref
            && !c.progs[0]
                .iter()
                .any(|i| matches!(i, Inst::Progress(_) | Inst::Look { .. }));
        Ok(Regex {
            src,
            progs: c.progs,
            sets: c.sets,
            nslots: c.nslots,
            memo_ok,
            anchored,
        })
    }

    /// The pattern text as written.
    pub fn as_str(&self) -> &str {
        &self.src
    }

    pub fn is_match(&self, hay: &[u8]) -> bool {
        self.find(hay).is_some()
    }

    /// The leftmost match as a (start, end) byte range, with Perl's
    /// preference order among alternatives.
    pub fn find(&self, hay: &[u8]) -> Option<(usize, usize)> {
        let mut slots = vec![UNSET; self.nslots];
        let cells = self.progs[0].len().saturating_mul(hay.len() + 1);
        let mut visited = if self.memo_ok && cells <= 256 * 1024 * 1024 {
            Some(Visited {
                bits: vec![0; cells / 64 + 1],
                width: hay.len() + 1,
            })
        } else {
            None
        };
        let mut steps = 0u64;
        let last = if self.anchored { 0 } else { hay.len() };
        for start in 0..=last {
            for s in slots.iter_mut() {
                *s = UNSET;
            }
            if self
                .exec(0, hay, start, &mut slots, None, visited.as_mut(), &mut steps)
                .is_some()
            {
                return Some((slots[0], slots[1]));
            }
            if steps > STEP_LIMIT {
                eprintln!("WARNING: regex /{}/ gave up (too much backtracking)", self.src);
                return None;
            }
        }
        None
    }

    fn assert_at(a: Assert, hay: &[u8], pos: usize) -> bool {
        let n = hay.len();
        match a {
            Assert::StartText => pos == 0,
            Assert::StartLine => pos == 0 || (hay[pos - 1] == b'\n' && pos < n),
            Assert::EndText => pos == n,
            Assert::EndTextNl => pos == n || (pos + 1 == n && hay[pos] == b'\n'),
            Assert::EndLine => pos == n || hay[pos] == b'\n',
            Assert::WordB | Assert::NotWordB => {
                let before = pos > 0 && is_word(hay[pos - 1]);
                let after = pos < n && is_word(hay[pos]);
                (before != after) == (a == Assert::WordB)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        prog: usize,
        hay: &[u8],
        start: usize,
        slots: &mut [usize],
        required_end: Option<usize>,
        mut visited: Option<&mut Visited>,
        steps: &mut u64,
    ) -> Option<usize> {
        let insts = &self.progs[prog];
        let mut stack = vec![Job::Try(0, start)];
        while let Some(job) = stack.pop() {
            let (mut pc, mut pos) = match job {
                Job::Restore(slot, v) => {
                    slots[slot] = v;
                    continue;
                }
                Job::Try(pc, pos) => (pc, pos),
            };
            loop {
                if let Some(v) = visited.as_deref_mut() {
                    if v.test_and_set(pc, pos) {
                        break;
                    }
                }
                *steps += 1;
                if *steps > STEP_LIMIT {
                    return None;
                }
                match insts[pc] {
                    Inst::Byte(b) => {
                        if pos < hay.len() && hay[pos] == b {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Set(i) => {
                        if pos < hay.len() && self.sets[i].has(hay[pos]) {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Split(a, b) => {
                        stack.push(Job::Try(b, pos));
                        pc = a;
                    }
                    Inst::Jmp(a) => pc = a,
                    Inst::Save(s) | Inst::Mark(s) => {
                        stack.push(Job::Restore(s, slots[s]));
                        slots[s] = pos;
                        pc += 1;
                    }
                    Inst::Progress(s) => {
                        if slots[s] == pos {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Assert(a) => {
                        if Self::assert_at(a, hay, pos) {
                            pc += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Look {
                        prog: sub,
                        ahead,
                        negate,
                    } => {
                        let mut sub_slots = slots.to_vec();
                        let found = if ahead {
                            self.exec(sub, hay, pos, &mut sub_slots, None, None, steps)
                                .is_some()
                        } else {
                            (0..=pos).rev().any(|k| {
                                self.exec(sub, hay, k, &mut sub_slots, Some(pos), None, steps)
                                    .is_some()
                            })
                        };
                        if found != negate {
                            pc += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Backref(n, ci) => {
                        let (s, e) = (
                            slots.get(2 * n).copied().unwrap_or(UNSET),
                            slots.get(2 * n + 1).copied().unwrap_or(UNSET),
                        );
                        if s == UNSET || e == UNSET || e < s {
                            break;
                        }
                        let len = e - s;
                        if pos + len > hay.len() {
                            break;
                        }
                        let (a, b) = (&hay[s..e], &hay[pos..pos + len]);
                        let same = if ci { a.eq_ignore_ascii_case(b) } else { a == b };
                        if !same {
                            break;
                        }
                        pos += len;
                        pc += 1;
                    }
                    Inst::Match => {
                        if required_end.is_some_and(|e| e != pos) {
                            break;
                        }
                        return Some(pos);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    // only #[test] fns use this, and non-harness builds drop those
    #[allow(dead_code)]
    fn m(p: &str, f: &str, s: &str) -> Option<String> {
        let re = Regex::new(p.as_bytes(), f).unwrap();
        re.find(s.as_bytes()).map(|(a, b)| s[a..b].to_string())
    }

    #[test]
    fn literals_and_classes() {
        assert_eq!(m("abc", "", "xxabcxx").as_deref(), Some("abc"));
        assert_eq!(m(r"\d+", "", "ab 1234 c").as_deref(), Some("1234"));
        assert_eq!(m(r"[a-c]+", "", "xxbcaz").as_deref(), Some("bca"));
        assert_eq!(m(r"[^a-c ]+", "", "abc xyz").as_deref(), Some("xyz"));
        assert_eq!(m(r"[\d.]+", "", "v1.22.1;").as_deref(), Some("1.22.1"));
        assert_eq!(m(r"[]x]+", "", "a]x]b").as_deref(), Some("]x]"));
        assert_eq!(m(r"[a\-z]+", "", "b-az").as_deref(), Some("-az"));
        assert_eq!(m(r"[[:digit:]]+", "", "ab42").as_deref(), Some("42"));
        assert_eq!(m(r"\w+\s\S+", "", "!! foo bar").as_deref(), Some("foo bar"));
        assert_eq!(m(r"\x41\x{42}", "", "zAB").as_deref(), Some("AB"));
        assert_eq!(m(r"a\/b\.c", "", "a/b.c").as_deref(), Some("a/b.c"));
        assert_eq!(m(r"\[error\]", "", "x [error] y").as_deref(), Some("[error]"));
        assert!(Regex::new(b"a{", "").unwrap().is_match(b"a{"));
        assert_eq!(m(r"a{2,3}", "", "aaaa").as_deref(), Some("aaa"));
        assert_eq!(m(r"a{2}", "", "aaaa").as_deref(), Some("aa"));
        assert_eq!(m(r"a{2,}", "", "aaaa").as_deref(), Some("aaaa"));
    }

    #[test]
    fn dot_and_flags() {
        assert_eq!(m("a.c", "", "a\nc abc").as_deref(), Some("abc"));
        assert_eq!(m("a.c", "s", "a\nc").as_deref(), Some("a\nc"));
        assert_eq!(m("HELLO", "i", "say hello").as_deref(), Some("hello"));
        assert_eq!(m("[A-C]+", "i", "xabcx").as_deref(), Some("abc"));
        assert_eq!(m("a b # comment\n c", "x", "abc").as_deref(), Some("abc"));
        assert_eq!(m(r"a\ b", "x", "a b").as_deref(), Some("a b"));
        assert_eq!(m("(?i)abc", "", "ABC").as_deref(), Some("ABC"));
        assert_eq!(m("a(?i:b)c", "", "aBc aBC").as_deref(), Some("aBc"));
    }

    #[test]
    fn anchors() {
        assert!(m("^b", "", "a\nb").is_none());
        assert_eq!(m("^b", "m", "a\nb").as_deref(), Some("b"));
        assert_eq!(m("a$", "", "a\n").as_deref(), Some("a"));
        assert!(m("a$", "", "a\nb").is_none());
        assert_eq!(m("a$", "m", "a\nb").as_deref(), Some("a"));
        assert!(m(r"a\z", "", "a\n").is_none());
        assert_eq!(m(r"\Aab", "", "ab").as_deref(), Some("ab"));
        assert_eq!(m(r"\bfoo\b", "", "a foo b").as_deref(), Some("foo"));
        assert!(m(r"\bfoo\b", "", "afoob").is_none());
        assert_eq!(m(r"\Bo\B", "", "foo ").as_deref(), Some("o"));
    }

    #[test]
    fn groups_alternation_quantifiers() {
        assert_eq!(m("(ab)+", "", "xababx").as_deref(), Some("abab"));
        assert_eq!(m("(?:a|bc)+d", "", "xabcad").as_deref(), Some("abcad"));
        assert_eq!(m("cat|dog", "", "hotdog").as_deref(), Some("dog"));
        assert_eq!(m("a.*b", "", "aXbYb").as_deref(), Some("aXbYb"));
        assert_eq!(m("a.*?b", "", "aXbYb").as_deref(), Some("aXb"));
        assert_eq!(m("a??b", "", "ab").as_deref(), Some("ab"));
        assert_eq!(m("a+?", "", "aaa").as_deref(), Some("a"));
        assert_eq!(m("(a*)*b", "", "aaab").as_deref(), Some("aaab"));
        assert_eq!(m("(a|)*c", "", "aac").as_deref(), Some("aac"));
        assert_eq!(m(r"(\w)\1", "", "abccd").as_deref(), Some("cc"));
        assert_eq!(m(r"(?<n>x)y", "", "xy").as_deref(), Some("xy"));
    }

    #[test]
    fn lookaround() {
        assert_eq!(m("foo(?=bar)", "", "foobaz foobar").as_deref(), Some("foo"));
        assert_eq!(m("foo(?!bar)", "", "foobar foobaz").as_deref(), Some("foo"));
        assert_eq!(m("(?<=x)y", "", "ay xy").as_deref(), Some("y"));
        assert_eq!(m("(?<!x)y", "", "xy ay").as_deref(), Some("y"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let hay = "a".repeat(5000);
        let re = Regex::new(b"(a+)+b", "").unwrap();
        assert!(!re.is_match(hay.as_bytes()));
        let re = Regex::new(b"^(\\w+\\s?)*$", "").unwrap();
        assert!(!re.is_match(format!("{}!", hay).as_bytes()));
    }

    #[test]
    fn errors() {
        assert!(Regex::new(b"(ab", "").is_err());
        assert!(Regex::new(b"ab)", "").is_err());
        assert!(Regex::new(b"*a", "").is_err());
        assert!(Regex::new(b"[ab", "").is_err());
        assert!(Regex::new(br"\p{L}", "").is_err());
    }
}
