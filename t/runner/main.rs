//! Runs Test::Nginx-format `.t` files against the real nginx with our
//! module loaded.  Each file's Perl (the preamble, the blocks and their
//! `eval` sections) is evaluated by real Perl with Test::Base
//! (t/runner/blocks.pl, see perl.rs); this side starts nginx, sends the
//! requests and checks, matching Perl patterns with PCRE2.
//!
//! Usage:
//!   cargo test --test t                        every t/*.t, sorted
//!   cargo test --test t -- 001-basic           files by name, stem, path or
//!                                              (if nothing matches exactly)
//!                                              substring; several allowed
//!   TEST_BLOCK=3 cargo test --test t -- 001-basic
//!                                              one block: "TEST 3", or the
//!                                              3rd block, or a title substring
//!
//! Environment:
//!   TEST_NGINX_LUA_MODULE   module to load (default
//!                           target/release/libngx_http_lua_module.so;
//!                           "none" loads nothing, for runner self-tests)
//!   TEST_NGINX_LOAD_MODULES extra modules to load, space separated
//!   TEST_NGINX_BINARY       nginx binary (default /usr/sbin/nginx)
//!   TEST_NGINX_T_DIR        directory of .t files (default t)
//!   TEST_NGINX_SERVROOT     server root (default t/servroot)
//!   TEST_NGINX_SERVER_PORT  fixed port instead of a free one per file
//!   TEST_NGINX_REPEAT_EACH  overrides repeat_each() of every file
//!   TEST_NGINX_TIMEOUT      default client timeout in seconds (3)
//!   TEST_NGINX_SLEEP        before reading error.log the runner waits until
//!                           it has been quiet for 6 ms, at most 3 x this
//!                           (default 0.015 s, as in Test::Nginx), so that
//!                           messages logged just after the response count
//!   TEST_NGINX_VERBOSE=1    print requests and raw responses
//!   TEST_NGINX_USE_VALGRIND nginx runs under valgrind (a number: memcheck
//!                           with Test::Nginx's options and
//!                           t/valgrind.suppress; else the options to use);
//!                           errors in our module fail the block
//!
//! Each block gets a fresh nginx (conf, html and logs are recreated); its
//! requests run repeat_each times on that instance.  Blocks run one at a
//! time, in file order.  The last line of output is "N passed, M failed"
//! (plus ", K skipped"); the exit status is non-zero on any failure.

mod backends;
mod block;
mod check;
mod conf;
mod http;
mod mock;
mod nginx;
mod pattern;
mod perl;
mod report;
mod requests;
mod sections;
mod skip;
mod user_files;
mod valgrind;
mod value;

use nginx::ServRoot;
use perl::{Block, Preamble};
use report::Failure;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use std::{env, fs};

enum Outcome {
    Pass(Vec<String>),
    /// Failures, notes, and the error.log size when nginx was told to stop.
    Fail(Vec<Failure>, Vec<String>, Option<u64>),
    Skip(String),
}

struct Runner {
    binary: PathBuf,
    modules: Vec<PathBuf>,
    root: ServRoot,
    block_filter: Option<String>,
    verbose: bool,
    settle: Duration,
    default_timeout: f64,
    repeat_override: Option<usize>,
    version: (u32, u32, u32),
    openssl: Option<String>,
    warned: BTreeSet<String>,
    /// Set in valgrind mode.
    valgrind: Option<valgrind::Valgrind>,
    /// Valgrind errors in our module, and elsewhere.
    vg_ours: std::cell::Cell<usize>,
    vg_other: std::cell::Cell<usize>,
    passed: usize,
    failed: usize,
    skipped: usize,
}

/// Per-file state shared by its blocks.
struct FileCtx {
    display: String,
    preamble: Preamble,
    /// %ENV after the file's Perl ran: nginx's environment and the values
    /// of `$TEST_NGINX_*`.
    env: BTreeMap<String, String>,
    port: u16,
}

fn env_nonempty(k: &str) -> Option<String> {
    env::var(k).ok().filter(|v| !v.is_empty())
}

