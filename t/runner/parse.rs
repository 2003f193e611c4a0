//! Test::Nginx `.t` files: the Perl preamble, blocks and sections.
//!
//! Preamble directives honoured: `repeat_each(N)`, `log_level('x')`,
//! `no_shuffle()` (blocks always run in file order anyway), `master_on()`,
//! `master_off()`, `workers(N)`, `worker_connections(N)`,
//! `no_long_string()`, `no_root_location()`, `check_accum_error_log()`,
//! `env_to_nginx(...)`, `config_preamble('...')`, `timeout(N)`,
//! `server_name('x')`, `plan skip_all => '...'`, assignments to `$ENV{...}`
//! (`=`, `||=`, `//=`) and to variables (`our $X = ...`, usable later in
//! eval sections as `$X` or `$::X`), and the common add_block_preprocessor
//! idiom `if (!defined $block->X) { $block->set_value("Y", EXPR) }`.
//!
//! Ignored: `use`/`no` lines, `plan tests => ...`, `run_tests()`,
//! `no_diff()`, `use_hup()`, `add_cleanup_handler(...)`, `bail_out(...)`,
//! `diag`/`note`/`warn`/`print`, sub definitions, and any other
//! add_block_preprocessor body (reported as a warning), as is every
//! statement outside the supported Perl subset (see eval.rs).

use crate::eval::{Interp, Tok, Value};

#[derive(Clone, Debug)]
pub enum SectionSrc {
    Text(Vec<u8>),
    /// A value set by an add_block_preprocessor default.
    Expr(Vec<Tok>),
}

#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub filters: Vec<String>,
    pub src: SectionSrc,
}

#[derive(Clone, Debug)]
pub struct Block {
    /// 1-based position in the file.
    pub index: usize,
    /// The text after `===`, e.g. "TEST 1: sanity".
    pub name: String,
    pub line: usize,
    pub sections: Vec<Section>,
}

