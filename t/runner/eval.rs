//! The subset of Perl that Test::Nginx files use in `--- xxx eval` sections
//! and in the preamble before `__DATA__`.
//!
//! Supported: double-quoted strings (escapes `\n \r \t \f \e \a \0 \\ \" \$
//! \@ \NNN \xNN \x{...} \cX \N{U+...}`, interpolation of `$var`, `${var}`,
//! `$::var`, `$ENV{NAME}`, `@{[ expr ]}`), single-quoted strings, `q{}`,
//! `qq{}`, `qw()`, here-documents, `qr/.../flags` with any delimiter,
//! numbers, `.` and `x`, arithmetic, comparisons, `! && || // ?:`, `[...]`
//! arrays, `{k => v}` hashes, parentheses, `$ENV{X}` (also as an lvalue with
//! `= ||= //= .=`), `my/our/local $x = ...`, `if/elsif/else/unless` blocks,
//! statement modifiers, `use`/`no` (ignored), `sub {...}` (kept as tokens)
//! and the builtins listed in `Interp::call`.  Anything else is reported as
//! an "unsupported eval" error rather than guessed at.

use std::collections::{BTreeMap, HashMap};

/// A Perl pattern object from `qr//`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub src: Vec<u8>,
    pub flags: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Undef,
    Str(Vec<u8>),
    Regex(Pattern),
    Array(Vec<Value>),
    Hash(Vec<(String, Value)>),
    /// An anonymous `sub {...}`: its tokens, for callers that recognise
    /// particular idioms (add_block_preprocessor).
    Code(Vec<Tok>),
    /// A comma list (never stored; flattened into arrays and arguments).
    List(Vec<Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    /// Perl's stringification.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Value::Undef => Vec::new(),
            Value::Str(s) => s.clone(),
            Value::Regex(p) => {
                let mut v = format!("(?^{}:", p.flags).into_bytes();
                v.extend_from_slice(&p.src);
                v.push(b')');
                v
            }
            Value::Array(_) => b"ARRAY(0x1)".to_vec(),
            Value::Hash(_) => b"HASH(0x1)".to_vec(),
            Value::Code(_) => b"CODE(0x1)".to_vec(),
            Value::List(v) => v.last().map(Value::to_bytes).unwrap_or_default(),
        }
    }

    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Undef => false,
            Value::Str(s) => !(s.is_empty() || s == b"0"),
            Value::List(v) => v.last().is_some_and(Value::truthy),
            _ => true,
        }
    }

    pub fn to_num(&self) -> f64 {
        let b = self.to_bytes();
        let s = String::from_utf8_lossy(&b);
        let s = s.trim_start();
        let mut end = 0;
        let bytes = s.as_bytes();
        let mut seen_dot = false;
        let mut seen_e = false;
        while end < bytes.len() {
            let c = bytes[end];
            let ok = c.is_ascii_digit()
                || ((c == b'-' || c == b'+') && (end == 0 || matches!(bytes[end - 1], b'e' | b'E')))
                || (c == b'.' && !seen_dot && !seen_e)
                || ((c == b'e' || c == b'E') && !seen_e && end > 0);
            if !ok {
                break;
            }
            seen_dot |= c == b'.';
            seen_e |= c == b'e' || c == b'E';
            end += 1;
        }
        let mut t = &s[..end];
        while !t.is_empty() && t.parse::<f64>().is_err() {
            t = &t[..t.len() - 1];
        }
        t.parse().unwrap_or(0.0)
    }

    /// A comma list in scalar position yields its first element here, as a
    /// Test::Base `eval` section does when read through its accessor.
    pub fn first(self) -> Value {
        match self {
            Value::List(mut v) => {
                if v.is_empty() {
                    Value::Undef
                } else {
                    v.swap_remove(0)
                }
            }
            v => v,
        }
    }
}

pub fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{}", n)
    }
}

