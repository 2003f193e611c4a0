//! Running one test block, one step per function, in the order they run:
//! the skip conditions, nginx.conf, the expectations and client options,
//! the server root, nginx, the requests and log checks of every
//! repetition, and the shutdown.

use crate::check::{self, At, Expect};
use crate::conf;
use crate::http;
use crate::nginx::{Nginx, Started};
use crate::perl::Block;
use crate::report::{self, Failure};
use crate::requests::{self, Exchange, Req};
use crate::sections::{BlockEval, IGNORED, KNOWN};
use crate::value::Value;
use crate::{FileCtx, Outcome, Runner, backends, skip, user_files};
use std::fs;
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// The client side of a block: its sections' options.
struct Client {
    timeout: f64,
    wait: Option<f64>,
    middle_delay: Option<f64>,
    shutdown: Option<Shutdown>,
}

/// The requests and how to read their responses.
struct Requests {
    list: Vec<Req>,
    pipelined: Option<usize>,
    /// Per-request expectations must be arrays.
    need_array: bool,
}

/// Read positions in error.log and access.log, across repetitions.
#[derive(Default)]
struct LogCursor {
    error: u64,
    access: u64,
    /// [alert]/[crit]/[emerg] lines printed as warnings so far
    warned: usize,
}

impl Runner {
    pub(crate) fn run_block(
        &mut self,
        fc: &FileCtx,
        b: &Block,
        prev_config: &mut Option<Vec<u8>>,
    ) -> Outcome {
        self.warn_unknown_sections(b);
        let mut notes = Vec::new();
        if b.sections.iter().any(|s| s.name.starts_with("stap")) {
            notes.push("stap checks skipped".to_string());
        }
        if b.has("init") {
            notes.push("--- init (Perl) ignored".to_string());
        }
        // a fresh server root first, so that a block failing before nginx
        // starts shows no log of the previous block
        if let Err(err) = self.root.reset() {
            let msg = format!("cannot reset {}: {}", self.root.root.display(), err);
            return Outcome::Fail(vec![Failure::new("server root", msg)], notes, None);
        }
        if let Some(err) = &b.error {
            return Outcome::Fail(vec![Failure::new("perl", err.clone())], notes, None);
        }
        let mut ev = BlockEval::new(b, &fc.env);
        let v = self.version;
        match skip::reason(&ev, [v.0, v.1, v.2], self.openssl.as_deref()) {
            Ok(Some(r)) => return Outcome::Skip(r),
            Ok(None) => {}
            Err(e) => return Outcome::Fail(vec![Failure::new("skip condition", e)], notes, None),
        }
        let r = self.run_steps(fc, &mut ev, prev_config, &mut notes);
        let mut failures = ev.failures;
        if let Err(f) = r {
            failures.push(f);
        }
        if failures.is_empty() {
            Outcome::Pass(notes)
        } else {
            Outcome::Fail(failures, notes, ev.log_end)
        }
    }

    fn warn_unknown_sections(&mut self, b: &Block) {
        for s in &b.sections {
            let n = s.name.as_str();
            if !(KNOWN.contains(&n) || IGNORED.contains(&n) || n.starts_with("stap"))
                && self.warned.insert(n.to_string())
            {
                println!(
                    "# WARNING: --- {} sections are not supported by this runner and are ignored",
                    n
                );
            }
        }
    }

