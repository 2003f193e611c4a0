//! The assertions of a block, with Test::Nginx::Socket's semantics.

use crate::http::Response;
use crate::pattern::Regex;
use crate::report::{Failure, clip, escape, mismatch, quote};
use crate::value::Value;

/// Evaluated expectation sections of a block (after eval, filters and
/// environment expansion).
#[derive(Default, Debug)]
pub struct Expect {
    pub error_code: Option<Value>,
    pub error_code_like: Option<Value>,
    pub response_body: Option<Value>,
    pub response_body_like: Option<Value>,
    pub response_body_unlike: Option<Value>,
    pub response_body_filters: Option<Value>,
    pub response_headers: Option<Value>,
    pub response_headers_like: Option<Value>,
    pub raw_response_headers_like: Option<Value>,
    pub raw_response_headers_unlike: Option<Value>,
    pub error_log: Option<Value>,
    pub no_error_log: Option<Value>,
    pub grep_error_log: Option<Value>,
    pub grep_error_log_out: Option<Value>,
    pub access_log: Option<Value>,
    pub no_access_log: Option<Value>,
    pub shutdown_error_log: Option<Value>,
    pub no_shutdown_error_log: Option<Value>,
    pub abort: bool,
    pub ignore_response: bool,
    pub server_port: u16,
}

impl Expect {
    pub fn checks_error_log(&self) -> bool {
        self.error_log.is_some()
            || self.no_error_log.is_some()
            || self.grep_error_log.is_some()
            || self.access_log.is_some()
            || self.no_access_log.is_some()
    }
}

/// Where a check happens: repetition and request numbers (0-based), and
/// whether per-request values must be arrays.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub rep: usize,
    pub req: usize,
    pub need_array: bool,
}

impl At {
    pub fn tag(&self, check: &str) -> String {
        if self.need_array {
            format!(
                "{} (repetition {}, request {})",
                check,
                self.rep + 1,
                self.req + 1
            )
        } else {
            format!("{} (repetition {})", check, self.rep + 1)
        }
    }
}

/// Test::Nginx's get_indexed_value: with several requests the expected
/// value must be an array; with one, an array means its first element.
fn indexed(v: &Value, at: &At, check: &str) -> Result<Value, Failure> {
    match v {
        Value::Array(items) => Ok(items
            .get(if at.need_array { at.req } else { 0 })
            .cloned()
            .unwrap_or(Value::Undef)),
        v if at.need_array => Err(Failure::new(
            at.tag(check),
            format!(
                "the block sends several requests, so --- {} must be an array (eval [...]), got {}",
                check,
                clip(&v.to_bytes(), 80)
            ),
        )),
        v => Ok(v.clone()),
    }
}

/// As Test::Nginx's `qr/$expected/flags`: a plain string is a pattern
/// compiled with `flags`; a qr// keeps its own (Perl interpolates it as
/// `(?^flags:...)`).
pub fn to_regex(v: &Value, flags: &str) -> Result<Regex, String> {
    match v {
        Value::Regex(p) => Regex::new(&p.src, &p.flags),
        v => Regex::new(&v.to_bytes(), flags),
    }
}

