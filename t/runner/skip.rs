//! Test::Nginx's per-block skip conditions: `--- skip_nginx`,
//! `--- skip_nginx2`, `--- skip_openssl` (version comparisons) and
//! `--- skip_eval` (Perl, evaluated by blocks.pl).

use crate::sections::BlockEval;

/// Why the block is skipped, if it is.
pub fn reason(ev: &BlockEval, nginx: [u32; 3], openssl: Option<&str>) -> Result<Option<String>, String> {
    let text = |name: &str| ev.text(name).map(|t| t.trim().to_string());
    if let Some(s) = text("skip_nginx") {
        let (cond, reason) = condition(&s, "skip_nginx")?;
        let (op, v) = op_version(cond).ok_or(format!("invalid --- skip_nginx: {}", s))?;
        if version_cmp(&nginx, &op, &v) {
            return Ok(Some(or_default(reason, format!("nginx version {}", cond.trim()))));
        }
    }
    if let Some(s) = text("skip_nginx2") {
        let (cond, reason) = condition(&s, "skip_nginx2")?;
        let joiner = if cond.contains(" and ") { " and " } else { " or " };
        let bad = || format!("invalid --- skip_nginx2: {}", s);
        let (a, c) = cond.split_once(joiner).ok_or_else(bad)?;
        let (oa, va) = op_version(a).ok_or_else(bad)?;
        let (oc, vc) = op_version(c).ok_or_else(bad)?;
        let (x, y) = (version_cmp(&nginx, &oa, &va), version_cmp(&nginx, &oc, &vc));
        if if joiner == " and " { x && y } else { x || y } {
            return Ok(Some(or_default(reason, format!("nginx version {}", cond.trim()))));
        }
    }
    if let Some(s) = text("skip_openssl") {
        let (cond, reason) = condition(&s, "skip_openssl")?;
        let (op, v) = op_version(cond).ok_or(format!("invalid --- skip_openssl: {}", s))?;
        if let Some(have) = openssl
            && version_cmp(&parse_version(have), &op, &v)
        {
            return Ok(Some(or_default(
                reason,
                format!("OpenSSL version {}", cond.trim()),
            )));
        }
    }
    if ev.block.skip_eval == Some(true) {
        let code = text("skip_eval").unwrap_or_default();
        let code = code.split_once(':').map_or(code.as_str(), |(_, c)| c.trim());
        return Ok(Some(format!("skip_eval: {}", code)));
    }
    Ok(None)
}

/// "N: CONDITION[: REASON]" → (condition, reason)
fn condition<'a>(s: &'a str, section: &str) -> Result<(&'a str, &'a str), String> {
    let (_, rest) = s
        .split_once(':')
        .ok_or(format!("invalid --- {}: {}", section, s))?;
    Ok(rest.split_once(':').unwrap_or((rest, "")))
}

fn or_default(reason: &str, default: String) -> String {
    if reason.trim().is_empty() {
        default
    } else {
        reason.trim().to_string()
    }
}

/// Test::Nginx's "OP X.Y.Z" conditions.
fn version_cmp(have: &[u32], op: &str, want: &[u32]) -> bool {
    let o = have.cmp(want);
    match op {
        "<" => o.is_lt(),
        "<=" => o.is_le(),
        ">" => o.is_gt(),
        ">=" => o.is_ge(),
        _ => false,
    }
}

fn parse_version(s: &str) -> Vec<u32> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap_or(0))
        .collect()
}

/// "OP X.Y.Z" → (op, version)
fn op_version(s: &str) -> Option<(String, Vec<u32>)> {
    let s = s.trim();
    let op: String = s.chars().take_while(|c| matches!(c, '<' | '>' | '=')).collect();
    if op.is_empty() {
        return None;
    }
    Some((op.clone(), parse_version(s[op.len()..].trim())))
}
