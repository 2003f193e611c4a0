//! Running one test block: its sections, nginx.conf and server root, the
//! nginx instance, the requests of every repetition, and the checks.

use crate::check::{self, At, Expect};
use crate::eval::{Interp, Value};
use crate::http::{self, Packet, Response};
use crate::nginx::{self, Nginx, Started};
use crate::parse::{self, Block, Section, SectionSrc};
use crate::report::{self, Failure};
use crate::{mock, regex, FileCtx, Outcome, Runner};
use std::collections::BTreeMap;
use std::fs;
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Sections with meaning for the runner.
const KNOWN: &[&str] = &[
    "config",
    "http_config",
    "main_config",
    "post_main_config",
    "server_name",
    "request",
    "request_eval",
    "raw_request",
    "pipelined_requests",
    "more_headers",
    "raw_request_middle_delay",
    "response_body",
    "response_body_eval",
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
const IGNORED: &[&str] = &["init", "curl", "no_check_leak", "todo", "timeout_expected"];

/// Test::Nginx's "N: OP X.Y.Z" conditions.
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
fn touch_time(s: &str) -> Option<std::time::SystemTime> {
    let (main, secs) = s.split_once('.').unwrap_or((s, "0"));
    if main.len() != 12 || !main.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| main[a..b].parse::<i64>().ok();
    let days = days_from_civil(n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let t = days * 86400 + n(8, 10)? * 3600 + n(10, 12)? * 60 + secs.parse::<i64>().ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
}

impl Runner {
    fn warn_section(&mut self, name: &str, what: &str) {
        if self.warned.insert(name.to_string()) {
            println!("# WARNING: --- {} sections are {}", name, what);
        }
    }

    /// Applies add_block_preprocessor defaults and reports unknown
    /// sections.
    fn effective_block(&mut self, fc: &FileCtx, b: &Block) -> Block {
        let mut block = b.clone();
        for d in &fc.preamble.defaults {
            if d.unless_defined.iter().all(|s| !b.has(s)) {
                block.sections.retain(|s| s.name != d.name);
                block.sections.push(Section {
                    name: d.name.clone(),
                    filters: Vec::new(),
                    src: SectionSrc::Expr(d.expr.clone()),
                });
            }
        }
        let names: Vec<String> = block.sections.iter().map(|s| s.name.clone()).collect();
        for n in names {
            if KNOWN.contains(&n.as_str()) || IGNORED.contains(&n.as_str()) {
                continue;
            }
            if n.starts_with("stap") {
                continue;
            }
            self.warn_section(&n, "not supported by this runner and are ignored");
        }
        block
    }

    fn skip_reason(&self, fc: &FileCtx, b: &Block) -> Result<Option<String>, String> {
        let text = |name: &str| -> Option<String> {
            match &b.section(name)?.src {
                SectionSrc::Text(t) => Some(String::from_utf8_lossy(t).trim().to_string()),
                SectionSrc::Expr(_) => None,
            }
        };
        let have = [self.version.0, self.version.1, self.version.2];
        if let Some(s) = text("skip_nginx") {
            let (_, rest) = s
                .split_once(':')
                .ok_or(format!("invalid --- skip_nginx: {}", s))?;
            let (cond, reason) = rest.split_once(':').unwrap_or((rest, ""));
            let (op, v) = op_version(cond).ok_or(format!("invalid --- skip_nginx: {}", s))?;
            if version_cmp(&have, &op, &v) {
                return Ok(Some(if reason.trim().is_empty() {
                    format!("nginx version {}", cond.trim())
                } else {
                    reason.trim().to_string()
                }));
            }
        }
        if let Some(s) = text("skip_nginx2") {
            let (_, rest) = s
                .split_once(':')
                .ok_or(format!("invalid --- skip_nginx2: {}", s))?;
            let (cond, reason) = rest.split_once(':').unwrap_or((rest, ""));
            let joiner = if cond.contains(" and ") { " and " } else { " or " };
            let (a, c) = cond
                .split_once(joiner)
                .ok_or(format!("invalid --- skip_nginx2: {}", s))?;
            let (oa, va) = op_version(a).ok_or(format!("invalid --- skip_nginx2: {}", s))?;
            let (oc, vc) = op_version(c).ok_or(format!("invalid --- skip_nginx2: {}", s))?;
            let (x, y) = (version_cmp(&have, &oa, &va), version_cmp(&have, &oc, &vc));
            if if joiner == " and " { x && y } else { x || y } {
                return Ok(Some(if reason.trim().is_empty() {
                    format!("nginx version {}", cond.trim())
                } else {
                    reason.trim().to_string()
                }));
            }
        }
        if let Some(s) = text("skip_openssl") {
            let (_, rest) = s
                .split_once(':')
                .ok_or(format!("invalid --- skip_openssl: {}", s))?;
            let (cond, reason) = rest.split_once(':').unwrap_or((rest, ""));
            let (op, v) = op_version(cond).ok_or(format!("invalid --- skip_openssl: {}", s))?;
            if let Some(have) = &self.openssl {
                if version_cmp(&parse_version(have), &op, &v) {
                    return Ok(Some(if reason.trim().is_empty() {
                        format!("OpenSSL version {}", cond.trim())
                    } else {
                        reason.trim().to_string()
                    }));
                }
            }
        }
        if let Some(s) = text("skip_eval") {
            let (_, code) = s.split_once(':').ok_or(format!("invalid --- skip_eval: {}", s))?;
            let mut i = fc.interp.clone();
            match i.eval(code.trim().as_bytes()) {
                Ok(v) => {
                    if v.first().truthy() {
                        return Ok(Some(format!("skip_eval: {}", code.trim())));
                    }
                }
                Err(e) => return Err(format!("unsupported eval in --- skip_eval: {}", e)),
            }
        }
        Ok(None)
    }

    pub(crate) fn run_block(
        &mut self,
        fc: &FileCtx,
        b: &Block,
        prev_config: &mut Option<Vec<u8>>,
    ) -> Outcome {
        let block = self.effective_block(fc, b);
        let mut notes = Vec::new();
        if block.sections.iter().any(|s| s.name.starts_with("stap")) {
            notes.push("stap checks skipped".to_string());
        }
        if block.has("init") {
            notes.push("--- init (Perl) ignored".to_string());
        }
        match self.skip_reason(fc, &block) {
            Ok(Some(r)) => return Outcome::Skip(r),
            Ok(None) => {}
            Err(e) => return Outcome::Fail(vec![Failure::new("skip condition", e)], notes, None),
        }
        let mut ev = BlockEval {
            block: &block,
            interp: fc.interp.clone(),
            failures: Vec::new(),
            log_end: None,
        };
        let r = self.run_block_inner(fc, &mut ev, prev_config, &mut notes);
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

    fn run_block_inner(
        &mut self,
        fc: &FileCtx,
        ev: &mut BlockEval,
        prev_config: &mut Option<Vec<u8>>,
        notes: &mut Vec<String>,
    ) -> Result<(), Failure> {
        let b = ev.block;
        let pre = &fc.preamble;

        // --- nginx.conf
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
        let http_config = ev.conf("http_config")?.unwrap_or_default();
        let main_config = ev.conf("main_config")?.unwrap_or_default();
        let post_main_config = ev.conf("post_main_config")?.unwrap_or_default();
        let server_name = ev
            .text("server_name")?
            .map(|s| s.trim().to_string())
            .or(pre.server_name.clone())
            .unwrap_or_else(|| "localhost".into());
        let log_level = ev
            .text("log_level")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or(pre.log_level.clone());

        // --- expectations and request options
        let mut e = Expect {
            abort: b.has("abort"),
            ignore_response: b.has("ignore_response"),
            server_port: fc.port,
            ..Expect::default()
        };
        for (name, slot) in [
            ("error_code", &mut e.error_code),
            ("error_code_like", &mut e.error_code_like),
            ("response_body", &mut e.response_body),
            ("response_body_like", &mut e.response_body_like),
            ("response_body_unlike", &mut e.response_body_unlike),
            ("response_body_filters", &mut e.response_body_filters),
            ("response_headers", &mut e.response_headers),
            ("response_headers_like", &mut e.response_headers_like),
            ("raw_response_headers_like", &mut e.raw_response_headers_like),
            ("raw_response_headers_unlike", &mut e.raw_response_headers_unlike),
            ("error_log", &mut e.error_log),
            ("no_error_log", &mut e.no_error_log),
            ("grep_error_log", &mut e.grep_error_log),
            ("grep_error_log_out", &mut e.grep_error_log_out),
            ("access_log", &mut e.access_log),
            ("no_access_log", &mut e.no_access_log),
            ("shutdown_error_log", &mut e.shutdown_error_log),
            ("no_shutdown_error_log", &mut e.no_shutdown_error_log),
        ] {
            *slot = ev.get(name)?;
        }
        if e.response_body.is_none() {
            if let Some(v) = ev.get("response_body_eval")? {
                let mut i = ev.interp.clone();
                e.response_body = Some(i.eval(&v.to_bytes()).map(Value::first).map_err(|err| {
                    Failure::new("response_body_eval", format!("unsupported eval: {}", err))
                })?);
            }
        }
        let timeout = match ev.text("timeout")? {
            Some(t) => parse::parse_time(&t)
                .ok_or_else(|| Failure::new("timeout", format!("bad --- timeout value \"{}\"", t.trim())))?,
            None => pre.timeout.unwrap_or(self.default_timeout),
        };
        // Under valgrind everything is 10-50 times slower: a response that
        // must come gets much longer; a client that must give up (--- abort)
        // waits as long as Test::Nginx lets it (0.3 s more).
        let timeout = match (&self.valgrind, e.abort) {
            (None, _) => timeout,
            (Some(_), false) => timeout * 4.0 + 10.0,
            (Some(_), true) => timeout + 0.3,
        };
        let wait = match ev.text("wait")? {
            Some(t) => parse::parse_time(&t),
            None => None,
        };
        let middle_delay = ev
            .text("raw_request_middle_delay")?
            .and_then(|t| parse::parse_time(&t));
        let shutdown = ev.text("shutdown")?.map(|t| match t.trim() {
            "0" => Shutdown::Read,
            "2" => Shutdown::Both,
            _ => Shutdown::Write,
        });

        // --- server root
        let root = &self.root;
        root.reset().map_err(|err| {
            Failure::new(
                "server root",
                format!("cannot reset {}: {}", root.root.display(), err),
            )
        })?;
        self.write_user_files(ev)?;
        let conf = nginx::render_conf(
            root,
            &nginx::Conf {
                modules: &self.modules,
                main_config: &main_config,
                post_main_config: &post_main_config,
                http_config: &http_config,
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
        );
        fs::write(root.conf_file(), &conf)
            .map_err(|err| Failure::new("nginx.conf", format!("cannot write: {}", err)))?;

        let nginx_env: BTreeMap<String, String> = fc.interp.env.clone();
        let start_timeout = Duration::from_secs(if self.valgrind.is_some() { 120 } else { 5 });

        if b.has("must_die") {
            let want = ev
                .text("must_die")?
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            let r = self.must_die(ev, &e, want, &nginx_env, fc.port, start_timeout);
            self.valgrind_check(ev, notes);
            return r;
        }

        // --- requests (built before starting nginx: errors need no server);
        // like Test::Nginx, the Host header ignores a block's --- server_name
        let (requests, pipelined) =
            self.build_requests(ev, pre.server_name.as_deref().unwrap_or("localhost"))?;
        let need_array = pipelined.is_some() || requests.len() > 1;

        let mut ngx = match Nginx::start(&self.nginx_cmd(), root, fc.port, &nginx_env, start_timeout) {
            Ok(Started::Running(n)) => n,
            Ok(Started::Exited(status, output)) => {
                return Err(Failure::new(
                    "nginx start",
                    format!(
                        "nginx exited right away ({}); its output:\n{}",
                        status,
                        report::tail(&output, 30)
                    ),
                ))
            }
            Err(msg) => return Err(Failure::new("nginx start", msg)),
        };

        let addr = SocketAddr::from(([127, 0, 0, 1], fc.port));
        let mut log_pos = 0u64;
        let mut acc_pos = 0u64;
        let mut warned_lines = 0;
        let contains_text = |v: &Option<Value>, what: &str| {
            v.as_ref()
                .is_some_and(|v| String::from_utf8_lossy(&flat_bytes(v)).contains(what))
        };
        let mentions = |what: &str| contains_text(&e.error_log, what) || contains_text(&e.no_error_log, what);
        for rep in 0..pre.repeat_each {
            let before = ev.failures.len();
            let mut mocks = self.start_mocks(ev)?;
            for (k, req) in requests.iter().enumerate() {
                if self.verbose {
                    for p in &req.packets {
                        println!("# >>> {}", report::clip(&p.data, 4000));
                    }
                }
                let ex = http::exchange(
                    addr,
                    &req.packets,
                    Duration::from_secs_f64(timeout),
                    middle_delay,
                    shutdown,
                );
                if self.verbose {
                    println!("# <<< {}", report::clip(&ex.data, 4000));
                }
                let at = At {
                    rep,
                    req: k,
                    need_array,
                };
                if let Some(err) = &ex.error {
                    ev.failures.push(Failure::new(at.tag("request"), err.clone()));
                }
                if ex.timed_out && !e.abort {
                    ev.failures.push(Failure::new(
                        at.tag("timeout"),
                        format!(
                            "client socket timed out after {}s waiting for the response (got {} bytes so far: {})",
                            timeout,
                            ex.data.len(),
                            report::clip(&ex.data, 300)
                        ),
                    ));
                }
                if !e.ignore_response {
                    self.check_responses(
                        &e,
                        &ex.data,
                        req.head,
                        b.has("http09"),
                        pipelined,
                        rep,
                        k,
                        need_array,
                        ev,
                        notes,
                    );
                }
                if k + 1 < requests.len() {
                    if let Some(w) = wait {
                        std::thread::sleep(Duration::from_secs_f64(w));
                    }
                }
            }
            if let Some(w) = wait {
                std::thread::sleep(Duration::from_secs_f64(w));
            }
            self.finish_mocks(ev, &mut mocks, rep);
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
            if pre.check_accum_error_log {
                log_pos = 0;
                acc_pos = 0;
            }
            let log = read_from(&root.error_log(), &mut log_pos);
            let lines = lines_of(&log);
            ev.failures.extend(check::check_error_log(&e, &lines, rep, false));
            if e.access_log.is_some() || e.no_access_log.is_some() {
                let acc = read_from(&root.access_log(), &mut acc_pos);
                ev.failures
                    .extend(check::check_access_log(&e, &lines_of(&acc), rep));
            }
            for l in &lines {
                let s = String::from_utf8_lossy(l);
                if s.contains("exited on signal") && !mentions("exited on signal") {
                    ev.failures.push(Failure::new(
                        format!("nginx crash (repetition {})", rep + 1),
                        s.trim_end().to_string(),
                    ));
                } else if warned_lines < 5
                    && ((s.contains("[alert]") && !mentions("[alert"))
                        || (s.contains("[crit]") && !mentions("[crit"))
                        || (s.contains("[emerg]") && !mentions("[emerg")))
                {
                    warned_lines += 1;
                    println!("# WARNING: {} {} - {}", fc.display, b.title(), s.trim_end());
                }
            }
            if let Some(status) = ngx.exited() {
                ev.failures.push(Failure::new(
                    format!("nginx (repetition {})", rep + 1),
                    format!("the nginx master process exited unexpectedly ({})", status),
                ));
                break;
            }
            if ev.failures.len() > before && rep + 1 < pre.repeat_each {
                notes.push(format!("repetitions after {} not run", rep + 1));
                break;
            }
        }

        ev.log_end = fs::metadata(root.error_log()).ok().map(|m| m.len());
        let grace = Duration::from_secs(if self.valgrind.is_some() { 120 } else { 3 });
        let graceful = ngx.stop(grace);
        if !graceful {
            notes.push(format!(
                "nginx did not exit within {}s of SIGQUIT and was killed",
                grace.as_secs()
            ));
        }
        self.valgrind_check(ev, notes);
        if e.shutdown_error_log.is_some() || e.no_shutdown_error_log.is_some() {
            let log = read_from(&root.error_log(), &mut log_pos);
            ev.failures
                .extend(check::check_error_log(&e, &lines_of(&log), 0, true));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn check_responses(
        &self,
        e: &Expect,
        data: &[u8],
        head: bool,
        http09: bool,
        pipelined: Option<usize>,
        rep: usize,
        req: usize,
        need_array: bool,
        ev: &mut BlockEval,
        notes: &mut Vec<String>,
    ) {
        if http09 {
            let r = Response {
                status: Some(200),
                body: data.to_vec(),
                ..Response::default()
            };
            let at = At { rep, req, need_array };
            ev.failures.extend(check::check_response(e, &r, &at));
            return;
        }
        let count = pipelined.unwrap_or(1);
        let mut rest = data.to_vec();
        for i in 0..count {
            let idx = if pipelined.is_some() { i } else { req };
            let at = At {
                rep,
                req: idx,
                need_array,
            };
            match http::parse_response(&rest, head) {
                Ok((r, left)) => {
                    for w in &r.warnings {
                        notes.push(w.clone());
                    }
                    ev.failures.extend(check::check_response(e, &r, &at));
                    rest = left;
                }
                Err(msg) => {
                    ev.failures.push(Failure::new(at.tag("response"), msg));
                    return;
                }
            }
        }
        if !rest.is_empty() && pipelined.is_none() {
            notes.push(format!(
                "unexpected extra bytes after the response: {}",
                report::clip(&rest, 100)
            ));
        }
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

    fn must_die(
        &self,
        ev: &mut BlockEval,
        e: &Expect,
        want: Option<String>,
        env: &BTreeMap<String, String>,
        port: u16,
        timeout: Duration,
    ) -> Result<(), Failure> {
        match Nginx::start(&self.nginx_cmd(), &self.root, port, env, timeout) {
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
        }
    }

    fn write_user_files(&self, ev: &mut BlockEval) -> Result<(), Failure> {
        let v = match ev.get("user_files")? {
            None => return Ok(()),
            Some(v) => v,
        };
        let files: Vec<(String, Vec<u8>, Option<String>)> = match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for it in items {
                    match it {
                        Value::Array(f) if !f.is_empty() => out.push((
                            f[0].to_string_lossy(),
                            f.get(1).map(Value::to_bytes).unwrap_or_default(),
                            f.get(2).map(Value::to_string_lossy),
                        )),
                        _ => {
                            return Err(Failure::new(
                                "user_files",
                                "eval user_files must be [[name, body, mtime?], ...]",
                            ))
                        }
                    }
                }
                out
            }
            v => parse::parse_user_files(&v.to_bytes()),
        };
        for (name, body, date) in files {
            let path = if name.starts_with('/') {
                PathBuf::from(&name)
            } else {
                self.root.html().join(&name)
            };
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|err| {
                    Failure::new("user_files", format!("cannot create {}: {}", dir.display(), err))
                })?;
            }
            fs::write(&path, &body).map_err(|err| {
                Failure::new("user_files", format!("cannot write {}: {}", path.display(), err))
            })?;
            if let Some(d) = date {
                let t = touch_time(d.trim())
                    .ok_or_else(|| Failure::new("user_files", format!("bad file time \"{}\"", d)))?;
                let f = fs::File::options()
                    .write(true)
                    .open(&path)
                    .map_err(|err| Failure::new("user_files", err.to_string()))?;
                f.set_modified(t)
                    .map_err(|err| Failure::new("user_files", err.to_string()))?;
            }
        }
        Ok(())
    }

    /// The requests of a block, and the number of pipelined requests when
    /// they share one connection.
    fn build_requests(
        &self,
        ev: &mut BlockEval,
        server_name: &str,
    ) -> Result<(Vec<Req>, Option<usize>), Failure> {
        let more = ev.get("more_headers")?;
        let headers_for = |i: usize| -> Result<(Vec<u8>, bool), Failure> {
            match &more {
                None => Ok((Vec::new(), false)),
                Some(Value::Array(items)) => match items.get(i) {
                    Some(v) => Ok(http::format_more_headers(&v.to_bytes())),
                    None => Err(Failure::new(
                        "more_headers",
                        format!("--- more_headers lacks data for request {}", i + 1),
                    )),
                },
                Some(v) => Ok(http::format_more_headers(&v.to_bytes())),
            }
        };
        let build = |packets: Vec<Packet>, i: usize, conn: &str| -> Result<Req, Failure> {
            let (h, chunked) = headers_for(i)?;
            let (packets, head) = http::build_request(&packets, &h, chunked, conn, server_name)
                .map_err(|m| Failure::new("request", m))?;
            Ok(Req { packets, head })
        };
        if let Some(raw) = ev.get("raw_request")? {
            let packets = to_packets(&raw).map_err(|m| Failure::new("raw_request", m))?;
            let all: Vec<u8> = packets.iter().flat_map(|p| p.data.clone()).collect();
            let head = http::strip_request_comments(&all).starts_with(b"HEAD ");
            return Ok((vec![Req { packets, head }], None));
        }
        if let Some(p) = ev.get("pipelined_requests")? {
            let items = match p {
                Value::Array(items) => items,
                _ => {
                    return Err(Failure::new(
                        "pipelined_requests",
                        "must be an array (eval [...])",
                    ))
                }
            };
            let mut data = Vec::new();
            let mut head = false;
            for (i, it) in items.iter().enumerate() {
                let conn = if i + 1 == items.len() {
                    "close"
                } else {
                    "keep-alive"
                };
                let r = build(vec![Packet::new(it.to_bytes())], i, conn)?;
                head |= r.head;
                data.extend(r.packets.into_iter().flat_map(|p| p.data));
            }
            return Ok((
                vec![Req {
                    packets: vec![Packet::new(data)],
                    head,
                }],
                Some(items.len()),
            ));
        }
        let req = match ev.get("request")? {
            Some(v) => v,
            None => match ev.get("request_eval")? {
                Some(code) => {
                    let mut i = ev.interp.clone();
                    i.eval(&code.to_bytes())
                        .map(Value::first)
                        .map_err(|err| Failure::new("request_eval", format!("unsupported eval: {}", err)))?
                }
                None => return Err(Failure::new("request", "the block has no --- request section")),
            },
        };
        let one = |v: &Value, i: usize| -> Result<Req, Failure> {
            match v {
                Value::Array(_) => build(to_packets(v).map_err(|m| Failure::new("request", m))?, i, "close"),
                v => build(
                    vec![Packet::new(http::strip_request_comments(&v.to_bytes()).to_vec())],
                    i,
                    "close",
                ),
            }
        };
        match &req {
            Value::Array(items) => {
                let reqs = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| one(v, i))
                    .collect::<Result<Vec<_>, _>>()?;
                if reqs.is_empty() {
                    return Err(Failure::new("request", "empty request array"));
                }
                Ok((reqs, None))
            }
            v => Ok((vec![one(v, 0)?], None)),
        }
    }

    fn start_mocks(&self, ev: &mut BlockEval) -> Result<Vec<(&'static str, mock::Mock)>, Failure> {
        let mut out = Vec::new();
        for kind in ["tcp", "udp"] {
            let target = match ev.text(&format!("{}_listen", kind))? {
                Some(t) => t.trim().to_string(),
                None => continue,
            };
            let replies = match ev.get(&format!("{}_reply", kind))? {
                None => Vec::new(),
                Some(Value::Array(items)) => items.iter().map(Value::to_bytes).collect(),
                Some(Value::Code(_)) => {
                    return Err(Failure::new(
                        format!("{}_reply", kind),
                        "Perl subs as replies are not supported",
                    ))
                }
                Some(v) => vec![v.to_bytes()],
            };
            let query = ev.get(&format!("{}_query", kind))?;
            let query_len = match ev.text(&format!("{}_query_len", kind))? {
                Some(t) => t.trim().parse().ok(),
                None => query
                    .as_ref()
                    .filter(|q| !matches!(q, Value::Regex(_)))
                    .map(|q| q.to_bytes().len()),
            };
            let spec = mock::Spec {
                target,
                replies,
                query_len,
                reply_delay: ev
                    .text(&format!("{}_reply_delay", kind))?
                    .and_then(|t| parse::parse_time(&t)),
                no_close: ev.block.has(&format!("{}_no_close", kind)),
                shutdown: ev
                    .text(&format!("{}_shutdown", kind))?
                    .and_then(|t| t.trim().parse().ok()),
                shutdown_delay: ev
                    .text(&format!("{}_shutdown_delay", kind))?
                    .and_then(|t| parse::parse_time(&t)),
            };
            let m = if kind == "tcp" {
                mock::Mock::tcp(spec)
            } else {
                mock::Mock::udp(spec)
            };
            out.push((
                kind,
                m.map_err(|msg| Failure::new(format!("{}_listen", kind), msg))?,
            ));
        }
        Ok(out)
    }

    fn finish_mocks(&self, ev: &mut BlockEval, mocks: &mut Vec<(&'static str, mock::Mock)>, rep: usize) {
        for (kind, m) in mocks.drain(..) {
            let got = m.finish();
            let check = format!("{}_query (repetition {})", kind, rep + 1);
            match ev.get(&format!("{}_query", kind)) {
                Ok(Some(Value::Regex(p))) => match regex::Regex::new(&p.src, &p.flags) {
                    Ok(re) if re.is_match(&got) => {}
                    Ok(re) => ev.failures.push(Failure::new(
                        check,
                        format!(
                            "does not match /{}/\n  got: {}",
                            re.as_str(),
                            report::clip(&got, 2000)
                        ),
                    )),
                    Err(err) => ev.failures.push(Failure::new(check, err)),
                },
                Ok(Some(v)) => {
                    let want = v.to_bytes();
                    if want != got {
                        ev.failures
                            .push(Failure::new(check, report::mismatch(&want, &got)));
                    }
                }
                Ok(None) => {}
                Err(f) => ev.failures.push(f),
            }
            if let Ok(Some(len)) = ev.text(&format!("{}_query_len", kind)) {
                if len.trim().parse::<usize>().ok() != Some(got.len()) {
                    ev.failures.push(Failure::new(
                        format!("{}_query_len (repetition {})", kind, rep + 1),
                        format!("expected {} bytes, got {}", len.trim(), got.len()),
                    ));
                }
            }
        }
    }
}

struct Req {
    packets: Vec<Packet>,
    head: bool,
}

/// A string, or an array of strings and {value => ..., delay_before => ...}
/// hashes, as packets.
fn to_packets(v: &Value) -> Result<Vec<Packet>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|it| match it {
                Value::Hash(pairs) => {
                    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    Ok(Packet {
                        data: get("value").map(|v| v.to_bytes()).unwrap_or_default(),
                        delay: get("delay_before").map(|d| d.to_num()),
                    })
                }
                Value::Array(_) => Err("nested arrays are not valid request packets".to_string()),
                v => Ok(Packet::new(v.to_bytes())),
            })
            .collect(),
        v => Ok(vec![Packet::new(v.to_bytes())]),
    }
}