impl Block {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().rev().find(|s| s.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    pub fn title(&self) -> &str {
        &self.name
    }
}

/// A section default installed by an add_block_preprocessor idiom: when all
/// `unless_defined` sections are absent, `name` is set to the value of
/// `expr`.
#[derive(Clone, Debug)]
pub struct SectionDefault {
    pub unless_defined: Vec<String>,
    pub name: String,
    pub expr: Vec<Tok>,
}

#[derive(Clone, Debug)]
pub struct Preamble {
    pub repeat_each: usize,
    pub log_level: String,
    pub master: bool,
    pub workers: usize,
    pub worker_connections: usize,
    pub no_long_string: bool,
    pub no_root_location: bool,
    pub check_accum_error_log: bool,
    pub env_to_nginx: Vec<String>,
    pub config_preamble: String,
    pub timeout: Option<f64>,
    pub server_name: Option<String>,
    pub skip_all: Option<String>,
    pub defaults: Vec<SectionDefault>,
}

impl std::default::Default for Preamble {
    fn default() -> Self {
        Preamble {
            repeat_each: 1,
            log_level: "debug".into(),
            master: true,
            workers: 1,
            worker_connections: 1024,
            no_long_string: false,
            no_root_location: false,
            check_accum_error_log: false,
            env_to_nginx: Vec::new(),
            config_preamble: String::new(),
            timeout: None,
            server_name: None,
            skip_all: None,
            defaults: Vec::new(),
        }
    }
}

pub struct TestFile {
    pub preamble: Preamble,
    /// The interpreter state after the preamble ran (variables, env).
    pub interp: Interp,
    pub blocks: Vec<Block>,
    pub warnings: Vec<String>,
}

/// Statements whose arguments are not even evaluated.
const IGNORED_CALLS: &[&str] = &[
    "run_tests",
    "run_test",
    "no_diff",
    "use_hup",
    "add_cleanup_handler",
    "add_response_body_check",
    "bail_out",
    "diag",
    "note",
    "warn",
    "print",
    "no_nginx_manager",
    "no_check_leak",
];

/// Splits a file into preamble and blocks and runs the preamble in
/// `interp`, which must already know the server's ports and directories.
pub fn parse_file(content: &[u8], mut interp: Interp) -> Result<TestFile, String> {
    let (pre, data, data_line) = split_data(content)?;
    let blocks = split_blocks(data, data_line);
    interp
        .funcs
        .insert("blocks".into(), Value::Str(blocks.len().to_string().into_bytes()));
    interp.record_calls = true;
    interp.ignored_calls = IGNORED_CALLS.to_vec();
    interp.run_preamble(pre)?;
    interp.record_calls = false;
    let mut preamble = Preamble::default();
    let mut warnings = std::mem::take(&mut interp.warnings);
    let calls = std::mem::take(&mut interp.calls);
    for (name, args) in calls {
        apply_directive(&mut preamble, &name, &args, &mut warnings);
    }
    Ok(TestFile {
        preamble,
        interp,
        blocks,
        warnings,
    })
}

fn apply_directive(p: &mut Preamble, name: &str, args: &[Value], warnings: &mut Vec<String>) {
    let s = |i: usize| args.get(i).map(|v| v.to_string_lossy());
    let n = |i: usize| args.get(i).map(|v| v.to_num());
    match name {
        "repeat_each" => {
            if let Some(x) = n(0) {
                p.repeat_each = (x as usize).max(1);
            }
        }
        "log_level" => {
            if let Some(x) = s(0) {
                p.log_level = x;
            }
        }
        "no_shuffle" => {}
        "master_on" => p.master = true,
        "master_off" => p.master = false,
        "master_process_enabled" => {
            if let Some(x) = args.first() {
                p.master = x.truthy() && x.to_bytes() != b"off";
            }
        }
        "workers" => {
            if let Some(x) = n(0) {
                p.workers = (x as usize).max(1);
            }
        }
        "worker_connections" => {
            if let Some(x) = n(0) {
                p.worker_connections = x as usize;
            }
        }
        "no_long_string" => p.no_long_string = true,
        "no_root_location" => p.no_root_location = true,
        "check_accum_error_log" => p.check_accum_error_log = true,
        "env_to_nginx" => p.env_to_nginx.extend(args.iter().map(Value::to_string_lossy)),
        "config_preamble" => p.config_preamble = s(0).unwrap_or_default(),
        "timeout" => p.timeout = n(0),
        "server_name" => p.server_name = s(0),
        "plan" => {
            if s(0).as_deref() == Some("skip_all") {
                p.skip_all = Some(s(1).unwrap_or_else(|| "plan skip_all".into()));
            }
        }
        "add_block_preprocessor" => match args.first() {
            Some(Value::Code(toks)) => {
                let (defaults, mut w) = preprocessor_defaults(toks);
                p.defaults.extend(defaults);
                warnings.append(&mut w);
            }
            _ => warnings.push("add_block_preprocessor without a sub {...}: ignored".into()),
        },
        _ => warnings.push(format!("preamble call {}() ignored", name)),
    }
}

/// Recognises `if (!defined $block->A && ...) { $block->set_value("B", EXPR); }`
/// (and `unless (defined ...)`) inside an add_block_preprocessor sub.
fn preprocessor_defaults(toks: &[Tok]) -> (Vec<SectionDefault>, Vec<String>) {
    let mut defaults = Vec::new();
    let mut warnings = Vec::new();
    let is_op = |i: usize, o: &str| matches!(toks.get(i), Some(Tok::Op(x)) if *x == o);
    let is_ident = |i: usize, w: &str| matches!(toks.get(i), Some(Tok::Ident(x)) if x == w);
    let matching = |open: usize| -> Option<usize> {
        let mut depth = 0i32;
        for (j, t) in toks.iter().enumerate().skip(open) {
            match t {
                Tok::Op("(") | Tok::Op("{") | Tok::Op("[") => depth += 1,
                Tok::Op(")") | Tok::Op("}") | Tok::Op("]") => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let mut i = 0;
    let mut understood = 0;
    let mut set_values = 0;
    while i < toks.len() {
        if is_ident(i, "set_value") {
            set_values += 1;
        }
        let negate = if is_ident(i, "if") {
            true
        } else if is_ident(i, "unless") {
            false
        } else {
            i += 1;
            continue;
        };
        let cond_close = match (is_op(i + 1, "("), matching(i + 1)) {
            (true, Some(c)) => c,
            _ => {
                i += 1;
                continue;
            }
        };
        // guard terms joined by && : [!] defined [(] $block -> NAME [)]
        let mut guards = Vec::new();
        let mut ok = true;
        for term in toks[i + 2..cond_close].split(|t| *t == Tok::Op("&&")) {
            let mut t: Vec<&Tok> = term
                .iter()
                .filter(|t| !matches!(t, Tok::Op("(") | Tok::Op(")")))
                .collect();
            let neg = matches!(t.first(), Some(Tok::Op("!")));
            if neg {
                t.remove(0);
            }
            if matches!(t.first(), Some(Tok::Ident(w)) if w == "defined") {
                t.remove(0);
            }
            match (neg == negate, t.as_slice()) {
                (true, [Tok::Var(_), Tok::Op("->"), Tok::Ident(name)]) => guards.push(name.clone()),
                _ => ok = false,
            }
        }
        let body_open = cond_close + 1;
        let body_close = match (is_op(body_open, "{"), matching(body_open)) {
            (true, Some(c)) => c,
            _ => {
                i = cond_close + 1;
                continue;
            }
        };
        // body: $block->set_value("NAME", EXPR);  (one or more)
        let mut j = body_open + 1;
        while ok && j < body_close {
            if matches!(toks.get(j), Some(Tok::Var(_)))
                && is_op(j + 1, "->")
                && is_ident(j + 2, "set_value")
                && is_op(j + 3, "(")
            {
                let close = matching(j + 3).unwrap_or(body_close);
                let name = match toks.get(j + 4) {
                    Some(Tok::Str(s, _)) => String::from_utf8_lossy(s).into_owned(),
                    _ => {
                        ok = false;
                        break;
                    }
                };
                if !is_op(j + 5, ",") || close <= j + 6 {
                    ok = false;
                    break;
                }
                defaults.push(SectionDefault {
                    unless_defined: guards.clone(),
                    name,
                    expr: toks[j + 6..close].to_vec(),
                });
                understood += 1;
                j = close + 1;
                while is_op(j, ";") {
                    j += 1;
                }
            } else {
                ok = false;
            }
        }
        if !ok {
            warnings.push("add_block_preprocessor: a conditional was not understood and is ignored".into());
        }
        i = body_close + 1;
    }
    if understood < set_values {
        warnings.push(format!(
            "add_block_preprocessor: {} of {} set_value calls were not understood and are ignored",
            set_values - understood,
            set_values
        ));
    }
    (defaults, warnings)
}

/// Returns (preamble, data after `__DATA__`, 1-based line of the data).
fn split_data(content: &[u8]) -> Result<(&[u8], &[u8], usize), String> {
    let mut off = 0;
    for (line, l) in (1..).zip(content.split_inclusive(|&c| c == b'\n')) {
        let t = trim_end(l);
        if t == b"__DATA__" || t == b"__END__" {
            return Ok((&content[..off], &content[off + l.len()..], line + 1));
        }
        off += l.len();
    }
    Err("no __DATA__ line found".into())
}

fn trim_end(s: &[u8]) -> &[u8] {
    let mut e = s.len();
    while e > 0 && s[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    &s[..e]
}

/// Test::Base's block and section syntax: blocks start at lines beginning
/// with `===`, sections at lines `--- name [filters]` or
/// `--- name [filters]: value`.
pub fn split_blocks(data: &[u8], first_line: usize) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut cur: Option<Section> = None;
    let mut in_description = false;
    let finish = |blocks: &mut Vec<Block>, cur: &mut Option<Section>| {
        if let (Some(s), Some(b)) = (cur.take(), blocks.last_mut()) {
            b.sections.push(s);
        }
    };
    for (n, l) in data.split_inclusive(|&c| c == b'\n').enumerate() {
        if l.starts_with(b"===") {
            finish(&mut blocks, &mut cur);
            let name = String::from_utf8_lossy(trim_end(&l[3..]))
                .trim_start()
                .to_string();
            blocks.push(Block {
                index: blocks.len() + 1,
                name,
                line: first_line + n,
                sections: Vec::new(),
            });
            in_description = true;
            continue;
        }
        if blocks.is_empty() {
            continue;
        }
        if let Some((name, filters, inline)) = section_header(l) {
            finish(&mut blocks, &mut cur);
            in_description = false;
            match inline {
                Some(v) => {
                    if let Some(b) = blocks.last_mut() {
                        b.sections.push(Section {
                            name,
                            filters,
                            src: SectionSrc::Text(v),
                        });
                    }
                }
                None => {
                    cur = Some(Section {
                        name,
                        filters,
                        src: SectionSrc::Text(Vec::new()),
                    })
                }
            }
            continue;
        }
        if in_description {
            continue;
        }
        if let Some(Section {
            src: SectionSrc::Text(t),
            ..
        }) = cur.as_mut()
        {
            t.extend_from_slice(l);
        }
    }
    finish(&mut blocks, &mut cur);
    blocks
}

/// Parses `--- name filters` / `--- name filters: value`; the inline value
/// comes back already trimmed, as Test::Base does.
fn section_header(l: &[u8]) -> Option<(String, Vec<String>, Option<Vec<u8>>)> {
    let rest = l.strip_prefix(b"---")?;
    if !rest.starts_with(b" ") {
        return None;
    }
    let line = String::from_utf8_lossy(rest);
    let line = line.trim_end_matches(['\n', '\r']);
    let s = line.trim_start_matches(' ');
    let s2 = s.strip_prefix('(').unwrap_or(s);
    let name_len = s2
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    if name_len == 0 {
        return None;
    }
    let name = s2[..name_len].to_string();
    let mut after = &s2[name_len..];
    if s2.len() != s.len() {
        after = after.strip_prefix(')').unwrap_or(after);
    }
    let after = after.trim_start_matches(' ');
    // `: value` form: a colon followed by whitespace or the end of line
    let colon = after
        .char_indices()
        .find(|&(i, c)| c == ':' && after[i + 1..].chars().next().is_none_or(|n| n.is_whitespace()));
    let (filters, inline) = match colon {
        Some((i, _)) => (
            after[..i].trim().to_string(),
            Some(after[i + 1..].trim().as_bytes().to_vec()),
        ),
        None => (after.trim().to_string(), None),
    };
    Some((
        name,
        filters.split_whitespace().map(str::to_string).collect(),
        inline,
    ))
}

/// Test::Base's default `trim`: drops leading blank lines and the
/// whitespace after the last newline.
pub fn trim_filter(t: &[u8]) -> Vec<u8> {
    let mut start = 0;
    loop {
        let ws = t[start..]
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        if t.get(start + ws) == Some(&b'\n') {
            start += ws + 1;
        } else {
            break;
        }
    }
    let t = &t[start..];
    let mut k = t.len();
    while k > 0 && t[k - 1].is_ascii_whitespace() {
        k -= 1;
    }
    for p in k.max(1)..=t.len() {
        if t[p - 1] == b'\n' {
            return t[..p].to_vec();
        }
    }
    t.to_vec()
}

/// Test::Base's `norm`: CRLF and lone CR become LF.
pub fn norm_filter(t: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'\r' {
            out.push(b'\n');
            if t.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            out.push(t[i]);
        }
        i += 1;
    }
    out
}

/// The value of a section after its filters.
pub fn section_value(sec: &Section, interp: &mut Interp) -> Result<Value, String> {
    let text = match &sec.src {
        SectionSrc::Expr(toks) => {
            let mut i = interp.clone();
            return i.eval_tokens(toks).map(Value::first).map_err(|e| {
                format!(
                    "unsupported eval in add_block_preprocessor default for {}: {}",
                    sec.name, e
                )
            });
        }
        SectionSrc::Text(t) => t,
    };
    let mut filters: Vec<&str> = vec!["norm", "trim"];
    for f in &sec.filters {
        match f.strip_prefix('-') {
            Some(x) => filters.retain(|y| *y != x),
            None => filters.push(f.strip_prefix('+').unwrap_or(f)),
        }
    }
    let mut v = Value::Str(text.clone());
    for f in filters {
        v = match (f, v) {
            ("norm", Value::Str(s)) => Value::Str(norm_filter(&s)),
            ("trim", Value::Str(s)) => Value::Str(trim_filter(&s)),
            ("chomp", Value::Str(mut s)) => {
                if s.last() == Some(&b'\n') {
                    s.pop();
                }
                Value::Str(s)
            }
            ("chop", Value::Str(mut s)) => {
                s.pop();
                Value::Str(s)
            }
            ("eval", Value::Str(s)) => {
                let mut i = interp.clone();
                i.eval(&s)
                    .map(Value::first)
                    .map_err(|e| format!("unsupported eval in --- {}: {}", sec.name, e))?
            }
            ("norm" | "trim" | "chomp" | "chop", v) => v,
            (other, _) => return Err(format!("unsupported filter \"{}\" in --- {}", other, sec.name)),
        };
    }
    Ok(v)
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

/// Test::Base's ONLY / SKIP / LAST: returns the blocks to run and those
/// skipped by `--- SKIP`.
pub fn select_blocks(blocks: &[Block]) -> (Vec<&Block>, Vec<&Block>) {
    if let Some(only) = blocks.iter().find(|b| b.has("ONLY")) {
        return (vec![only], Vec::new());
    }
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for b in blocks {
        if b.has("SKIP") {
            skipped.push(b);
            continue;
        }
        run.push(b);
        if b.has("LAST") {
            break;
        }
    }
    (run, skipped)
}

/// Test::Nginx's time values: "1.5", "100ms", "2s".
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse::<f64>().ok().map(|v| v / 1000.0);
    }
    s.strip_suffix('s').unwrap_or(s).trim().parse().ok()
}

/// Parses the `>>> name [mtime]` entries of a user_files section.
pub fn parse_user_files(text: &[u8]) -> Vec<(String, Vec<u8>, Option<String>)> {
    let mut files: Vec<(String, Vec<u8>, Option<String>)> = Vec::new();
    for l in text.split_inclusive(|&c| c == b'\n') {
        if let Some(rest) = l.strip_prefix(b">>> ") {
            let rest = String::from_utf8_lossy(rest);
            let mut parts = rest.split_whitespace();
            if let Some(name) = parts.next() {
                let date = parts.collect::<Vec<_>>().join(" ");
                files.push((name.to_string(), Vec::new(), (!date.is_empty()).then_some(date)));
                continue;
            }
        }
        if let Some(f) = files.last_mut() {
            f.1.extend_from_slice(l);
        }
    }
    files
}