    fn run_steps(
        &mut self,
        fc: &FileCtx,
        ev: &mut BlockEval,
        prev_config: &mut Option<Vec<u8>>,
        notes: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let conf = self.nginx_conf(fc, ev, prev_config)?;
        let e = expectations(fc, ev);
        let client = self.client_options(fc, ev, e.abort)?;
        self.prepare_server_root(ev, &conf)?;
        if ev.block.has("must_die") {
            return self.must_die(fc, ev, &e, notes);
        }
        let requests = build_requests(fc, ev)?;
        let mut ngx = self.start_nginx(fc)?;
        let mut logs = LogCursor::default();
        let repeat = fc.preamble.repeat_each;
        for rep in 0..repeat {
            let before = ev.failures.len();
            self.send_requests(fc, ev, &e, &client, &requests, rep, notes)?;
            self.check_logs(fc, ev, &e, &mut logs, rep);
            if let Some(status) = ngx.exited() {
                ev.failures.push(Failure::new(
                    format!("nginx (repetition {})", rep + 1),
                    format!("the nginx master process exited unexpectedly ({})", status),
                ));
                break;
            }
            if ev.failures.len() > before && rep + 1 < repeat {
                notes.push(format!("repetitions after {} not run", rep + 1));
                break;
            }
        }
        self.stop_nginx(&mut ngx, ev, &e, &mut logs, notes);
        Ok(())
    }

