//! Human-readable output: escaped strings, line diffs, block reports.

/// One failed check of a block.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Which check, with repetition/request numbers, e.g.
    /// "response_body (repetition 2, request 1)".
    pub check: String,
    /// Pre-formatted explanation (may span lines).
    pub detail: String,
}

impl Failure {
    pub fn new(check: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure {
            check: check.into(),
            detail: detail.into(),
        }
    }
}

/// Escapes a byte string for one-line display inside double quotes.
pub fn quote(b: &[u8]) -> String {
    let mut s = String::from("\"");
    s.push_str(&escape(b, true));
    s.push('"');
    s
}

/// Makes control bytes and invalid UTF-8 visible; newlines are escaped only
/// when `newlines` is set.
pub fn escape(b: &[u8], newlines: bool) -> String {
    let text = String::from_utf8_lossy(b);
    let valid = matches!(text, std::borrow::Cow::Borrowed(_));
    let mut s = String::new();
    if valid {
        for c in text.chars() {
            match c {
                '\n' if newlines => s.push_str("\\n"),
                '\n' => s.push('\n'),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                '"' if newlines => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => s.push_str(&format!("\\x{:02x}", c as u32)),
                c => s.push(c),
            }
        }
    } else {
        for &c in b {
            match c {
                b'\n' if newlines => s.push_str("\\n"),
                b'\n' => s.push('\n'),
                b'\r' => s.push_str("\\r"),
                b'\t' => s.push_str("\\t"),
                b'"' if newlines => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                0x20..=0x7e => s.push(c as char),
                c => s.push_str(&format!("\\x{:02x}", c)),
            }
        }
    }
    s
}

fn lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

fn show_line(prefix: char, l: &[u8]) -> String {
    let (body, nl) = match l.strip_suffix(b"\n") {
        Some(x) => (x, true),
        None => (l, false),
    };
    let mut s = format!("{} {}", prefix, escape(body, true));
    if !nl {
        s.push_str("  (no newline at end)");
    }
    s
}

enum Op {
    Same(usize),
    Del(usize),
    Add(usize),
}

