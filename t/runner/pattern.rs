//! Perl patterns (`qr//` values and the text of `*_like` sections) matched
//! with PCRE2 on bytes, as Perl matches a byte string.

use pcre2::bytes::{Regex as Pcre2, RegexBuilder};

pub struct Regex {
    re: Pcre2,
    /// The Perl source, for reports.
    shown: String,
}

impl Regex {
    /// Compiles Perl pattern source `src` with Perl's flags (`msix`; the
    /// character-set flags `adlu` and `p`, `n` make no difference to
    /// whether bytes match).
    pub fn new(src: &[u8], flags: &str) -> Result<Regex, String> {
        let mut b = RegexBuilder::new();
        b.jit_if_available(true);
        for f in flags.chars() {
            match f {
                'i' => b.caseless(true),
                'm' => b.multi_line(true),
                's' => b.dotall(true),
                'x' => b.extended(true),
                'a' | 'd' | 'l' | 'u' | 'p' | 'n' => &mut b,
                other => {
                    return Err(format!(
                        "unsupported regex flag \"{}\" in /{}/",
                        other,
                        lossy(src)
                    ));
                }
            };
        }
        let re = b
            .build(&ascii_pattern(src))
            .map_err(|e| format!("bad regex /{}/{}: {}", lossy(src), flags, e))?;
        Ok(Regex {
            re,
            shown: lossy(src),
        })
    }

    pub fn is_match(&self, hay: &[u8]) -> Result<bool, String> {
        self.re
            .is_match(hay)
            .map_err(|e| format!("matching /{}/: {}", self.shown, e))
    }

    /// Start and end of the first match.
    pub fn find(&self, hay: &[u8]) -> Result<Option<(usize, usize)>, String> {
        self.re
            .find(hay)
            .map(|m| m.map(|m| (m.start(), m.end())))
            .map_err(|e| format!("matching /{}/: {}", self.shown, e))
    }

    pub fn as_str(&self) -> &str {
        &self.shown
    }
}

fn lossy(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// PCRE2 takes the pattern as text: bytes above 0x7f (Perl's byte-string
/// pattern may hold any) become `\x{NN}`, which matches that byte when not
/// in UTF mode; an escaped one (`\` + byte, as quotemeta leaves it) too.
fn ascii_pattern(src: &[u8]) -> String {
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if c == b'\\' && src.get(i + 1).is_some_and(|n| !n.is_ascii()) {
            i += 1;
            continue;
        }
        if c.is_ascii() {
            out.push(c as char);
            if c == b'\\' {
                // keep an escaped ASCII character with its backslash
                if let Some(&n) = src.get(i + 1) {
                    out.push(n as char);
                    i += 1;
                }
            }
        } else {
            out.push_str(&format!("\\x{{{:02x}}}", c));
        }
        i += 1;
    }
    out
}