    /// nginx.conf from the config sections; a block without --- config
    /// reuses the previous block's, as Test::Nginx does.
    fn nginx_conf(
        &self,
        fc: &FileCtx,
        ev: &BlockEval,
        prev_config: &mut Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Failure> {
        let pre = &fc.preamble;
        let config = match ev.conf("config")? {
            Some(c) => {
                *prev_config = Some(c.clone());
                c
            }
            None => prev_config.clone().unwrap_or_default(),
        };
        let mut server_config = ev.expand_conf(pre.config_preamble.as_bytes(), "config_preamble")?;
        server_config.push(b'\n');
        server_config.extend_from_slice(&config);
        let trimmed = |name: &str| {
            ev.text(name)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let server_name = trimmed("server_name")
            .or(pre.server_name.clone())
            .unwrap_or_else(|| "localhost".into());
        let log_level = trimmed("log_level").unwrap_or(pre.log_level.clone());
        Ok(conf::render(
            &self.root,
            &conf::Conf {
                modules: &self.modules,
                main_config: &ev.conf("main_config")?.unwrap_or_default(),
                post_main_config: &ev.conf("post_main_config")?.unwrap_or_default(),
                http_config: &ev.conf("http_config")?.unwrap_or_default(),
                server_config: &server_config,
                workers: pre.workers,
                master: pre.master,
                log_level: &log_level,
                worker_connections: pre.worker_connections,
                port: fc.port,
                server_name: &server_name,
                root_location: !pre.no_root_location,
                env: &pre.env_to_nginx,
            },
        ))
    }

    fn client_options(&self, fc: &FileCtx, ev: &BlockEval, abort: bool) -> Result<Client, Failure> {
        let timeout = ev
            .time("timeout")?
            .unwrap_or(fc.preamble.timeout.unwrap_or(self.default_timeout));
        // Under valgrind everything is 10-50 times slower: a response that
        // must come gets much longer; a client that must give up (--- abort)
        // waits as long as Test::Nginx lets it (0.3 s more).
        let timeout = match (&self.valgrind, abort) {
            (None, _) => timeout,
            (Some(_), false) => timeout * 4.0 + 10.0,
            (Some(_), true) => timeout + 0.3,
        };
        Ok(Client {
            timeout,
            wait: ev.time("wait")?,
            middle_delay: ev.time("raw_request_middle_delay")?,
            shutdown: ev.text("shutdown").map(|t| match t.trim() {
                "0" => Shutdown::Read,
                "2" => Shutdown::Both,
                _ => Shutdown::Write,
            }),
        })
    }

    /// The user files and nginx.conf in the (fresh) server root.
    fn prepare_server_root(&self, ev: &BlockEval, conf: &[u8]) -> Result<(), Failure> {
        let root = &self.root;
        if let Some(v) = ev.get("user_files") {
            user_files::write(&root.html(), &v)?;
        }
        fs::write(root.conf_file(), conf)
            .map_err(|err| Failure::new("nginx.conf", format!("cannot write: {}", err)))
    }

    fn start_timeout(&self) -> Duration {
        Duration::from_secs(if self.valgrind.is_some() { 120 } else { 5 })
    }

    fn start_nginx(&self, fc: &FileCtx) -> Result<Nginx, Failure> {
        match Nginx::start(
            &self.nginx_cmd(),
            &self.root,
            fc.port,
            &fc.env,
            self.start_timeout(),
        ) {
            Ok(Started::Running(n)) => Ok(n),
            Ok(Started::Exited(status, output)) => Err(Failure::new(
                "nginx start",
                format!(
                    "nginx exited right away ({}); its output:\n{}",
                    status,
                    report::tail(&output, 30)
                ),
            )),
            Err(msg) => Err(Failure::new("nginx start", msg)),
        }
    }

    /// One repetition: the backends, each request with the checks of its
    /// responses, --- wait, and the backends' queries.
    #[allow(clippy::too_many_arguments)]
    fn send_requests(
        &self,
        fc: &FileCtx,
        ev: &mut BlockEval,
        e: &Expect,
        client: &Client,
        requests: &Requests,
        rep: usize,
        notes: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let addr = SocketAddr::from(([127, 0, 0, 1], fc.port));
        let mut mocks = backends::start(ev)?;
        for (k, req) in requests.list.iter().enumerate() {
            if self.verbose {
                for p in &req.packets {
                    println!("# >>> {}", report::clip(&p.data, 4000));
                }
            }
            let ex = http::exchange(
                addr,
                &req.packets,
                Duration::from_secs_f64(client.timeout),
                client.middle_delay,
                client.shutdown,
            );
            if self.verbose {
                println!("# <<< {}", report::clip(&ex.data, 4000));
            }
            let at = At {
                rep,
                req: k,
                need_array: requests.need_array,
            };
            if let Some(err) = &ex.error {
                ev.failures.push(Failure::new(at.tag("request"), err.clone()));
            }
            if ex.timed_out && !e.abort {
                ev.failures.push(Failure::new(
                    at.tag("timeout"),
                    format!(
                        "client socket timed out after {}s waiting for the response (got {} bytes so far: {})",
                        client.timeout,
                        ex.data.len(),
                        report::clip(&ex.data, 300)
                    ),
                ));
            }
            if !e.ignore_response {
                let x = Exchange {
                    head: req.head,
                    http09: ev.block.has("http09"),
                    pipelined: requests.pipelined,
                    at,
                };
                requests::check_responses(e, &ex.data, &x, &mut ev.failures, notes);
            }
            if let Some(w) = client.wait.filter(|_| k + 1 < requests.list.len()) {
                std::thread::sleep(Duration::from_secs_f64(w));
            }
        }
        if let Some(w) = client.wait {
            std::thread::sleep(Duration::from_secs_f64(w));
        }
        backends::finish(ev, &mut mocks, rep);
        Ok(())
    }

    /// error.log and access.log lines of one repetition: the checks, and
    /// worker crashes and alerts nobody asked about.
    fn check_logs(&self, fc: &FileCtx, ev: &mut BlockEval, e: &Expect, logs: &mut LogCursor, rep: usize) {
        let root = &self.root;
        if e.checks_error_log() || e.shutdown_error_log.is_some() {
            let (max, quiet) = match self.valgrind {
                // a process under valgrind logs much later and slower
                Some(_) => (
                    self.settle.max(Duration::from_secs(2)),
                    Duration::from_millis(300),
                ),
                None => (self.settle, Duration::from_millis(6)),
            };
            settle(&root.error_log(), max, quiet);
        }
        if fc.preamble.check_accum_error_log {
            logs.error = 0;
            logs.access = 0;
        }
        let log = read_from(&root.error_log(), &mut logs.error);
        let lines = lines_of(&log);
        ev.failures.extend(check::check_error_log(e, &lines, rep, false));
        if e.access_log.is_some() || e.no_access_log.is_some() {
            let acc = read_from(&root.access_log(), &mut logs.access);
            ev.failures
                .extend(check::check_access_log(e, &lines_of(&acc), rep));
        }
        let expected = |what: &str| [&e.error_log, &e.no_error_log].iter().any(|v| mentions(v, what));
        for l in &lines {
            let s = String::from_utf8_lossy(l);
            if s.contains("exited on signal") && !expected("exited on signal") {
                ev.failures.push(Failure::new(
                    format!("nginx crash (repetition {})", rep + 1),
                    s.trim_end().to_string(),
                ));
            } else if logs.warned < 5
                && [("[alert]", "[alert"), ("[crit]", "[crit"), ("[emerg]", "[emerg")]
                    .iter()
                    .any(|(level, mention)| s.contains(level) && !expected(mention))
            {
                logs.warned += 1;
                println!(
                    "# WARNING: {} {} - {}",
                    fc.display,
                    ev.block.title(),
                    s.trim_end()
                );
            }
        }
    }

    /// Stops nginx (gracefully if it will), then valgrind's findings and
    /// the shutdown error.log checks.
    fn stop_nginx(
        &self,
        ngx: &mut Nginx,
        ev: &mut BlockEval,
        e: &Expect,
        logs: &mut LogCursor,
        notes: &mut Vec<String>,
    ) {
        let root = &self.root;
        ev.log_end = fs::metadata(root.error_log()).ok().map(|m| m.len());
        let grace = Duration::from_secs(if self.valgrind.is_some() { 120 } else { 10 });
        if !ngx.stop(grace) {
            notes.push(format!(
                "nginx did not exit within {}s of SIGQUIT and was killed",
                grace.as_secs()
            ));
        }
        self.valgrind_check(ev, notes);
        if e.shutdown_error_log.is_some() || e.no_shutdown_error_log.is_some() {
            let log = read_from(&root.error_log(), &mut logs.error);
            ev.failures
                .extend(check::check_error_log(e, &lines_of(&log), 0, true));
        }
    }

    /// `--- must_die [CODE]`: nginx must fail to start (with that exit
    /// code); its output and error.log are checked as the block's log.
    fn must_die(
        &self,
        fc: &FileCtx,
        ev: &mut BlockEval,
        e: &Expect,
        notes: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let want = ev
            .text("must_die")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let timeout = self.start_timeout();
        let r = match Nginx::start(&self.nginx_cmd(), &self.root, fc.port, &fc.env, timeout) {
            Ok(Started::Exited(status, output)) => {
                if let Some(w) = want {
                    let code = status.code().map(|c| c.to_string()).unwrap_or_default();
                    if w != code {
                        ev.failures.push(Failure::new(
                            "must_die",
                            format!("nginx died with exit code {} but {} was expected", code, w),
                        ));
                    }
                } else if status.success() {
                    ev.failures
                        .push(Failure::new("must_die", "nginx exited with status 0"));
                }
                let mut all = output;
                all.extend(fs::read(self.root.error_log()).unwrap_or_default());
                ev.failures
                    .extend(check::check_error_log(e, &lines_of(&all), 0, false));
                Ok(())
            }
            Ok(Started::Running(mut n)) => {
                n.stop(timeout);
                Err(Failure::new(
                    "must_die",
                    "nginx started and listened instead of dying",
                ))
            }
            Err(msg) => Err(Failure::new("must_die", msg)),
        };
        self.valgrind_check(ev, notes);
        r
    }

    /// The nginx binary, or valgrind running it.
    fn nginx_cmd(&self) -> Vec<String> {
        match &self.valgrind {
            None => vec![self.binary.display().to_string()],
            Some(vg) => {
                let (prog, args) = vg.wrap(&self.binary, &self.root.logs());
                std::iter::once(prog.display().to_string()).chain(args).collect()
            }
        }
    }

    /// In valgrind mode, once nginx has exited: errors in our module fail
    /// the block, the others become a note.
    fn valgrind_check(&self, ev: &mut BlockEval, notes: &mut Vec<String>) {
        let Some(vg) = &self.valgrind else { return };
        let errors = vg.collect(&self.root.logs());
        let (ours, other): (Vec<_>, Vec<_>) = errors.iter().partition(|e| vg.ours(e));
        for e in &ours {
            ev.failures.push(Failure::new("valgrind", e.render(25)));
        }
        if !other.is_empty() {
            notes.push(format!(
                "valgrind: {} error(s) outside our module, first: {}",
                other.len(),
                other[0].render(12).trim_end()
            ));
        }
        self.vg_ours.set(self.vg_ours.get() + ours.len());
        self.vg_other.set(self.vg_other.get() + other.len());
    }
}

/// The expectation sections, with `$TEST_NGINX_*` expanded.
fn expectations(fc: &FileCtx, ev: &BlockEval) -> Expect {
    let get = |name: &str| ev.get(name);
    Expect {
        error_code: get("error_code"),
        error_code_like: get("error_code_like"),
        response_body: get("response_body"),
        response_body_like: get("response_body_like"),
        response_body_unlike: get("response_body_unlike"),
        response_body_filters: get("response_body_filters"),
        response_headers: get("response_headers"),
        response_headers_like: get("response_headers_like"),
        raw_response_headers_like: get("raw_response_headers_like"),
        raw_response_headers_unlike: get("raw_response_headers_unlike"),
        error_log: get("error_log"),
        no_error_log: get("no_error_log"),
        grep_error_log: get("grep_error_log"),
        grep_error_log_out: get("grep_error_log_out"),
        access_log: get("access_log"),
        no_access_log: get("no_access_log"),
        shutdown_error_log: get("shutdown_error_log"),
        no_shutdown_error_log: get("no_shutdown_error_log"),
        abort: ev.block.has("abort"),
        ignore_response: ev.block.has("ignore_response"),
        server_port: fc.port,
    }
}

/// The requests, built before nginx starts (their errors need no server).
/// Like Test::Nginx, the Host header ignores a block's --- server_name.
fn build_requests(fc: &FileCtx, ev: &BlockEval) -> Result<Requests, Failure> {
    let host = fc.preamble.server_name.as_deref().unwrap_or("localhost");
    let (list, pipelined) = requests::build(ev, host)?;
    Ok(Requests {
        need_array: pipelined.is_some() || list.len() > 1,
        list,
        pipelined,
    })
}

/// Whether an error_log-style value mentions `what` (then a matching log
/// line is expected, not a surprise).
fn mentions(v: &Option<Value>, what: &str) -> bool {
    fn flat(v: &Value) -> Vec<u8> {
        match v {
            Value::Array(items) => items.iter().flat_map(flat).collect(),
            Value::Regex(p) => p.src.clone(),
            v => v.to_bytes(),
        }
    }
    v.as_ref()
        .is_some_and(|v| String::from_utf8_lossy(&flat(v)).contains(what))
}

fn lines_of(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

/// Waits until `log` stops growing (quiet for a few ms), at most `max`.
/// Test::Nginx sleeps a fixed 45 ms here; most of the time the log is
/// complete when the response is, so waiting for quiet is much faster.
fn settle(log: &Path, max: Duration, quiet: Duration) {
    let start = Instant::now();
    let size = || fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let mut last = size();
    let mut since = Instant::now();
    while start.elapsed() < max {
        std::thread::sleep(Duration::from_millis(2));
        let now = size();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

/// Reads a file from `pos`, returning the new bytes and advancing `pos`.
fn read_from(path: &Path, pos: &mut u64) -> Vec<u8> {
    let data = fs::read(path).unwrap_or_default();
    let start = (*pos as usize).min(data.len());
    *pos = data.len() as u64;
    data[start..].to_vec()
}