fn replace_server_port(s: &[u8], port: u16) -> Vec<u8> {
    let p = port.to_string();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    'outer: while i < s.len() {
        for name in [&b"$ServerPortForClient"[..], &b"$ServerPort"[..]] {
            if s[i..].starts_with(name) {
                let end = i + name.len();
                if s.get(end)
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                {
                    out.extend_from_slice(p.as_bytes());
                    i = end;
                    continue 'outer;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn with_port(v: Value, port: u16) -> Value {
    match v {
        Value::Str(s) => Value::Str(replace_server_port(&s, port)),
        v => v,
    }
}

fn like(v: &Value, hay: &[u8], flags: &str, check: String, negate: bool, out: &mut Vec<Failure>) {
    match to_regex(v, flags) {
        Err(e) => out.push(Failure::new(check, e)),
        Ok(re) => match re.is_match(hay) {
            Err(e) => out.push(Failure::new(check, e)),
            Ok(hit) if hit == negate => {
                out.push(Failure::new(
                    check,
                    format!(
                        "{} /{}/\n  got: {}",
                        if negate {
                            "should not match"
                        } else {
                            "does not match"
                        },
                        re.as_str(),
                        clip(hay, 2000)
                    ),
                ));
            }
            Ok(_) => {}
        },
    }
}

fn body_filter(name: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    Ok(match name {
        "uc" => body.to_ascii_uppercase(),
        "lc" => body.to_ascii_lowercase(),
        "ucfirst" | "lcfirst" => {
            let mut b = body;
            if let Some(c) = b.first_mut() {
                *c = if name == "ucfirst" {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
            }
            b
        }
        "length" => body.len().to_string().into_bytes(),
        other => return Err(format!("unsupported response_body_filters filter \"{}\"", other)),
    })
}

fn apply_body_filters(f: &Value, at: &At, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let names: Vec<String> = match f {
        Value::Array(items) if matches!(items.first(), Some(Value::Array(_))) => match items.get(at.req) {
            Some(Value::Array(inner)) => inner.iter().map(Value::to_string_lossy).collect(),
            _ => return Err("response_body_filters has no filters for this request".into()),
        },
        Value::Array(items) => items.iter().map(Value::to_string_lossy).collect(),
        Value::Code => return Err("response_body_filters with Perl subs are not supported".into()),
        v => v
            .to_string_lossy()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    };
    names.iter().try_fold(body, |b, n| body_filter(n, b))
}

/// Header lines of response_headers(_like): `Name: value`, or `!Name`.
fn header_expectations(v: &[u8]) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for line in String::from_utf8_lossy(v).lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, val) = if let Some(rest) = line.strip_prefix('!') {
            (rest.trim().to_string(), None)
        } else {
            match line.split_once(':') {
                Some((k, v)) => (k.trim().to_string(), Some(v.trim().as_bytes().to_vec())),
                None => (line.to_string(), Some(Vec::new())),
            }
        };
        // a later line for the same header wins, as in the Perl hash
        out.retain(|(k, _)| *k != key);
        out.push((key, val));
    }
    out
}

/// Status, header and body checks of one response.
pub fn check_response(e: &Expect, r: &Response, at: &At) -> Vec<Failure> {
    let mut out = Vec::new();
    if e.ignore_response {
        return out;
    }
    let code = r.status.map(|c| c.to_string()).unwrap_or_default();

    // status
    if let Some(v) = &e.error_code_like {
        match indexed(v, at, "error_code_like") {
            Ok(v) => like(
                &v,
                code.as_bytes(),
                "sm",
                at.tag("error_code_like"),
                false,
                &mut out,
            ),
            Err(f) => out.push(f),
        }
    } else if let Some(v) = &e.error_code {
        match indexed(v, at, "error_code") {
            Ok(v) => {
                let want = v.to_string_lossy().trim().to_string();
                if want != code {
                    out.push(Failure::new(
                        at.tag("error_code"),
                        format!(
                            "expected status {}, got {}",
                            quote(want.as_bytes()),
                            quote(code.as_bytes())
                        ),
                    ));
                }
            }
            Err(f) => out.push(f),
        }
    } else if !e.abort && code != "200" {
        out.push(Failure::new(
            at.tag("error_code"),
            format!(
                "expected status \"200\" (the default), got {}",
                quote(code.as_bytes())
            ),
        ));
    }

    // raw headers
    for (v, name, negate) in [
        (&e.raw_response_headers_like, "raw_response_headers_like", false),
        (
            &e.raw_response_headers_unlike,
            "raw_response_headers_unlike",
            true,
        ),
    ] {
        if let Some(v) = v {
            match indexed(v, at, name) {
                Ok(v) => like(&v, &r.raw_headers, "s", at.tag(name), negate, &mut out),
                Err(f) => out.push(f),
            }
        }
    }

    // headers
    if let Some(v) = &e.response_headers {
        match indexed(v, at, "response_headers") {
            Ok(v) => {
                for (key, want) in header_expectations(&v.to_bytes()) {
                    let got = r.header(&key);
                    match want {
                        None => {
                            if let Some(g) = got {
                                out.push(Failure::new(
                                    at.tag("response_headers"),
                                    format!("header {} should be absent, got {}", key, quote(&g)),
                                ));
                            }
                        }
                        Some(want) => {
                            let want = replace_server_port(&want, e.server_port);
                            // like Test::Nginx, a missing header counts as ""
                            let g = got.clone().unwrap_or_default();
                            if g != want {
                                out.push(Failure::new(
                                    at.tag("response_headers"),
                                    format!(
                                        "header {}: expected {}, got {}",
                                        key,
                                        quote(&want),
                                        match got {
                                            Some(g) => quote(&g),
                                            None => "nothing (header absent)".into(),
                                        }
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            Err(f) => out.push(f),
        }
    } else if let Some(v) = &e.response_headers_like {
        match indexed(v, at, "response_headers_like") {
            Ok(v) => {
                for (key, want) in header_expectations(&v.to_bytes()) {
                    let mut pat = b"^".to_vec();
                    pat.extend(want.unwrap_or_default());
                    pat.push(b'$');
                    let got = r.header(&key).unwrap_or_default();
                    like(
                        &Value::Str(pat),
                        &got,
                        "",
                        format!("{} header {}", at.tag("response_headers_like"), key),
                        false,
                        &mut out,
                    );
                }
            }
            Err(f) => out.push(f),
        }
    }

    // body
    let mut body = r.body.clone();
    if let Some(f) = &e.response_body_filters {
        match apply_body_filters(f, at, body) {
            Ok(b) => body = b,
            Err(msg) => {
                out.push(Failure::new(at.tag("response_body_filters"), msg));
                return out;
            }
        }
    }
    if let Some(v) = &e.response_body {
        match indexed(v, at, "response_body") {
            Ok(Value::Regex(p)) => like(
                &Value::Regex(p),
                &body,
                "",
                at.tag("response_body"),
                false,
                &mut out,
            ),
            Ok(v) => {
                let want = with_port(v, e.server_port).to_bytes();
                if want != body {
                    out.push(Failure::new(at.tag("response_body"), mismatch(&want, &body)));
                }
            }
            Err(f) => out.push(f),
        }
    } else if let Some((v, name, negate)) = e
        .response_body_like
        .as_ref()
        .map(|v| (v, "response_body_like", false))
        .or(e
            .response_body_unlike
            .as_ref()
            .map(|v| (v, "response_body_unlike", true)))
    {
        match indexed(v, at, name) {
            Ok(v) => like(
                &with_port(v, e.server_port),
                &body,
                "s",
                at.tag(name),
                negate,
                &mut out,
            ),
            Err(f) => out.push(f),
        }
    }
    out
}

enum Pat {
    Sub(Vec<u8>),
    Re(Regex),
}

impl Pat {
    fn find(&self, line: &[u8]) -> Result<Option<(usize, usize)>, String> {
        match self {
            Pat::Sub(s) if s.is_empty() => Ok(Some((0, 0))),
            Pat::Sub(s) => Ok(line
                .windows(s.len())
                .position(|w| w == &s[..])
                .map(|p| (p, p + s.len()))),
            Pat::Re(r) => r.find(line),
        }
    }

    fn show(&self) -> String {
        match self {
            Pat::Sub(s) => quote(s),
            Pat::Re(r) => format!("qr/{}/", r.as_str()),
        }
    }
}

/// error_log-style pattern lists: text is one substring per line, a qr//
/// is one regex, an array mixes both.
fn patterns(v: &Value) -> Result<Vec<Pat>, String> {
    let one = |v: &Value| -> Result<Pat, String> {
        match v {
            Value::Regex(p) => Ok(Pat::Re(Regex::new(&p.src, &p.flags)?)),
            v => Ok(Pat::Sub(v.to_bytes())),
        }
    };
    match v {
        Value::Array(items) => items.iter().filter(|i| **i != Value::Undef).map(one).collect(),
        Value::Regex(_) => Ok(vec![one(v)?]),
        v => {
            let mut s = v.to_bytes();
            if s.last() == Some(&b'\n') {
                s.pop();
            }
            Ok(s.split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| Pat::Sub(l.to_vec()))
                .collect())
        }
    }
}

/// `should`: every pattern must match some line; otherwise no pattern may
/// match any line.
fn log_patterns(v: &Value, lines: &[&[u8]], should: bool, check: &str, log: &str, out: &mut Vec<Failure>) {
    let pats = match patterns(v) {
        Ok(p) => p,
        Err(e) => {
            out.push(Failure::new(check, e));
            return;
        }
    };
    'pats: for p in &pats {
        let mut hit = None;
        for l in lines {
            match p.find(l) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    hit = Some(l);
                    break;
                }
                Err(e) => {
                    out.push(Failure::new(check, e));
                    continue 'pats;
                }
            }
        }
        match (should, hit) {
            (true, None) => out.push(Failure::new(
                check,
                format!("pattern {} should match a line in {}", p.show(), log),
            )),
            (false, Some(l)) => out.push(Failure::new(
                check,
                format!(
                    "pattern {} should not match any line in {} but matches\n  {}",
                    p.show(),
                    log,
                    escape(l.strip_suffix(b"\n").unwrap_or(l), false)
                ),
            )),
            _ => {}
        }
    }
}

/// Error log checks of one repetition (or the shutdown phase when
/// `shutdown` is set); `lines` keep their newlines.
pub fn check_error_log(e: &Expect, lines: &[&[u8]], rep: usize, shutdown: bool) -> Vec<Failure> {
    let mut out = Vec::new();
    let tag = |c: &str| format!("{} (repetition {})", c, rep + 1);
    if shutdown {
        if let Some(v) = &e.shutdown_error_log {
            log_patterns(v, lines, true, "shutdown_error_log", "error.log", &mut out);
        }
        if let Some(v) = &e.no_shutdown_error_log {
            log_patterns(v, lines, false, "no_shutdown_error_log", "error.log", &mut out);
        }
    } else {
        if let Some(v) = &e.error_log {
            log_patterns(v, lines, true, &tag("error_log"), "error.log", &mut out);
        }
        if let Some(v) = &e.no_error_log {
            log_patterns(v, lines, false, &tag("no_error_log"), "error.log", &mut out);
        }
        if let Some(g) = &e.grep_error_log {
            grep_log(e, g, lines, rep, &mut out);
        }
    }
    let assertion = Regex::new(br"\bAssertion .*? failed\b", "").expect("static regex");
    for l in lines {
        if assertion.is_match(l).unwrap_or(false) {
            out.push(Failure::new(
                if shutdown {
                    "assertion (shutdown)".to_string()
                } else {
                    tag("assertion")
                },
                escape(l.strip_suffix(b"\n").unwrap_or(l), true),
            ));
        }
    }
    out
}

fn grep_log(e: &Expect, g: &Value, lines: &[&[u8]], rep: usize, out: &mut Vec<Failure>) {
    let check = format!("grep_error_log_out (repetition {})", rep + 1);
    let g = match g {
        Value::Array(items) => items.get(rep).cloned().unwrap_or(Value::Undef),
        v => v.clone(),
    };
    let pat = match &g {
        Value::Regex(p) => match Regex::new(&p.src, &p.flags) {
            Ok(r) => Pat::Re(r),
            Err(err) => {
                out.push(Failure::new(check, err));
                return;
            }
        },
        v => Pat::Sub(v.to_bytes()),
    };
    let expected = match &e.grep_error_log_out {
        Some(Value::Array(items)) => items.get(rep).cloned().unwrap_or(Value::Undef),
        Some(v) => v.clone(),
        None => {
            out.push(Failure::new(
                check,
                "--- grep_error_log is given but --- grep_error_log_out is missing",
            ));
            return;
        }
    };
    let mut got = Vec::new();
    for l in lines {
        let found = match pat.find(l) {
            Ok(f) => f,
            Err(err) => {
                out.push(Failure::new(check, err));
                return;
            }
        };
        if let Some((a, b)) = found {
            let m = &l[a..b];
            if !m.contains(&b'\n') {
                got.extend_from_slice(m);
                got.push(b'\n');
            }
        }
    }
    match expected {
        Value::Regex(p) => like(&Value::Regex(p), &got, "", check, false, out),
        v => {
            let want = v.to_bytes();
            if want != got {
                out.push(Failure::new(check, mismatch(&want, &got)));
            }
        }
    }
}

/// access_log / no_access_log over the access log lines of a repetition.
pub fn check_access_log(e: &Expect, lines: &[&[u8]], rep: usize) -> Vec<Failure> {
    let mut out = Vec::new();
    if let Some(v) = &e.access_log {
        log_patterns(
            v,
            lines,
            true,
            &format!("access_log (repetition {})", rep + 1),
            "access.log",
            &mut out,
        );
    }
    if let Some(v) = &e.no_access_log {
        log_patterns(
            v,
            lines,
            false,
            &format!("no_access_log (repetition {})", rep + 1),
            "access.log",
            &mut out,
        );
    }
    out
}