fn main() {
    nginx::install_signal_handlers();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = env::args().skip(1).filter(|a| !a.starts_with('-')).collect();

    let t_dir = match env_nonempty("TEST_NGINX_T_DIR") {
        Some(d) => {
            let p = PathBuf::from(&d);
            if p.is_absolute() || p.exists() {
                p
            } else {
                manifest.join(p)
            }
        }
        None => manifest.join("t"),
    };
    let files = match select_files(&t_dir, &args) {
        Ok(f) => f,
        Err(e) => {
            println!("error: {}", e);
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };

    if files.is_empty() {
        println!("# no .t files in {}", t_dir.display());
        println!("0 passed, 0 failed");
        return;
    }

    let binary = PathBuf::from(env_nonempty("TEST_NGINX_BINARY").unwrap_or_else(|| "/usr/sbin/nginx".into()));
    let mut modules = Vec::new();
    let module = env_nonempty("TEST_NGINX_LUA_MODULE").unwrap_or_else(|| {
        manifest
            .join("target/release/libngx_http_lua_module.so")
            .display()
            .to_string()
    });
    if module != "none" {
        let p = PathBuf::from(&module);
        if !p.exists() {
            println!(
                "error: the nginx module {} does not exist; build it first with scripts/build.sh \
                 (or point TEST_NGINX_LUA_MODULE at it, or set it to \"none\")",
                p.display()
            );
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
        modules.push(p);
    }
    if let Some(extra) = env_nonempty("TEST_NGINX_LOAD_MODULES") {
        modules.extend(extra.split_whitespace().map(PathBuf::from));
    }
    let version = match nginx::nginx_version(&binary) {
        Ok(v) => v,
        Err(e) => {
            println!("error: {}", e);
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let root_path = env_nonempty("TEST_NGINX_SERVROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("t/servroot"));
    let root = match ServRoot::prepare(root_path.clone()) {
        Ok(r) => r,
        Err(e) => {
            println!("error: cannot prepare server root {}: {}", root_path.display(), e);
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let sleep: f64 = env_nonempty("TEST_NGINX_SLEEP")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.007);
    let valgrind = env_nonempty("TEST_NGINX_USE_VALGRIND").map(|v| {
        let lua = modules.first().filter(|_| module != "none").map(PathBuf::as_path);
        valgrind::Valgrind::from_env(&v, lua, &manifest.join("t/valgrind.suppress"))
    });
    let mut r = Runner {
        openssl: nginx::openssl_version(&binary),
        binary,
        modules,
        root,
        block_filter: env_nonempty("TEST_BLOCK"),
        verbose: env_nonempty("TEST_NGINX_VERBOSE").is_some_and(|v| v != "0"),
        settle: Duration::from_secs_f64(sleep * 3.0),
        default_timeout: env_nonempty("TEST_NGINX_TIMEOUT")
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
        repeat_override: env_nonempty("TEST_NGINX_REPEAT_EACH").and_then(|s| s.parse().ok()),
        version,
        warned: BTreeSet::new(),
        valgrind,
        vg_ours: Default::default(),
        vg_other: Default::default(),
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    for f in &files {
        let display = f
            .strip_prefix(&manifest)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| f.clone())
            .display()
            .to_string();
        r.run_file(f, display);
    }
    r.root.remove_lock();
    if r.valgrind.is_some() {
        println!(
            "# valgrind: {} error(s) in our module, {} elsewhere",
            r.vg_ours.get(),
            r.vg_other.get()
        );
    }
    let mut summary = format!("{} passed, {} failed", r.passed, r.failed);
    if r.skipped > 0 {
        summary.push_str(&format!(", {} skipped", r.skipped));
    }
    println!("{}", summary);
    std::process::exit(if r.failed > 0 { 1 } else { 0 });
}

/// The .t files to run: all of `dir` (sorted), or those the arguments name.
fn select_files(dir: &Path, args: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut all: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "t"))
            .collect(),
        Err(e) if args.is_empty() => return Err(format!("cannot read {}: {}", dir.display(), e)),
        Err(_) => Vec::new(),
    };
    all.sort();
    if args.is_empty() {
        return Ok(all);
    }
    let mut out = Vec::new();
    for a in args {
        let direct = PathBuf::from(a);
        if direct.is_file() {
            out.push(direct);
            continue;
        }
        let exact: Vec<&PathBuf> = all
            .iter()
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let stem = p
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name == *a || stem == *a || p.ends_with(a)
            })
            .collect();
        let hits: Vec<&PathBuf> = if exact.is_empty() {
            all.iter()
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().contains(a.as_str()))
                })
                .collect()
        } else {
            exact
        };
        if hits.is_empty() {
            return Err(format!("no .t file in {} matches \"{}\"", dir.display(), a));
        }
        out.extend(hits.into_iter().cloned());
    }
    out.dedup();
    Ok(out)
}

fn flush() {
    let _ = std::io::stdout().flush();
}