/// A line diff of expected ("-") against got ("+") with two lines of
/// context around each change.
pub fn diff(expected: &[u8], got: &[u8]) -> String {
    let a = lines(expected);
    let b = lines(got);
    // common prefix/suffix keep the LCS table small
    let pre = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<Op> = (0..pre).map(Op::Same).collect();
    if am.len() * bm.len() <= 4_000_000 {
        let (n, m) = (am.len(), bm.len());
        let mut t = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i * (m + 1) + j] = if am[i] == bm[j] {
                    t[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    t[(i + 1) * (m + 1) + j].max(t[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push(Op::Same(pre + i));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[(i + 1) * (m + 1) + j] >= t[i * (m + 1) + j + 1]) {
                ops.push(Op::Del(pre + i));
                i += 1;
            } else {
                ops.push(Op::Add(pre + j));
                j += 1;
            }
        }
    } else {
        ops.extend((pre..pre + am.len()).map(Op::Del));
        ops.extend((pre..pre + bm.len()).map(Op::Add));
    }
    ops.extend((0..suf).map(|k| Op::Same(a.len() - suf + k)));

    const CTX: usize = 2;
    const MAX_LINES: usize = 200;
    let changed: Vec<bool> = ops.iter().map(|o| !matches!(o, Op::Same(_))).collect();
    let mut out = Vec::new();
    let mut last_shown: Option<usize> = None;
    for (k, op) in ops.iter().enumerate() {
        let lo = k.saturating_sub(CTX);
        let hi = (k + CTX + 1).min(ops.len());
        if !changed[lo..hi].iter().any(|&c| c) {
            continue;
        }
        if last_shown.is_some_and(|l| l + 1 < k) || (last_shown.is_none() && k > 0) {
            out.push("  ...".to_string());
        }
        last_shown = Some(k);
        out.push(match op {
            Op::Same(i) => show_line(' ', a[*i]),
            Op::Del(i) => show_line('-', a[*i]),
            Op::Add(j) => show_line('+', b[*j]),
        });
        if out.len() >= MAX_LINES {
            out.push("  ... (diff truncated)".to_string());
            break;
        }
    }
    if last_shown.is_some_and(|l| l + 1 < ops.len()) && out.len() < MAX_LINES {
        out.push("  ...".to_string());
    }
    out.join("\n")
}

/// Expected/got comparison of two byte strings for a failure report.
pub fn mismatch(expected: &[u8], got: &[u8]) -> String {
    let first_diff = expected
        .iter()
        .zip(got.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let mut s = format!(
        "expected {} bytes, got {} bytes; first difference at byte {}\n",
        expected.len(),
        got.len(),
        first_diff
    );
    if !expected.contains(&b'\n') && !got.contains(&b'\n') && expected.len() + got.len() < 400 {
        s.push_str(&format!(
            "  expected: {}\n  got:      {}",
            quote(expected),
            quote(got)
        ));
    } else {
        s.push_str("  --- expected\n  +++ got\n");
        s.push_str(&indent(&diff(expected, got), "  "));
    }
    s
}

pub fn indent(s: &str, pre: &str) -> String {
    s.lines()
        .map(|l| format!("{}{}", pre, l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Shortens long text for one-line display.
pub fn clip(b: &[u8], max: usize) -> String {
    if b.len() <= max {
        quote(b)
    } else {
        format!("{}... ({} bytes)", quote(&b[..max]), b.len())
    }
}

/// The last `n` lines of a file's contents.
pub fn tail(content: &[u8], n: usize) -> String {
    let ls: Vec<&[u8]> = content.split(|&c| c == b'\n').collect();
    let ls = if ls.last().is_some_and(|l| l.is_empty()) {
        &ls[..ls.len() - 1]
    } else {
        &ls[..]
    };
    let start = ls.len().saturating_sub(n);
    ls[start..]
        .iter()
        .map(|l| escape(l, false))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `n` error.log lines above debug level (all lines when there
/// are none), which is where the cause of a failure usually shows.
pub fn log_tail(log: &[u8], n: usize) -> String {
    // multi-line messages (e.g. debug dumps of headers) continue on lines
    // without the "YYYY/MM/DD " prefix and share their first line's level
    let starts_entry = |l: &[u8]| l.len() > 5 && l[..4].iter().all(u8::is_ascii_digit) && l[4] == b'/';
    let all: Vec<&[u8]> = log.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
    let mut important = Vec::new();
    let mut keep = true;
    for l in &all {
        if starts_entry(l) {
            keep = !l.windows(7).any(|w| w == b"[debug]");
        }
        if keep {
            important.push(*l);
        }
    }
    let pick = if important.is_empty() { all } else { important };
    let start = pick.len().saturating_sub(n);
    pick[start..]
        .iter()
        .map(|l| escape(l, false))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints the report of a failed block.
pub fn print_failure(
    file: &str,
    line: usize,
    name: &str,
    failures: &[Failure],
    notes: &[String],
    log: Option<(String, String)>,
) {
    let mut s = format!("not ok - {} {}\n", file, name);
    s.push_str(&format!("  # at {}:{}\n", file, line));
    for f in failures {
        s.push_str(&format!("  # FAILED {}\n", f.check));
        s.push_str(&indent(&f.detail, "  #   "));
        s.push('\n');
    }
    for n in notes {
        let mut ls = n.lines();
        s.push_str(&format!("  # note: {}\n", ls.next().unwrap_or("")));
        for l in ls {
            s.push_str(&format!("  #   {}\n", l));
        }
    }
    if let Some((title, text)) = log
        && !text.is_empty()
    {
        s.push_str(&format!("  # {}:\n", title));
        s.push_str(&indent(&text, "  #   | "));
        s.push('\n');
    }
    println!("{}", s.trim_end());
}
