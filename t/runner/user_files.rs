//! `--- user_files`: files written under the server's html/ directory (or
//! at an absolute path) before nginx starts, optionally with a
//! modification time.

use crate::report::Failure;
use crate::value::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (name, content, `touch -t` time)
type UserFile = (String, Vec<u8>, Option<String>);

/// Writes the files of a user_files value: text with `>>> name [mtime]`
/// entries, or (from eval) `[[name, content, mtime?], ...]`.
pub fn write(html: &Path, v: &Value) -> Result<(), Failure> {
    let fail = |m: String| Failure::new("user_files", m);
    let files = match v {
        Value::Array(items) => items
            .iter()
            .map(|it| match it {
                Value::Array(f) if !f.is_empty() => Ok((
                    f[0].to_string_lossy(),
                    f.get(1).map(Value::to_bytes).unwrap_or_default(),
                    f.get(2).map(Value::to_string_lossy),
                )),
                _ => Err(fail("eval user_files must be [[name, body, mtime?], ...]".into())),
            })
            .collect::<Result<Vec<UserFile>, _>>()?,
        v => parse(&v.to_bytes()),
    };
    for (name, body, date) in files {
        let path = if name.starts_with('/') {
            PathBuf::from(&name)
        } else {
            html.join(&name)
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create {}: {}", dir.display(), e)))?;
        }
        fs::write(&path, &body).map_err(|e| fail(format!("cannot write {}: {}", path.display(), e)))?;
        if let Some(d) = date {
            let t = touch_time(d.trim()).ok_or_else(|| fail(format!("bad file time \"{}\"", d)))?;
            let f = fs::File::options()
                .write(true)
                .open(&path)
                .map_err(|e| fail(e.to_string()))?;
            f.set_modified(t).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

/// Parses the `>>> name [mtime]` entries of a user_files section.
pub fn parse(text: &[u8]) -> Vec<UserFile> {
    let mut files: Vec<UserFile> = Vec::new();
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

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `touch -t` format, CCYYMMDDhhmm[.ss], in GMT.
pub fn touch_time(s: &str) -> Option<SystemTime> {
    let (main, secs) = s.split_once('.').unwrap_or((s, "0"));
    if main.len() != 12 || !main.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| main[a..b].parse::<i64>().ok();
    let days = days_from_civil(n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let t = days * 86400 + n(8, 10)? * 3600 + n(10, 12)? * 60 + secs.parse::<i64>().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
}
