//! A block's section values as the runner uses them: Perl evaluated them
//! already (t/runner/blocks.pl); what Test::Nginx does on top happens
//! here: `$TEST_NGINX_*` expansion (an undefined one is an error in
//! nginx.conf sections) and its time values.

use crate::perl::Block;
use crate::report::Failure;
use crate::value::Value;
use std::collections::BTreeMap;

/// Sections with meaning for the runner.
pub const KNOWN: &[&str] = &[
    "config",
    "http_config",
    "main_config",
    "post_main_config",
    "server_name",
    "request",
    "raw_request",
    "pipelined_requests",
    "more_headers",
    "raw_request_middle_delay",
    "response_body",
    "response_body_like",
    "response_body_unlike",
    "response_body_filters",
    "error_code",
    "error_code_like",
    "response_headers",
    "response_headers_like",
    "raw_response_headers_like",
    "raw_response_headers_unlike",
    "error_log",
    "no_error_log",
    "grep_error_log",
    "grep_error_log_out",
    "access_log",
    "no_access_log",
    "shutdown_error_log",
    "no_shutdown_error_log",
    "timeout",
    "abort",
    "wait",
    "user_files",
    "log_level",
    "ONLY",
    "SKIP",
    "LAST",
    "ignore_response",
    "must_die",
    "shutdown",
    "http09",
    "skip_nginx",
    "skip_nginx2",
    "skip_eval",
    "skip_openssl",
    "tcp_listen",
    "tcp_reply",
    "tcp_query",
    "tcp_query_len",
    "tcp_reply_delay",
    "tcp_no_close",
    "tcp_shutdown",
    "tcp_shutdown_delay",
    "udp_listen",
    "udp_reply",
    "udp_query",
    "udp_reply_delay",
];

/// Sections accepted and deliberately ignored (Perl hooks, systemtap,
/// benchmarking modes).
pub const IGNORED: &[&str] = &["init", "curl", "no_check_leak", "todo", "timeout_expected"];

/// Section access for one block, with errors collected as failures.
pub struct BlockEval<'a> {
    pub block: &'a Block,
    pub env: &'a BTreeMap<String, String>,
    pub failures: Vec<Failure>,
    /// error.log size when nginx was told to stop
    pub log_end: Option<u64>,
}

impl<'a> BlockEval<'a> {
    pub fn new(block: &'a Block, env: &'a BTreeMap<String, String>) -> Self {
        BlockEval {
            block,
            env,
            failures: Vec::new(),
            log_end: None,
        }
    }

    /// The value with `$TEST_NGINX_*` expanded, and the names that had no
    /// value.
    fn expanded(&self, name: &str) -> Option<(Value, Vec<String>)> {
        let v = self.block.section(name)?.clone();
        let lookup = |k: &str| self.env.get(k).cloned();
        let mut missing = Vec::new();
        let v = expand_value(v, &lookup, &mut missing);
        Some((v, missing))
    }

    pub fn get(&self, name: &str) -> Option<Value> {
        self.expanded(name).map(|(v, _)| v)
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string_lossy())
    }

    /// A time value (`1.5`, `100ms`, `2s`); unparsable ones are failures.
    pub fn time(&self, name: &str) -> Result<Option<f64>, Failure> {
        match self.text(name) {
            None => Ok(None),
            Some(t) => parse_time(&t)
                .map(Some)
                .ok_or_else(|| Failure::new(name, format!("bad --- {} value \"{}\"", name, t.trim()))),
        }
    }

    /// A configuration section: undefined `$TEST_NGINX_*` are errors, as in
    /// Test::Nginx.
    pub fn conf(&self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        match self.expanded(name) {
            None => Ok(None),
            Some((v, missing)) => match missing.first() {
                Some(m) => Err(Failure::new(
                    format!("--- {}", name),
                    format!("no environment variable {} is defined", m),
                )),
                None => Ok(Some(v.to_bytes())),
            },
        }
    }

    /// `expand_env` for configuration text from elsewhere (the preamble).
    pub fn expand_conf(&self, s: &[u8], what: &str) -> Result<Vec<u8>, Failure> {
        let lookup = |k: &str| self.env.get(k).cloned();
        let mut missing = Vec::new();
        let out = expand_env(s, &lookup, &mut missing);
        match missing.first() {
            Some(m) => Err(Failure::new(
                what,
                format!("no environment variable {} is defined", m),
            )),
            None => Ok(out),
        }
    }
}

/// Replaces `$TEST_NGINX_X` and `${TEST_NGINX_X}` with values from
/// `lookup`; names without a value are left alone and reported.
pub fn expand_env(s: &[u8], lookup: &dyn Fn(&str) -> Option<String>, missing: &mut Vec<String>) -> Vec<u8> {
    const P: &[u8] = b"TEST_NGINX_";
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'$' {
            let braced = s.get(i + 1) == Some(&b'{');
            let start = i + 1 + braced as usize;
            if s[start..].starts_with(P) {
                let mut end = start + P.len();
                while end < s.len()
                    && (s[end].is_ascii_uppercase() || s[end].is_ascii_digit() || s[end] == b'_')
                {
                    end += 1;
                }
                let closed = !braced || s.get(end) == Some(&b'}');
                let name = String::from_utf8_lossy(&s[start..end]).into_owned();
                if closed {
                    if let Some(v) = lookup(&name) {
                        out.extend_from_slice(v.as_bytes());
                        i = end + braced as usize;
                        continue;
                    }
                    if !missing.contains(&name) {
                        missing.push(name);
                    }
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Applies `expand_env` to every string inside a value.
pub fn expand_value(v: Value, lookup: &dyn Fn(&str) -> Option<String>, missing: &mut Vec<String>) -> Value {
    match v {
        Value::Str(s) => Value::Str(expand_env(&s, lookup, missing)),
        Value::Regex(mut p) => {
            p.src = expand_env(&p.src, lookup, missing);
            Value::Regex(p)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|x| expand_value(x, lookup, missing))
                .collect(),
        ),
        Value::Hash(items) => Value::Hash(
            items
                .into_iter()
                .map(|(k, x)| (k, expand_value(x, lookup, missing)))
                .collect(),
        ),
        v => v,
    }
}

/// Test::Nginx's time values: "1.5", "100ms", "2s".
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse::<f64>().ok().map(|v| v / 1000.0);
    }
    s.strip_suffix('s').unwrap_or(s).trim().parse().ok()
}