impl Runner {
    fn run_file(&mut self, path: &Path, display: String) {
        let started = Instant::now();
        let ports = match nginx::free_ports(6) {
            Ok(p) => p,
            Err(e) => {
                println!("not ok - {}: cannot find free ports: {}", display, e);
                self.failed += 1;
                return;
            }
        };
        let port = env_nonempty("TEST_NGINX_SERVER_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(ports[0]);
        let (a, b, c) = self.version;
        let env = self.file_env(port, &ports[1..]);
        let tf = match perl::load(path, &env, &format!("{}.{}.{}", a, b, c), &self.binary) {
            Ok(t) => t,
            Err(e) => {
                println!("not ok - {}: cannot evaluate its Perl: {}", display, e);
                self.failed += 1;
                return;
            }
        };
        for l in tf.output.lines() {
            println!("# perl: {}: {}", display, l);
        }
        for w in &tf.warnings {
            println!("# WARNING: {}: {}", display, w);
        }
        let mut fc = FileCtx {
            display,
            preamble: tf.preamble,
            env: tf.env,
            port,
        };
        if let Some(n) = self.repeat_override {
            fc.preamble.repeat_each = n.max(1);
        }
        if let Some(reason) = &tf.skip_all {
            println!("skip - {} # {}", fc.display, reason);
            self.skipped += tf.total_blocks.max(1);
            return;
        }
        // blocks.pl chose them as Test::Base does (ONLY, LAST) and flagged
        // the --- SKIP ones; they come in file order
        let plan: Vec<&Block> = tf.blocks.iter().filter(|b| self.block_selected(b)).collect();
        let run = plan.iter().filter(|b| !b.skip).count();
        let mut prev_config: Option<Vec<u8>> = None;
        for &b in &plan {
            if b.skip {
                println!("skip - {} {} # SKIP", fc.display, b.title());
                self.skipped += 1;
                continue;
            }
            let t0 = Instant::now();
            let outcome = self.run_block(&fc, b, &mut prev_config);
            let ms = t0.elapsed().as_millis();
            match outcome {
                Outcome::Pass(notes) => {
                    self.passed += 1;
                    let mut line = format!("ok - {} {}", fc.display, b.title());
                    if !notes.is_empty() {
                        line.push_str(&format!(" # {}", notes.join("; ")));
                    }
                    println!("{}", line);
                }
                Outcome::Skip(reason) => {
                    self.skipped += 1;
                    println!("skip - {} {} # {}", fc.display, b.title(), reason);
                }
                Outcome::Fail(failures, notes, log_end) => {
                    self.failed += 1;
                    self.report_failure(&fc, b, &failures, notes, log_end, ms);
                }
            }
            flush();
        }
        println!(
            "# {}: {} block(s) in {:.2}s",
            fc.display,
            run,
            started.elapsed().as_secs_f64()
        );
        flush();
    }

    /// The environment a file's Perl starts with: ours, and the
    /// `TEST_NGINX_*` values Test::Nginx provides.
    fn file_env(&self, port: u16, rand_ports: &[u16]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = env::vars().collect();
        env.insert("TEST_NGINX_SERVER_PORT".into(), port.to_string());
        env.insert(
            "TEST_NGINX_HTML_DIR".into(),
            self.root.html().display().to_string(),
        );
        env.insert(
            "TEST_NGINX_SERVER_ROOT".into(),
            self.root.root.display().to_string(),
        );
        for (i, p) in rand_ports.iter().enumerate() {
            env.insert(format!("TEST_NGINX_RAND_PORT_{}", i + 1), p.to_string());
        }
        env
    }

    /// A failed block's report: the failures, notes, nginx's stderr and
    /// the end of error.log (all of it is kept in the failed/ directory).
    fn report_failure(
        &self,
        fc: &FileCtx,
        b: &Block,
        failures: &[Failure],
        mut notes: Vec<String>,
        log_end: Option<u64>,
        ms: u128,
    ) {
        let log = fs::read(self.root.error_log()).unwrap_or_default();
        let before_stop = &log[..log_end.map(|e| e as usize).unwrap_or(log.len()).min(log.len())];
        if let Ok(se) = fs::read(self.root.stderr_log()) {
            let se = String::from_utf8_lossy(&se).trim().to_string();
            if !se.is_empty() && !failures.iter().any(|f| f.detail.contains(&se)) {
                notes.push(format!("nginx stderr:\n{}", report::tail(se.as_bytes(), 20)));
            }
        }
        let stem = Path::new(&fc.display)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let saved = self
            .root
            .failed_dir()
            .join(format!("{}.{}.error.log", stem, b.index));
        if !log.is_empty()
            && fs::create_dir_all(self.root.failed_dir()).is_ok()
            && fs::write(&saved, &log).is_ok()
        {
            notes.push(format!("full error.log: {}", saved.display()));
        }
        notes.push(format!("took {} ms", ms));
        report::print_failure(
            &fc.display,
            b.line,
            b.title(),
            failures,
            &notes,
            Some((
                "error.log before nginx was stopped (last 40 lines above debug level)".into(),
                report::log_tail(before_stop, 40),
            )),
        );
    }

    fn block_selected(&self, b: &Block) -> bool {
        let f = match &self.block_filter {
            None => return true,
            Some(f) => f,
        };
        if let Ok(n) = f.trim().parse::<usize>() {
            let mut words = b.name.split(|c: char| c.is_whitespace() || c == ':');
            let numbered =
                words.next() == Some("TEST") && words.next().and_then(|w| w.parse::<usize>().ok()) == Some(n);
            return numbered || (!b.name.starts_with("TEST ") && b.index == n);
        }
        b.name.contains(f.as_str())
    }
}
