//! Section values as t/runner/blocks.pl evaluated them in Perl: strings
//! (bytes), undef, array refs, `qr//` patterns, hash refs and code refs.

/// A Perl pattern object from `qr//`: its source and compile flags
/// (`re::regexp_pattern`).
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
    /// A code ref (a Perl sub), which the runner cannot call.
    Code,
    /// Another kind of reference, by its `ref` name.
    Other(String),
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
            Value::Code => b"CODE(0x1)".to_vec(),
            Value::Other(r) => format!("{}(0x1)", r).into_bytes(),
        }
    }

    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// Perl's numification of the leading number ("0.5s" is 0.5, "x" 0).
    pub fn to_num(&self) -> f64 {
        let b = self.to_bytes();
        let s = String::from_utf8_lossy(&b);
        let s = s.trim_start();
        let end = s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0)))
            .map_or(s.len(), |(i, _)| i);
        let mut t = &s[..end];
        while !t.is_empty() && t.parse::<f64>().is_err() {
            t = &t[..t.len() - 1];
        }
        t.parse().unwrap_or(0.0)
    }

    /// Decodes blocks.pl's JSON shape of a value: strings carry bytes as
    /// code points below 256; objects are tagged (`qr`, `hash`, `code`,
    /// `other`).
    pub fn from_json(j: &serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        Ok(match j {
            J::Null => Value::Undef,
            J::String(s) => Value::Str(bytes_of(s)?),
            J::Number(n) => Value::str(&n.to_string()),
            J::Bool(b) => Value::str(if *b { "1" } else { "" }),
            J::Array(items) => Value::Array(items.iter().map(Value::from_json).collect::<Result<_, _>>()?),
            J::Object(o) => {
                if let Some(src) = o.get("qr") {
                    let flags = o.get("flags").and_then(J::as_str).unwrap_or("");
                    let src = src.as_str().ok_or("qr source is not a string")?;
                    Value::Regex(Pattern {
                        src: bytes_of(src)?,
                        flags: flags.to_string(),
                    })
                } else if let Some(J::Object(h)) = o.get("hash") {
                    let mut pairs = Vec::new();
                    for (k, v) in h {
                        pairs.push((
                            String::from_utf8_lossy(&bytes_of(k)?).into_owned(),
                            Value::from_json(v)?,
                        ));
                    }
                    Value::Hash(pairs)
                } else if o.contains_key("code") {
                    Value::Code
                } else if let Some(r) = o.get("other").and_then(J::as_str) {
                    Value::Other(r.to_string())
                } else {
                    return Err(format!("unknown value shape {}", j));
                }
            }
        })
    }
}

/// The bytes of a Perl byte string sent as JSON text (one code point per
/// byte).
pub fn bytes_of(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .map_err(|_| format!("character U+{:04X} in a byte string", u32::from(c)))
        })
        .collect()
}