fn flatten_into(out: &mut Vec<Value>, v: Value) {
    match v {
        Value::List(items) => {
            for i in items {
                flatten_into(out, i);
            }
        }
        v => out.push(v),
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// String contents and whether they interpolate (double-quote rules).
    Str(Vec<u8>, bool),
    /// qr pattern, flags, interpolating.
    Regex(Vec<u8>, String, bool),
    Words(Vec<Vec<u8>>),
    Num(String),
    Ident(String),
    /// `$name`; package qualifiers are dropped (`$::X`, `$main::X` -> `X`).
    Var(String),
    ArrVar(String),
    HashVar(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "<=>", "||=", "//=", "&&=", "**", "=>", "==", "!=", "<=", ">=", "=~", "!~", "->", "&&", "||", "//", ".=",
    "+=", "-=", "*=", "..", "<<", ";", ",", "(", ")", "[", "]", "{", "}", "=", "+", "-", "*", "/", "%", ".",
    "!", "<", ">", "?", ":", "\\", "&", "|", "^", "~",
];

struct Lexer {
    s: Vec<u8>,
    pos: usize,
}

fn closing(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'(' => b')',
        b'[' => b']',
        b'<' => b'>',
        c => c,
    }
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn short_name(name: &str) -> String {
    name.rsplit("::").next().unwrap_or(name).to_string()
}

impl Lexer {
    fn peek_at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    /// Reads a delimited body starting at the opening delimiter; returns
    /// the raw contents (backslashes kept) and the delimiter pair.
    fn delimited(&mut self) -> Result<(Vec<u8>, u8, u8), String> {
        let open = self.s[self.pos];
        let close = closing(open);
        self.pos += 1;
        let start = self.pos;
        let mut depth = 0;
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            if c == b'\\' {
                self.pos += 2;
                continue;
            }
            if open != close && c == open {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    let body = self.s[start..self.pos].to_vec();
                    self.pos += 1;
                    return Ok((body, open, close));
                }
                depth -= 1;
            }
            self.pos += 1;
        }
        Err(format!("unterminated string starting with {}", open as char))
    }

    fn flags(&mut self) -> String {
        let mut f = String::new();
        while let Some(c) = self.peek_at(self.pos) {
            if !c.is_ascii_alphabetic() {
                break;
            }
            f.push(c as char);
            self.pos += 1;
        }
        f
    }

    fn heredoc(&mut self) -> Result<Tok, String> {
        // at "<<"
        self.pos += 2;
        let indent = self.peek_at(self.pos) == Some(b'~');
        if indent {
            self.pos += 1;
        }
        let (tag, interp) = match self.peek_at(self.pos) {
            Some(q @ (b'"' | b'\'')) => {
                let (body, _, _) = self.delimited()?;
                (body, q == b'"')
            }
            _ => {
                let start = self.pos;
                while self.peek_at(self.pos).is_some_and(ident_char) {
                    self.pos += 1;
                }
                (self.s[start..self.pos].to_vec(), true)
            }
        };
        let nl = match self.s[self.pos..].iter().position(|&c| c == b'\n') {
            Some(p) => self.pos + p,
            None => return Err("here-document without body".into()),
        };
        let mut body = Vec::new();
        let mut lines = Vec::new();
        let mut at = nl + 1;
        let mut found = None;
        while at <= self.s.len() {
            let end = self.s[at..]
                .iter()
                .position(|&c| c == b'\n')
                .map(|p| at + p)
                .unwrap_or(self.s.len());
            let line = &self.s[at..end];
            let trimmed: &[u8] = if indent {
                let ws = line.iter().take_while(|c| **c == b' ' || **c == b'\t').count();
                &line[ws..]
            } else {
                line
            };
            if trimmed == tag.as_slice() {
                found = Some((end + 1).min(self.s.len()));
                let ws = line.len() - trimmed.len();
                for l in &lines {
                    let l: &Vec<u8> = l;
                    let cut = l
                        .iter()
                        .take(ws)
                        .take_while(|c| **c == b' ' || **c == b'\t')
                        .count();
                    body.extend_from_slice(&l[if indent { cut } else { 0 }..]);
                    body.push(b'\n');
                }
                break;
            }
            lines.push(line.to_vec());
            if end == self.s.len() {
                break;
            }
            at = end + 1;
        }
        let after = match found {
            Some(a) => a,
            None => {
                return Err(format!(
                    "here-document terminator \"{}\" not found",
                    String::from_utf8_lossy(&tag)
                ))
            }
        };
        self.s.drain(nl + 1..after);
        Ok(Tok::Str(body, interp))
    }

    fn var(&mut self, sigil: u8) -> Result<Tok, String> {
        // at sigil
        let start = self.pos;
        self.pos += 1;
        let mk = |name: String| match sigil {
            b'$' => Tok::Var(name),
            b'@' => Tok::ArrVar(name),
            _ => Tok::HashVar(name),
        };
        match self.peek_at(self.pos) {
            Some(b'{') => {
                let save = self.pos;
                let (body, _, _) = self.delimited()?;
                let name = String::from_utf8_lossy(&body).trim().to_string();
                if !name.is_empty() && name.bytes().all(|c| ident_char(c) || c == b':') {
                    return Ok(mk(short_name(&name)));
                }
                self.pos = save;
                Ok(Tok::Op(if sigil == b'@' { "@" } else { "$" }))
            }
            Some(b'^') if sigil == b'$' => {
                self.pos += 1;
                let c = self.peek_at(self.pos).unwrap_or(b'?');
                self.pos += 1;
                Ok(Tok::Var(format!("^{}", c as char)))
            }
            Some(c) if ident_start(c) || c == b':' || (sigil == b'$' && c.is_ascii_digit()) => {
                let s = self.pos;
                loop {
                    match self.peek_at(self.pos) {
                        Some(c) if ident_char(c) => self.pos += 1,
                        Some(b':')
                            if self.peek_at(self.pos + 1) == Some(b':')
                                && self.peek_at(self.pos + 2).is_some_and(ident_char) =>
                        {
                            self.pos += 2
                        }
                        _ => break,
                    }
                }
                let name = String::from_utf8_lossy(&self.s[s..self.pos]).into_owned();
                Ok(mk(short_name(&name)))
            }
            Some(b'$') if sigil == b'$' => {
                self.pos += 1;
                Ok(Tok::Var("$".into()))
            }
            _ => {
                self.pos = start + 1;
                Ok(Tok::Op(if sigil == b'%' { "%" } else { "$" }))
            }
        }
    }

    fn number(&mut self) -> Tok {
        let start = self.pos;
        if self.s[self.pos..].starts_with(b"0x") || self.s[self.pos..].starts_with(b"0X") {
            self.pos += 2;
            let hs = self.pos;
            while self
                .peek_at(self.pos)
                .is_some_and(|c| c.is_ascii_hexdigit() || c == b'_')
            {
                self.pos += 1;
            }
            let h: String = String::from_utf8_lossy(&self.s[hs..self.pos]).replace('_', "");
            return Tok::Num(i64::from_str_radix(&h, 16).unwrap_or(0).to_string());
        }
        while self
            .peek_at(self.pos)
            .is_some_and(|c| c.is_ascii_digit() || c == b'_')
        {
            self.pos += 1;
        }
        if self.peek_at(self.pos) == Some(b'.')
            && self.peek_at(self.pos + 1).is_some_and(|c| c.is_ascii_digit())
        {
            self.pos += 1;
            while self
                .peek_at(self.pos)
                .is_some_and(|c| c.is_ascii_digit() || c == b'_')
            {
                self.pos += 1;
            }
        }
        if matches!(self.peek_at(self.pos), Some(b'e' | b'E'))
            && (self.peek_at(self.pos + 1).is_some_and(|c| c.is_ascii_digit())
                || (matches!(self.peek_at(self.pos + 1), Some(b'-' | b'+'))
                    && self.peek_at(self.pos + 2).is_some_and(|c| c.is_ascii_digit())))
        {
            self.pos += 2;
            while self.peek_at(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).replace('_', "");
        Tok::Num(fmt_num(text.parse::<f64>().unwrap_or(0.0)))
    }

    fn skip_pod(&mut self) {
        loop {
            let end = self.s[self.pos..]
                .iter()
                .position(|&c| c == b'\n')
                .map(|p| self.pos + p + 1)
                .unwrap_or(self.s.len());
            let line = &self.s[self.pos..end];
            let is_cut = line.starts_with(b"=cut");
            self.pos = end;
            if is_cut || end == self.s.len() {
                return;
            }
        }
    }

    fn quote_like(&mut self, word: &str) -> Result<Option<Tok>, String> {
        if !matches!(word, "q" | "qq" | "qw" | "qr" | "m") {
            return Ok(None);
        }
        let mut p = self.pos;
        while self.peek_at(p).is_some_and(|c| c == b' ' || c == b'\t') {
            p += 1;
        }
        let d = match self.peek_at(p) {
            Some(d) => d,
            None => return Ok(None),
        };
        if d.is_ascii_alphanumeric()
            || d.is_ascii_whitespace()
            || matches!(d, b',' | b';' | b')' | b'_')
            || (d == b'=' && self.peek_at(p + 1) == Some(b'>'))
            || (p > self.pos && d == b'#')
        {
            return Ok(None);
        }
        self.pos = p;
        let (body, open, _) = self.delimited()?;
        Ok(Some(match word {
            "q" => Tok::Str(unescape_single(&body, open), false),
            "qq" => Tok::Str(body, true),
            "qw" => Tok::Words(
                body.split(|c| c.is_ascii_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(|w| w.to_vec())
                    .collect(),
            ),
            _ => {
                let flags = self.flags();
                Tok::Regex(body, flags, open != b'\'')
            }
        }))
    }

    fn tokens(mut self) -> Result<Vec<Tok>, String> {
        let mut out = Vec::new();
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            let line_start = self.pos == 0 || self.s[self.pos - 1] == b'\n';
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'#' {
                while self.peek_at(self.pos).is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
            } else if c == b'='
                && line_start
                && self
                    .peek_at(self.pos + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic())
            {
                self.skip_pod();
            } else if c.is_ascii_digit() {
                out.push(self.number());
            } else if c == b'"' {
                let (body, _, _) = self.delimited()?;
                out.push(Tok::Str(body, true));
            } else if c == b'\'' {
                let (body, open, _) = self.delimited()?;
                out.push(Tok::Str(unescape_single(&body, open), false));
            } else if c == b'$'
                || c == b'@'
                || (c == b'%' && self.peek_at(self.pos + 1).is_some_and(ident_start))
            {
                out.push(self.var(c)?);
            } else if c == b'<'
                && self.peek_at(self.pos + 1) == Some(b'<')
                && self
                    .peek_at(self.pos + 2)
                    .is_some_and(|d| d == b'"' || d == b'\'' || d == b'~' || ident_start(d))
            {
                out.push(self.heredoc()?);
            } else if ident_start(c) {
                let start = self.pos;
                loop {
                    match self.peek_at(self.pos) {
                        Some(c) if ident_char(c) => self.pos += 1,
                        Some(b':')
                            if self.peek_at(self.pos + 1) == Some(b':')
                                && self.peek_at(self.pos + 2).is_some_and(ident_start) =>
                        {
                            self.pos += 2
                        }
                        _ => break,
                    }
                }
                let word = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                if word == "__END__" || word == "__DATA__" {
                    break;
                }
                match self.quote_like(&word)? {
                    Some(t) => out.push(t),
                    None => out.push(Tok::Ident(word)),
                }
            } else if c == b'`' {
                return Err("backticks are not supported".into());
            } else {
                let op = OPS
                    .iter()
                    .find(|op| self.s[self.pos..].starts_with(op.as_bytes()))
                    .ok_or_else(|| format!("unexpected character '{}'", c as char))?;
                self.pos += op.len();
                out.push(Tok::Op(op));
            }
        }
        Ok(out)
    }
}

fn unescape_single(body: &[u8], delim: u8) -> Vec<u8> {
    let close = closing(delim);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let escaped = body[i] == b'\\'
            && i + 1 < body.len()
            && (body[i + 1] == b'\\' || body[i + 1] == delim || body[i + 1] == close);
        if escaped {
            out.push(body[i + 1]);
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

pub fn tokenize(src: &[u8]) -> Result<Vec<Tok>, String> {
    Lexer {
        s: src.to_vec(),
        pos: 0,
    }
    .tokens()
}

// ---------------------------------------------------------------- parser

#[derive(Clone, Copy, Debug, PartialEq)]
enum Bin {
    Concat,
    Repeat,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    NumEq,
    NumNe,
    NumLt,
    NumGt,
    NumLe,
    NumGe,
    StrEq,
    StrNe,
    StrLt,
    StrGt,
}

#[derive(Clone, Debug)]
enum Expr {
    Lit(Value),
    Interp(Vec<u8>),
    Regex(Vec<u8>, String, bool),
    Var(String),
    Env(Box<Expr>),
    List(Vec<Expr>),
    Array(Vec<Expr>),
    Hash(Vec<Expr>),
    Call(String, Option<Vec<Expr>>),
    Code(Vec<Tok>),
    Bin(Bin, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    DefOr(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Assign(Box<Expr>, Option<&'static str>, Box<Expr>),
    Defined(Box<Expr>),
    Index(Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug)]
enum Stmt {
    Expr(Expr),
    If(Vec<(Expr, Vec<Stmt>)>, Option<Vec<Stmt>>),
    Ignored,
}

/// Builtins parsed as named unary operators (one argument, no parens needed).
const UNARY_FUNCS: &[&str] = &[
    "lc",
    "uc",
    "lcfirst",
    "ucfirst",
    "length",
    "chr",
    "ord",
    "int",
    "abs",
    "quotemeta",
    "chomp",
    "scalar",
];

struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of input".into(),
        Some(Tok::Op(o)) => format!("'{}'", o),
        Some(Tok::Ident(s)) => format!("'{}'", s),
        Some(Tok::Var(s)) => format!("'${}'", s),
        Some(t) => format!("{:?}", t),
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }
    fn peek_at(&self, n: usize) -> Option<&'a Tok> {
        self.t.get(self.i + n)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn is_ident(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(o)) if o == w)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(format!("expected '{}' but found {}", op, describe(self.peek())))
        }
    }

    fn at_list_end(&self) -> bool {
        match self.peek() {
            None => true,
            Some(Tok::Op(o)) => matches!(*o, ")" | "]" | "}" | ";" | ":"),
            Some(Tok::Ident(w)) => matches!(w.as_str(), "or" | "and" | "if" | "unless"),
            _ => false,
        }
    }

    // low-precedence `or` / `and` / `not`
    fn expr(&mut self) -> Result<Expr, String> {
        let mut l = self.low_and()?;
        while self.is_ident("or") {
            self.i += 1;
            let r = self.low_and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn low_and(&mut self) -> Result<Expr, String> {
        let mut l = self.low_not()?;
        while self.is_ident("and") {
            self.i += 1;
            let r = self.low_not()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn low_not(&mut self) -> Result<Expr, String> {
        if self.is_ident("not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.low_not()?)));
        }
        self.comma()
    }

    fn comma(&mut self) -> Result<Expr, String> {
        if self.at_list_end() {
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.assign()?;
        if !(self.is_op(",") || self.is_op("=>")) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_op(",") || self.eat_op("=>") {
            if self.at_list_end() {
                break;
            }
            items.push(self.assign()?);
        }
        Ok(Expr::List(items))
    }

    fn assign(&mut self) -> Result<Expr, String> {
        let l = self.ternary()?;
        for op in ["=", "||=", "//=", ".=", "+=", "&&="] {
            if self.eat_op(op) {
                let r = self.assign()?;
                let kind = if op == "=" { None } else { Some(op) };
                return Ok(Expr::Assign(Box::new(l), kind, Box::new(r)));
            }
        }
        Ok(l)
    }

    fn ternary(&mut self) -> Result<Expr, String> {
        let c = self.oror()?;
        if self.eat_op("?") {
            let a = self.assign()?;
            self.expect_op(":")?;
            let b = self.assign()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn oror(&mut self) -> Result<Expr, String> {
        let mut l = self.andand()?;
        loop {
            if self.eat_op("||") {
                let r = self.andand()?;
                l = Expr::Or(Box::new(l), Box::new(r));
            } else if self.eat_op("//") {
                let r = self.andand()?;
                l = Expr::DefOr(Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn andand(&mut self) -> Result<Expr, String> {
        let mut l = self.equality()?;
        while self.eat_op("&&") {
            let r = self.equality()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn equality(&mut self) -> Result<Expr, String> {
        let mut l = self.relational()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("==")) => Bin::NumEq,
                Some(Tok::Op("!=")) => Bin::NumNe,
                Some(Tok::Ident(w)) if w == "eq" => Bin::StrEq,
                Some(Tok::Ident(w)) if w == "ne" => Bin::StrNe,
                _ => return Ok(l),
            };
            self.i += 1;
            let r = self.relational()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn relational(&mut self) -> Result<Expr, String> {
        let mut l = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("<")) => Bin::NumLt,
                Some(Tok::Op(">")) => Bin::NumGt,
                Some(Tok::Op("<=")) => Bin::NumLe,
                Some(Tok::Op(">=")) => Bin::NumGe,
                Some(Tok::Ident(w)) if w == "lt" => Bin::StrLt,
                Some(Tok::Ident(w)) if w == "gt" => Bin::StrGt,
                _ => return Ok(l),
            };
            self.i += 1;
            let r = self.additive()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut l = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(".")) => Bin::Concat,
                Some(Tok::Op("+")) => Bin::Add,
                Some(Tok::Op("-")) => Bin::Sub,
                _ => return Ok(l),
            };
            self.i += 1;
            let r = self.multiplicative()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        loop {
            let (op, count) = match self.peek() {
                Some(Tok::Op("*")) => (Bin::Mul, None),
                Some(Tok::Op("/")) => (Bin::Div, None),
                Some(Tok::Op("%")) => (Bin::Mod, None),
                Some(Tok::Ident(w)) if w == "x" => (Bin::Repeat, None),
                // `"a"x3` lexes as the identifier "x3"
                Some(Tok::Ident(w))
                    if w.len() > 1 && w.starts_with('x') && w[1..].bytes().all(|c| c.is_ascii_digit()) =>
                {
                    (Bin::Repeat, Some(w[1..].to_string()))
                }
                _ => return Ok(l),
            };
            self.i += 1;
            let r = match count {
                Some(n) => Expr::Lit(Value::Str(n.into_bytes())),
                None => self.unary()?,
            };
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_op("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat_op("+") {
            return self.unary();
        }
        if self.is_op("\\") {
            return Err("references (\\) are not supported".into());
        }
        if self.is_ident("defined") {
            self.i += 1;
            let paren = self.eat_op("(");
            let e = self.unary()?;
            if paren {
                self.expect_op(")")?;
            }
            return Ok(Expr::Defined(Box::new(e)));
        }
        let base = self.postfix()?;
        if self.eat_op("**") {
            let r = self.unary()?;
            return Ok(Expr::Bin(Bin::Pow, Box::new(base), Box::new(r)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.is_op("->") && matches!(self.peek_at(1), Some(Tok::Op("["))) {
                self.i += 2;
                let idx = self.expr()?;
                self.expect_op("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else if self.is_op("->") {
                return Err("method calls are not supported".into());
            } else {
                return Ok(e);
            }
        }
    }

    fn block_tokens(&mut self) -> Result<Vec<Tok>, String> {
        // at '{'; returns the tokens inside the braces
        let start = self.i + 1;
        let mut depth = 0;
        while let Some(t) = self.peek() {
            match t {
                Tok::Op("{") | Tok::Op("(") | Tok::Op("[") => depth += 1,
                Tok::Op("}") | Tok::Op(")") | Tok::Op("]") => {
                    depth -= 1;
                    if depth == 0 {
                        let body = self.t[start..self.i].to_vec();
                        self.i += 1;
                        return Ok(body);
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err("unbalanced braces".into())
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let tok = match self.peek() {
            Some(t) => t.clone(),
            None => return Err("unexpected end of expression".into()),
        };
        self.i += 1;
        match tok {
            Tok::Str(s, true) => Ok(Expr::Interp(s)),
            Tok::Str(s, false) => Ok(Expr::Lit(Value::Str(s))),
            Tok::Num(n) => Ok(Expr::Lit(Value::Str(n.into_bytes()))),
            Tok::Regex(s, f, interp) => Ok(Expr::Regex(s, f, interp)),
            Tok::Words(w) => Ok(Expr::List(
                w.into_iter().map(|x| Expr::Lit(Value::Str(x))).collect(),
            )),
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect_op(")")?;
                Ok(match e {
                    Expr::List(_) => e,
                    e => Expr::List(vec![e]),
                })
            }
            Tok::Op("[") => {
                let e = self.expr()?;
                self.expect_op("]")?;
                Ok(Expr::Array(match e {
                    Expr::List(v) => v,
                    e => vec![e],
                }))
            }
            Tok::Op("{") => {
                let e = self.expr()?;
                self.expect_op("}")?;
                Ok(Expr::Hash(match e {
                    Expr::List(v) => v,
                    e => vec![e],
                }))
            }
            Tok::Var(name) => {
                if name == "ENV" && self.is_op("{") {
                    self.i += 1;
                    let key = match (self.peek(), self.peek_at(1)) {
                        (Some(Tok::Ident(w)), Some(Tok::Op("}"))) => {
                            self.i += 1;
                            Expr::Lit(Value::str(w))
                        }
                        _ => self.expr()?,
                    };
                    self.expect_op("}")?;
                    return Ok(Expr::Env(Box::new(key)));
                }
                if self.is_op("{") || self.is_op("[") {
                    return Err(format!("element access on ${} is not supported", name));
                }
                Ok(Expr::Var(name))
            }
            Tok::ArrVar(name) => Err(format!("array variable @{} is not supported", name)),
            Tok::HashVar(name) => Err(format!("hash variable %{} is not supported", name)),
            Tok::Ident(w) => {
                if self.is_op("=>") {
                    return Ok(Expr::Lit(Value::str(&w)));
                }
                match w.as_str() {
                    "undef" => {
                        if self.eat_op("(") {
                            self.expect_op(")")?;
                        }
                        return Ok(Expr::Lit(Value::Undef));
                    }
                    "sub" if self.is_op("{") => return Ok(Expr::Code(self.block_tokens()?)),
                    "my" | "our" | "local" => {
                        if self.is_op("(") {
                            return Err("list declarations are not supported".into());
                        }
                        return self.primary();
                    }
                    _ => {}
                }
                let name = short_name(&w);
                if self.eat_op("(") {
                    let args = self.expr()?;
                    self.expect_op(")")?;
                    return Ok(Expr::Call(
                        name,
                        Some(match args {
                            Expr::List(v) => v,
                            e => vec![e],
                        }),
                    ));
                }
                if UNARY_FUNCS.contains(&name.as_str()) {
                    if self.at_list_end() || self.is_op(",") {
                        return Ok(Expr::Call(name, None));
                    }
                    let a = self.unary()?;
                    return Ok(Expr::Call(name, Some(vec![a])));
                }
                // A list operator takes the rest of the list when the next
                // token can start a term.
                let starts_term = match self.peek() {
                    Some(Tok::Str(..)) | Some(Tok::Num(_)) | Some(Tok::Regex(..)) | Some(Tok::Var(_)) => true,
                    Some(Tok::Words(_)) | Some(Tok::ArrVar(_)) | Some(Tok::HashVar(_)) => true,
                    Some(Tok::Op(o)) => matches!(*o, "[" | "\\" | "!"),
                    Some(Tok::Ident(x)) => !matches!(
                        x.as_str(),
                        "x" | "eq" | "ne" | "lt" | "gt" | "or" | "and" | "if" | "unless" | "cmp"
                    ),
                    None => false,
                };
                if starts_term {
                    let args = self.comma()?;
                    return Ok(Expr::Call(
                        name,
                        Some(match args {
                            Expr::List(v) => v,
                            e => vec![e],
                        }),
                    ));
                }
                Ok(Expr::Call(name, None))
            }
            t => Err(format!("unexpected {}", describe(Some(&t)))),
        }
    }

    fn statements(&mut self) -> Result<Vec<Stmt>, String> {
        let mut out = Vec::new();
        while self.peek().is_some() {
            if self.eat_op(";") {
                continue;
            }
            out.push(self.statement()?);
        }
        Ok(out)
    }

    fn skip_to_semicolon(&mut self) -> String {
        let mut depth = 0i32;
        let start = self.i;
        while let Some(t) = self.peek() {
            match t {
                Tok::Op("{") | Tok::Op("(") | Tok::Op("[") => depth += 1,
                Tok::Op("}") if depth == 1 => {
                    // a block statement (`for (...) { }`) ends at its brace
                    depth = 0;
                    let next = self.peek_at(1);
                    let continues = matches!(next, Some(Tok::Op(";" | "," | ")" | "->")))
                        || matches!(next, Some(Tok::Ident(w)) if w == "else" || w == "elsif");
                    if !continues {
                        self.i += 1;
                        break;
                    }
                }
                Tok::Op("}") | Tok::Op(")") | Tok::Op("]") => depth -= 1,
                Tok::Op(";") if depth <= 0 => {
                    self.i += 1;
                    break;
                }
                _ => {}
            }
            self.i += 1;
        }
        self.t[start..self.i.min(self.t.len())]
            .iter()
            .map(|t| match t {
                Tok::Ident(w) => w.clone(),
                Tok::Op(o) => o.to_string(),
                Tok::Var(v) => format!("${}", v),
                _ => "…".into(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn block(&mut self) -> Result<Vec<Stmt>, String> {
        if !self.is_op("{") {
            return Err(format!("expected a block but found {}", describe(self.peek())));
        }
        let toks = self.block_tokens()?;
        Parser { t: &toks, i: 0 }.statements()
    }

    fn statement(&mut self) -> Result<Stmt, String> {
        if let Some(Tok::Ident(w)) = self.peek() {
            match w.as_str() {
                "use" | "no" | "package" | "require" => {
                    self.skip_to_semicolon();
                    return Ok(Stmt::Ignored);
                }
                "if" | "unless" => {
                    let negate = w == "unless";
                    let mut arms = Vec::new();
                    let mut otherwise = None;
                    self.i += 1;
                    loop {
                        self.expect_op("(")?;
                        let mut c = self.expr()?;
                        self.expect_op(")")?;
                        if negate && arms.is_empty() {
                            c = Expr::Not(Box::new(c));
                        }
                        arms.push((c, self.block()?));
                        if self.is_ident("elsif") {
                            self.i += 1;
                            continue;
                        }
                        if self.is_ident("else") {
                            self.i += 1;
                            otherwise = Some(self.block()?);
                        }
                        break;
                    }
                    return Ok(Stmt::If(arms, otherwise));
                }
                "sub" if matches!(self.peek_at(1), Some(Tok::Ident(_))) => {
                    self.i += 2;
                    let _ = self.block_tokens()?;
                    return Ok(Stmt::Ignored);
                }
                "BEGIN" | "END" | "for" | "foreach" | "while" | "until" => {
                    return Err(format!("'{}' statements are not supported", w));
                }
                _ => {}
            }
        }
        let e = self.expr()?;
        let st = if self.is_ident("if") || self.is_ident("unless") {
            let negate = self.is_ident("unless");
            self.i += 1;
            let mut c = self.expr()?;
            if negate {
                c = Expr::Not(Box::new(c));
            }
            Stmt::If(vec![(c, vec![Stmt::Expr(e)])], None)
        } else {
            Stmt::Expr(e)
        };
        if self.peek().is_some() && !self.eat_op(";") {
            return Err(format!("unexpected {}", describe(self.peek())));
        }
        Ok(st)
    }
}

// ---------------------------------------------------------------- evaluator

/// Evaluation state: variables, the environment as the tests see it, and
/// the statement-level calls made by a preamble.
#[derive(Clone, Default)]
pub struct Interp {
    pub vars: HashMap<String, Value>,
    pub env: BTreeMap<String, String>,
    /// Values of Test::Nginx helper functions (html_dir, server_port, ...).
    pub funcs: HashMap<String, Value>,
    /// When set, a statement that is a call of an unknown function is
    /// recorded here instead of failing: that is how preamble directives
    /// such as `repeat_each(2)` reach the parser.
    pub record_calls: bool,
    pub calls: Vec<(String, Vec<Value>)>,
    /// Functions whose statements are skipped without evaluating arguments.
    pub ignored_calls: Vec<&'static str>,
    pub warnings: Vec<String>,
}

impl Interp {
    /// Runs a program and returns the value of its last statement.
    pub fn eval(&mut self, src: &[u8]) -> Result<Value, String> {
        let toks = tokenize(src)?;
        self.eval_tokens(&toks)
    }

    pub fn eval_tokens(&mut self, toks: &[Tok]) -> Result<Value, String> {
        let stmts = Parser { t: toks, i: 0 }.statements()?;
        self.run(&stmts)
    }

    /// Runs a preamble: statements that fail are skipped with a warning so
    /// one exotic line does not lose the directives around it.
    pub fn run_preamble(&mut self, src: &[u8]) -> Result<(), String> {
        let toks = tokenize(src)?;
        let mut p = Parser { t: &toks, i: 0 };
        while p.peek().is_some() {
            if p.eat_op(";") {
                continue;
            }
            let start = p.i;
            match p.statement() {
                Ok(st) => {
                    if let Err(e) = self.run(std::slice::from_ref(&st)) {
                        self.warnings.push(format!("preamble statement skipped: {}", e));
                    }
                }
                Err(e) => {
                    p.i = start;
                    let text = p.skip_to_semicolon();
                    self.warnings
                        .push(format!("preamble statement skipped ({}): {}", e, text));
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, stmts: &[Stmt]) -> Result<Value, String> {
        let mut last = Value::Undef;
        for st in stmts {
            last = match st {
                Stmt::Ignored => Value::Undef,
                Stmt::If(arms, otherwise) => {
                    let mut v = None;
                    for (c, body) in arms {
                        if self.value(c)?.truthy() {
                            v = Some(self.run(body)?);
                            break;
                        }
                    }
                    match (v, otherwise) {
                        (Some(v), _) => v,
                        (None, Some(body)) => self.run(body)?,
                        (None, None) => Value::Undef,
                    }
                }
                Stmt::Expr(Expr::Call(name, args))
                    if self.record_calls
                        && (!self.is_builtin(name) || args.as_ref().is_some_and(|a| !a.is_empty())) =>
                {
                    if self.ignored_calls.contains(&name.as_str()) {
                        continue;
                    }
                    // `plan tests => repeat_each() * blocks() * 3` needs
                    // nothing but its first words; keep what evaluates
                    let mut vals = Vec::new();
                    for a in args.iter().flatten() {
                        match self.value(a) {
                            Ok(v) => flatten_into(&mut vals, v),
                            Err(e) => {
                                if name != "plan" {
                                    self.warnings
                                        .push(format!("arguments of {}() not understood: {}", name, e));
                                }
                                break;
                            }
                        }
                    }
                    self.calls.push((name.clone(), vals));
                    Value::Undef
                }
                Stmt::Expr(e) => self.value(e)?,
            };
        }
        Ok(last)
    }

    fn is_builtin(&self, name: &str) -> bool {
        self.funcs.contains_key(name)
            || UNARY_FUNCS.contains(&name)
            || matches!(name, "join" | "sprintf" | "cwd" | "getcwd" | "time")
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        match name {
            "^O" => Some(Value::str("linux")),
            "$" => Some(Value::Str(std::process::id().to_string().into_bytes())),
            _ => None,
        }
    }

    fn value(&mut self, e: &Expr) -> Result<Value, String> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Interp(raw) => Value::Str(self.interpolate(raw, false)?),
            Expr::Regex(raw, flags, interp) => Value::Regex(Pattern {
                src: if *interp {
                    self.interpolate(raw, true)?
                } else {
                    raw.clone()
                },
                flags: flags.clone(),
            }),
            Expr::Var(name) => self
                .lookup(name)
                .ok_or_else(|| format!("unknown variable ${}", name))?,
            Expr::Env(k) => {
                let k = self.value(k)?.to_string_lossy();
                match self.env.get(&k) {
                    Some(v) => Value::str(v),
                    None => Value::Undef,
                }
            }
            Expr::List(items) => {
                let mut out = Vec::new();
                for i in items {
                    flatten_into(&mut out, self.value(i)?);
                }
                Value::List(out)
            }
            Expr::Array(items) => {
                let mut out = Vec::new();
                for i in items {
                    flatten_into(&mut out, self.value(i)?);
                }
                Value::Array(out)
            }
            Expr::Hash(items) => {
                let mut flat = Vec::new();
                for i in items {
                    flatten_into(&mut flat, self.value(i)?);
                }
                if flat.len() % 2 != 0 {
                    flat.push(Value::Undef);
                }
                let mut pairs = Vec::new();
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k.to_string_lossy(), v));
                }
                Value::Hash(pairs)
            }
            Expr::Code(toks) => Value::Code(toks.clone()),
            Expr::Call(name, args) => {
                let mut vals = Vec::new();
                for a in args.iter().flatten() {
                    flatten_into(&mut vals, self.value(a)?);
                }
                self.call(name, vals)?
            }
            Expr::Bin(Bin::Repeat, l, r) => {
                let lv = self.value(l)?;
                let n = self.value(r)?.first().to_num().max(0.0) as usize;
                match lv {
                    // `(LIST) x N` repeats the list, as in Perl list context
                    Value::List(items) if matches!(**l, Expr::List(_)) => {
                        let mut out = Vec::new();
                        for _ in 0..n {
                            out.extend(items.iter().cloned());
                        }
                        Value::List(out)
                    }
                    lv => Value::Str(lv.first().to_bytes().repeat(n)),
                }
            }
            Expr::Bin(op, l, r) => {
                let a = self.value(l)?.first();
                let b = self.value(r)?.first();
                binop(*op, &a, &b)
            }
            Expr::Not(x) => bool_val(!self.value(x)?.truthy()),
            Expr::Neg(x) => Value::Str(fmt_num(-self.value(x)?.first().to_num()).into_bytes()),
            Expr::And(a, b) => {
                let av = self.value(a)?;
                if av.truthy() {
                    self.value(b)?
                } else {
                    av
                }
            }
            Expr::Or(a, b) => {
                let av = self.value(a)?;
                if av.truthy() {
                    av
                } else {
                    self.value(b)?
                }
            }
            Expr::DefOr(a, b) => {
                let av = self.value(a)?;
                if av != Value::Undef {
                    av
                } else {
                    self.value(b)?
                }
            }
            Expr::Cond(c, a, b) => {
                if self.value(c)?.truthy() {
                    self.value(a)?
                } else {
                    self.value(b)?
                }
            }
            Expr::Defined(x) => {
                let v = match &**x {
                    Expr::Var(n) => self.lookup(n).unwrap_or(Value::Undef),
                    x => self.value(x)?,
                };
                bool_val(v != Value::Undef)
            }
            Expr::Index(a, i) => {
                let av = self.value(a)?;
                let idx = self.value(i)?.first().to_num() as i64;
                match av {
                    Value::Array(v) => {
                        let n = v.len() as i64;
                        let k = if idx < 0 { n + idx } else { idx };
                        if k >= 0 && k < n {
                            v[k as usize].clone()
                        } else {
                            Value::Undef
                        }
                    }
                    _ => return Err("indexing a non-array".into()),
                }
            }
            Expr::Assign(target, op, rhs) => {
                let current = match &**target {
                    Expr::Var(n) => self.lookup(n).unwrap_or(Value::Undef),
                    Expr::Env(k) => {
                        let k = self.value(k)?.to_string_lossy();
                        self.env.get(&k).map(|v| Value::str(v)).unwrap_or(Value::Undef)
                    }
                    _ => return Err("unsupported assignment target".into()),
                };
                let new = match op {
                    None => self.value(rhs)?,
                    Some("||=") if current.truthy() => current,
                    Some("&&=") if !current.truthy() => current,
                    Some("//=") if current != Value::Undef => current,
                    Some("||=") | Some("//=") | Some("&&=") => self.value(rhs)?,
                    Some(".=") => {
                        let mut b = current.to_bytes();
                        b.extend(self.value(rhs)?.first().to_bytes());
                        Value::Str(b)
                    }
                    Some("+=") => binop(Bin::Add, &current, &self.value(rhs)?.first()),
                    Some(o) => return Err(format!("unsupported operator {}", o)),
                };
                let new = match new {
                    Value::List(_) => new.first(),
                    v => v,
                };
                match &**target {
                    Expr::Var(n) => {
                        self.vars.insert(n.clone(), new.clone());
                    }
                    Expr::Env(k) => {
                        let k = self.value(k)?.to_string_lossy();
                        self.env.insert(k, new.to_string_lossy());
                    }
                    _ => unreachable!(),
                }
                new
            }
        })
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        if let Some(v) = self.funcs.get(name) {
            return Ok(v.clone());
        }
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undef);
        let s = |i: usize| arg(i).to_bytes();
        Ok(match name {
            "join" => {
                let sep = s(0);
                let parts: Vec<Vec<u8>> = args.iter().skip(1).map(Value::to_bytes).collect();
                Value::Str(parts.join(&sep[..]))
            }
            "lc" => Value::Str(s(0).to_ascii_lowercase()),
            "uc" => Value::Str(s(0).to_ascii_uppercase()),
            "lcfirst" | "ucfirst" => {
                let mut b = s(0);
                if let Some(c) = b.first_mut() {
                    *c = if name == "lcfirst" {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    };
                }
                Value::Str(b)
            }
            "length" => Value::Str(s(0).len().to_string().into_bytes()),
            "chr" => {
                let n = arg(0).to_num() as u32;
                if n < 256 {
                    Value::Str(vec![n as u8])
                } else {
                    let c = char::from_u32(n).unwrap_or('\u{fffd}');
                    Value::Str(c.to_string().into_bytes())
                }
            }
            "ord" => Value::Str(s(0).first().copied().unwrap_or(0).to_string().into_bytes()),
            "int" => Value::Str(fmt_num(arg(0).to_num().trunc()).into_bytes()),
            "abs" => Value::Str(fmt_num(arg(0).to_num().abs()).into_bytes()),
            "scalar" => match arg(0) {
                Value::Array(v) => Value::Str(v.len().to_string().into_bytes()),
                v => v,
            },
            "quotemeta" => {
                let mut out = Vec::new();
                for c in s(0) {
                    if !ident_char(c) && c < 128 {
                        out.push(b'\\');
                    }
                    out.push(c);
                }
                Value::Str(out)
            }
            "cwd" | "getcwd" => Value::Str(
                std::env::current_dir()
                    .map(|p| p.to_string_lossy().into_owned().into_bytes())
                    .unwrap_or_default(),
            ),
            "time" => Value::Str(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    .to_string()
                    .into_bytes(),
            ),
            "sprintf" => Value::Str(sprintf(&s(0), &args[1.min(args.len())..])?),
            _ => return Err(format!("unsupported function {}()", name)),
        })
    }

    /// Double-quote processing.  In regex mode escapes are left for the
    /// regex engine and only variables are substituted; unknown variables
    /// are then left alone since `$` is also an anchor.
    pub fn interpolate(&mut self, raw: &[u8], regex: bool) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let c = raw[i];
            if c == b'\\' && i + 1 < raw.len() {
                if regex {
                    out.push(c);
                    out.push(raw[i + 1]);
                    i += 2;
                    continue;
                }
                i = unescape_dq(raw, i + 1, &mut out)?;
                continue;
            }
            if c == b'@' && !regex && raw[i..].starts_with(b"@{[") {
                let start = i + 3;
                let end = raw[start..]
                    .windows(2)
                    .position(|w| w == b"]}")
                    .map(|p| start + p)
                    .ok_or("unterminated @{[ ... ]}")?;
                let v = self.eval(&raw[start..end])?;
                let mut parts = Vec::new();
                flatten_into(&mut parts, v);
                let strs: Vec<Vec<u8>> = parts.iter().map(Value::to_bytes).collect();
                out.extend(strs.join(&b' '));
                i = end + 2;
                continue;
            }
            if c == b'$' {
                if let Some((name, next)) = var_name(raw, i + 1) {
                    if name == "ENV" && raw.get(next) == Some(&b'{') {
                        if let Some(close) = raw[next..].iter().position(|&c| c == b'}') {
                            let key = String::from_utf8_lossy(&raw[next + 1..next + close]);
                            let key = key.trim().trim_matches(|c| c == '\'' || c == '"');
                            if let Some(v) = self.env.get(key) {
                                out.extend_from_slice(v.as_bytes());
                            }
                            i = next + close + 1;
                            continue;
                        }
                    }
                    match self.lookup(&name) {
                        Some(v) => out.extend(v.to_bytes()),
                        None if regex || name.starts_with("TEST_NGINX_") => {
                            out.extend_from_slice(&raw[i..next]);
                        }
                        None => return Err(format!("unknown variable ${} in string", name)),
                    }
                    i = next;
                    continue;
                }
            }
            out.push(c);
            i += 1;
        }
        Ok(out)
    }
}

/// Parses `name`, `::name`, `Pkg::name` or `{name}` after a `$` in a
/// string; returns the short name and the index after it.
fn var_name(raw: &[u8], at: usize) -> Option<(String, usize)> {
    if raw.get(at) == Some(&b'{') {
        let close = raw[at..].iter().position(|&c| c == b'}')? + at;
        let inner = std::str::from_utf8(&raw[at + 1..close]).ok()?.trim();
        if !inner.is_empty() && inner.bytes().all(|c| ident_char(c) || c == b':') {
            return Some((short_name(inner), close + 1));
        }
        return None;
    }
    let mut j = at;
    loop {
        match raw.get(j) {
            Some(&c) if ident_char(c) && !(j == at && c.is_ascii_digit()) => j += 1,
            Some(b':')
                if raw.get(j + 1) == Some(&b':') && raw.get(j + 2).is_some_and(|c| ident_start(*c)) =>
            {
                j += 2
            }
            _ => break,
        }
    }
    if j == at {
        return None;
    }
    let name = std::str::from_utf8(&raw[at..j]).ok()?;
    Some((short_name(name), j))
}

/// Handles one escape in a double-quoted string; `i` points after the
/// backslash.  Returns the index after the escape.
fn unescape_dq(raw: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    let e = raw[i];
    i += 1;
    match e {
        b'n' => out.push(b'\n'),
        b'r' => out.push(b'\r'),
        b't' => out.push(b'\t'),
        b'f' => out.push(0x0c),
        b'e' => out.push(0x1b),
        b'a' => out.push(0x07),
        b'0'..=b'7' => {
            let mut v = (e - b'0') as u32;
            let mut n = 1;
            while n < 3 && matches!(raw.get(i), Some(b'0'..=b'7')) {
                v = v * 8 + (raw[i] - b'0') as u32;
                i += 1;
                n += 1;
            }
            push_code(out, v);
        }
        b'x' => {
            if raw.get(i) == Some(&b'{') {
                let close = raw[i..].iter().position(|&c| c == b'}').ok_or("bad \\x{")? + i;
                let h = String::from_utf8_lossy(&raw[i + 1..close]).trim().to_string();
                let v = u32::from_str_radix(&h, 16).map_err(|_| format!("bad \\x{{{}}}", h))?;
                push_code(out, v);
                i = close + 1;
            } else {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && raw.get(i).is_some_and(|c| c.is_ascii_hexdigit()) {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap();
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
        }
        b'c' => {
            let c = raw.get(i).copied().unwrap_or(b'@');
            i += 1;
            out.push(c.to_ascii_uppercase() ^ 0x40);
        }
        b'N' if raw.get(i) == Some(&b'{') => {
            let close = raw[i..].iter().position(|&c| c == b'}').ok_or("bad \\N{")? + i;
            let name = String::from_utf8_lossy(&raw[i + 1..close]).to_string();
            let hex = name
                .strip_prefix("U+")
                .ok_or_else(|| format!("unsupported \\N{{{}}}", name))?;
            push_code(
                out,
                u32::from_str_radix(hex, 16).map_err(|_| format!("bad \\N{{{}}}", name))?,
            );
            i = close + 1;
        }
        b'E' => {}
        b'l' | b'u' | b'L' | b'U' | b'Q' => {
            return Err(format!("unsupported escape \\{} in string", e as char));
        }
        c => out.push(c),
    }
    Ok(i)
}

/// Code points up to 0xff are single bytes, as in a Perl byte string; larger
/// ones become UTF-8, which is what Perl writes for wide characters.
fn push_code(out: &mut Vec<u8>, v: u32) {
    if v < 256 {
        out.push(v as u8);
    } else {
        let c = char::from_u32(v).unwrap_or('\u{fffd}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

fn bool_val(b: bool) -> Value {
    if b {
        Value::str("1")
    } else {
        Value::str("")
    }
}

fn binop(op: Bin, a: &Value, b: &Value) -> Value {
    let (x, y) = (a.to_num(), b.to_num());
    let num = |n: f64| Value::Str(fmt_num(n).into_bytes());
    match op {
        Bin::Concat => {
            let mut v = a.to_bytes();
            v.extend(b.to_bytes());
            Value::Str(v)
        }
        Bin::Repeat => Value::Str(a.to_bytes().repeat(y.max(0.0) as usize)),
        Bin::Add => num(x + y),
        Bin::Sub => num(x - y),
        Bin::Mul => num(x * y),
        Bin::Div => num(if y == 0.0 { f64::NAN } else { x / y }),
        Bin::Mod => num(if y == 0.0 { f64::NAN } else { x % y }),
        Bin::Pow => num(x.powf(y)),
        Bin::NumEq => bool_val(x == y),
        Bin::NumNe => bool_val(x != y),
        Bin::NumLt => bool_val(x < y),
        Bin::NumGt => bool_val(x > y),
        Bin::NumLe => bool_val(x <= y),
        Bin::NumGe => bool_val(x >= y),
        Bin::StrEq => bool_val(a.to_bytes() == b.to_bytes()),
        Bin::StrNe => bool_val(a.to_bytes() != b.to_bytes()),
        Bin::StrLt => bool_val(a.to_bytes() < b.to_bytes()),
        Bin::StrGt => bool_val(a.to_bytes() > b.to_bytes()),
    }
}

fn sprintf(fmt: &[u8], args: &[Value]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut ai = 0;
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' {
            out.push(fmt[i]);
            i += 1;
            continue;
        }
        i += 1;
        let spec_start = i;
        while i < fmt.len() && (fmt[i].is_ascii_digit() || matches!(fmt[i], b'-' | b'.' | b'0')) {
            i += 1;
        }
        let spec = String::from_utf8_lossy(&fmt[spec_start..i]).into_owned();
        let conv = fmt.get(i).copied().ok_or("bad sprintf format")?;
        i += 1;
        let arg = args.get(ai).cloned().unwrap_or(Value::Undef);
        let width: usize = spec
            .trim_start_matches(['-', '0'])
            .split('.')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or(0);
        let body = match conv {
            b'%' => {
                out.push(b'%');
                continue;
            }
            b's' => arg.to_bytes(),
            b'd' => (arg.to_num() as i64).to_string().into_bytes(),
            b'x' => format!("{:x}", arg.to_num() as i64).into_bytes(),
            b'X' => format!("{:X}", arg.to_num() as i64).into_bytes(),
            b'f' => {
                let prec: usize = spec.split('.').nth(1).and_then(|p| p.parse().ok()).unwrap_or(6);
                format!("{:.*}", prec, arg.to_num()).into_bytes()
            }
            c => return Err(format!("unsupported sprintf conversion %{}", c as char)),
        };
        ai += 1;
        if body.len() < width {
            let pad = if spec.starts_with('0') && conv != b's' {
                b'0'
            } else {
                b' '
            };
            if spec.starts_with('-') {
                out.extend(&body);
                out.extend(std::iter::repeat_n(b' ', width - body.len()));
            } else {
                out.extend(std::iter::repeat_n(pad, width - body.len()));
                out.extend(&body);
            }
        } else {
            out.extend(body);
        }
    }
    Ok(out)
}
