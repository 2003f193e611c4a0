//! A `.t` file evaluated by real Perl: runs t/runner/blocks.pl (the
//! preamble, Test::Base's block parser and filters, the
//! add_block_preprocessor subs) and reads the blocks it prints as JSON.

use crate::value::{Value, bytes_of};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The helper script, next to this file.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/t/runner/blocks.pl");

/// How long a file's Perl may take (a preamble is a few statements).
const PERL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    /// After Test::Base's filters (`eval`, `chomp`, ...) and the
    /// preprocessors.
    pub value: Value,
}

#[derive(Clone, Debug)]
pub struct Block {
    /// 1-based position in the file.
    pub index: usize,
    /// The text after `===`, e.g. "TEST 1: sanity".
    pub name: String,
    pub line: usize,
    /// `--- SKIP`: reported, not run.
    pub skip: bool,
    /// Why the block cannot run (a failing eval, preprocessor or
    /// skip_eval).
    pub error: Option<String>,
    /// The result of `--- skip_eval`'s Perl code.
    pub skip_eval: Option<bool>,
    pub sections: Vec<Section>,
}

impl Block {
    pub fn section(&self, name: &str) -> Option<&Value> {
        self.sections.iter().find(|s| s.name == name).map(|s| &s.value)
    }

    pub fn has(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    pub fn title(&self) -> &str {
        self.name.trim_end()
    }
}

/// The preamble's settings, with the runner's defaults for what it did
/// not set.
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
}

impl Default for Preamble {
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
        }
    }
}

pub struct TestFile {
    pub preamble: Preamble,
    /// From `plan skip_all => REASON`.
    pub skip_all: Option<String>,
    /// %ENV after the file's Perl ran: nginx's environment and the values
    /// of `$TEST_NGINX_*` in sections.
    pub env: BTreeMap<String, String>,
    /// Blocks to run or report as skipped, in file order.
    pub blocks: Vec<Block>,
    /// Every block of the file.
    pub total_blocks: usize,
    pub warnings: Vec<String>,
    /// What the file's Perl printed (to stdout or stderr).
    pub output: String,
}

/// Evaluates `file` with `env` as the environment, nginx's version and
/// binary known to the Perl side as Test::Nginx knows them.
pub fn load(
    file: &Path,
    env: &BTreeMap<String, String>,
    nginx_version: &str,
    nginx_binary: &Path,
) -> Result<TestFile, String> {
    // -I. as `prove -I.` is used: a file's helper modules (`use t::Foo;`)
    // are found from the repository root, the current directory
    let mut child = Command::new("perl")
        .arg("-I.")
        .arg(SCRIPT)
        .arg("--nginx-version")
        .arg(nginx_version)
        .arg("--nginx-binary")
        .arg(nginx_binary)
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run perl: {}", e))?;
    // both pipes drain in their own threads so neither can fill and stall perl
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().ok_or("no stdout pipe")?));
    let err = drain(Box::new(child.stderr.take().ok_or("no stderr pipe")?));
    let deadline = Instant::now() + PERL_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "perl {} did not finish within {:?}",
                SCRIPT, PERL_TIMEOUT
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = out.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err.join().unwrap_or_default())
        .trim_end()
        .to_string();
    if !status.success() {
        let hint = if err.contains("Can't locate Test/Base.pm") {
            " (install Debian's libtest-base-perl; scripts/test.sh does)"
        } else {
            ""
        };
        return Err(if err.is_empty() {
            format!("perl {} failed ({})", SCRIPT, status)
        } else {
            format!("{}{}", err, hint)
        });
    }
    let mut tf = decode(&out)?;
    tf.output = err;
    Ok(tf)
}

/// A string (bytes as code points) or null.
fn opt_text(j: &J) -> Result<Option<String>, String> {
    match j {
        J::Null => Ok(None),
        j => Ok(Some(Value::from_json(j)?.to_string_lossy())),
    }
}

/// Reads blocks.pl's JSON (its shape is described at the top of the
/// script).
pub fn decode(json: &[u8]) -> Result<TestFile, String> {
    let doc: J = serde_json::from_slice(json).map_err(|e| format!("bad JSON from blocks.pl: {}", e))?;
    let text = |j: &J| -> Result<String, String> { Ok(Value::from_json(j)?.to_string_lossy()) };
    let mut env = BTreeMap::new();
    for (k, v) in doc["env"].as_object().ok_or("no env in blocks.pl's output")? {
        env.insert(String::from_utf8_lossy(&bytes_of(k)?).into_owned(), text(v)?);
    }
    let mut blocks = Vec::new();
    for b in doc["blocks"]
        .as_array()
        .ok_or("no blocks in blocks.pl's output")?
    {
        let mut sections = Vec::new();
        for s in b["sections"].as_array().map(Vec::as_slice).unwrap_or_default() {
            sections.push(Section {
                name: text(&s["name"])?,
                value: Value::from_json(&s["value"])?,
            });
        }
        blocks.push(Block {
            index: b["index"].as_u64().unwrap_or(0) as usize,
            name: text(&b["name"])?,
            line: b["line"].as_u64().unwrap_or(0) as usize,
            skip: b["skip"].as_bool().unwrap_or(false),
            error: opt_text(&b["error"])?,
            skip_eval: b["skip_eval"].as_bool(),
            sections,
        });
    }
    Ok(TestFile {
        preamble: preamble(&doc["preamble"], &text)?,
        skip_all: opt_text(&doc["skip_all"])?,
        env,
        blocks,
        total_blocks: doc["total_blocks"].as_u64().unwrap_or(0) as usize,
        warnings: doc["warnings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(text)
            .collect::<Result<_, _>>()?,
        output: String::new(),
    })
}

fn preamble(set: &J, text: &dyn Fn(&J) -> Result<String, String>) -> Result<Preamble, String> {
    let mut p = Preamble::default();
    let Some(set) = set.as_object() else {
        return Ok(p);
    };
    let num = |k: &str| -> Result<Option<f64>, String> {
        match set.get(k) {
            None => Ok(None),
            Some(v) => Ok(Some(Value::from_json(v)?.to_num())),
        }
    };
    if let Some(n) = num("repeat_each")? {
        p.repeat_each = (n as usize).max(1);
    }
    if let Some(n) = num("workers")? {
        p.workers = (n as usize).max(1);
    }
    if let Some(n) = num("worker_connections")? {
        p.worker_connections = n as usize;
    }
    p.timeout = num("timeout")?;
    if let Some(v) = set.get("log_level") {
        p.log_level = text(v)?;
    }
    if let Some(v) = set.get("master") {
        p.master = text(v)? == "on";
    }
    if let Some(v) = set.get("config_preamble") {
        p.config_preamble = text(v)?;
    }
    if let Some(v) = set.get("server_name") {
        p.server_name = Some(text(v)?);
    }
    if let Some(J::Array(names)) = set.get("env_to_nginx") {
        p.env_to_nginx = names.iter().map(text).collect::<Result<_, _>>()?;
    }
    p.no_long_string = set.contains_key("no_long_string");
    p.no_root_location = set.contains_key("no_root_location");
    p.check_accum_error_log = set.contains_key("check_accum_error_log");
    Ok(p)
}