/// All strings in a value, for "does the pattern list mention X" tests.
fn flat_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat_bytes).collect(),
        Value::Regex(p) => p.src.clone(),
        v => v.to_bytes(),
    }
}

/// Section access for one block: filters, eval and `$TEST_NGINX_*`
/// expansion, with errors as failures.
struct BlockEval<'a> {
    block: &'a Block,
    interp: Interp,
    failures: Vec<Failure>,
    /// error.log size when nginx was told to stop
    log_end: Option<u64>,
}

impl BlockEval<'_> {
    fn raw(&mut self, name: &str) -> Result<Option<(Value, Vec<String>)>, Failure> {
        let sec = match self.block.section(name) {
            Some(s) => s,
            None => return Ok(None),
        };
        let v = parse::section_value(sec, &mut self.interp)
            .map_err(|m| Failure::new(format!("--- {}", name), m))?;
        let env = &self.interp.env;
        let lookup = |k: &str| env.get(k).cloned();
        let mut missing = Vec::new();
        let v = parse::expand_value(v, &lookup, &mut missing);
        Ok(Some((v, missing)))
    }

    fn get(&mut self, name: &str) -> Result<Option<Value>, Failure> {
        Ok(self.raw(name)?.map(|(v, _)| v))
    }

    fn text(&mut self, name: &str) -> Result<Option<String>, Failure> {
        Ok(self.get(name)?.map(|v| v.to_string_lossy()))
    }

    /// A configuration section: undefined `$TEST_NGINX_*` are errors, as in
    /// Test::Nginx.
    fn conf(&mut self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        match self.raw(name)? {
            None => Ok(None),
            Some((v, missing)) => {
                if let Some(m) = missing.first() {
                    return Err(Failure::new(
                        format!("--- {}", name),
                        format!("no environment variable {} is defined", m),
                    ));
                }
                Ok(Some(v.to_bytes()))
            }
        }
    }

    fn expand_conf(&self, s: &[u8], what: &str) -> Result<Vec<u8>, Failure> {
        let env = &self.interp.env;
        let lookup = |k: &str| env.get(k).cloned();
        let mut missing = Vec::new();
        let out = parse::expand_env(s, &lookup, &mut missing);
        match missing.first() {
            Some(m) => Err(Failure::new(
                what,
                format!("no environment variable {} is defined", m),
            )),
            None => Ok(out),
        }
    }
}
