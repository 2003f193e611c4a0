//! The nginx under test: server root, nginx.conf, and the process itself.
//!
//! nginx runs with `daemon off` as our child, in its own process group so
//! the master and its workers can be killed together, including from the
//! SIGINT/SIGTERM handler (which only has the group id to go on).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn signal(sig: i32, handler: usize) -> usize;
    fn geteuid() -> u32;
    fn getpid() -> i32;
    fn _exit(code: i32) -> !;
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const PR_SET_CHILD_SUBREAPER: i32 = 36;

/// Process group of the running nginx, for the signal handler.
static CURRENT_PGID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: i32) {
    let pg = CURRENT_PGID.load(Ordering::SeqCst);
    // only async-signal-safe calls here
    // SAFETY: kill, waitpid and _exit are plain libc calls with valid
    // arguments (a null status pointer is allowed).
    unsafe {
        if pg > 0 {
            kill(-pg, SIGKILL);
        }
        // reap the master and (as subreaper) its orphaned workers, so
        // not even zombies are left behind
        while waitpid(-1, std::ptr::null_mut(), 0) > 0 {}
        _exit(128 + sig);
    }
}

/// Makes Ctrl-C / SIGTERM / SIGHUP kill the current nginx before exiting,
/// and makes us the reaper of workers orphaned by a killed master (init in
/// a container may never reap them).
pub fn install_signal_handlers() {
    // SAFETY: prctl with an int option and unused zero arguments.
    unsafe {
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let h = on_signal as extern "C" fn(i32) as usize;
    for s in [SIGINT, SIGTERM, SIGHUP] {
        // SAFETY: `h` is an extern "C" fn(i32) that only makes
        // async-signal-safe calls.
        unsafe {
            signal(s, h);
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that `pid` exists.
    pid > 0 && unsafe { kill(pid, 0) } == 0 && !is_zombie(pid)
}

pub fn my_pid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { getpid() }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{}/stat", pid))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Members of a process group: (pid, parent pid, is zombie).
fn group(pgid: i32) -> Vec<(i32, i32, bool)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let pid: i32 = match e.file_name().to_string_lossy().parse() {
                Ok(p) => p,
                Err(_) => continue,
            };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", pid))
                && let Some((_, rest)) = stat.rsplit_once(')')
            {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // fields after the command: state ppid pgrp ...
                if f.len() > 2 && f[2] == pgid.to_string() {
                    out.push((pid, f[1].parse().unwrap_or(0), f[0] == "Z"));
                }
            }
        }
    }
    out
}

/// Live (non-zombie) members of a process group.
fn group_members(pgid: i32) -> Vec<i32> {
    group(pgid).into_iter().filter(|m| !m.2).map(|m| m.0).collect()
}

/// Reaps group members that were re-parented to us (we are a subreaper).
fn reap_orphans(pgid: i32) {
    let me = my_pid();
    for (pid, ppid, zombie) in group(pgid) {
        if ppid == me && zombie {
            // SAFETY: waitpid on our own child; a null status pointer is allowed.
            unsafe {
                waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (bind to port 0 and read it back).
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    // keep all listeners open until every port is picked so they differ
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<_>>()?;
    ls.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

/// Whether some socket listens on `port` (read from /proc so that probing
/// does not open connections that would show up in error.log).
pub fn is_listening(port: u16) -> bool {
    let want = format!(":{:04X}", port);
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(s) = fs::read_to_string(f) {
            for line in s.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() > 3 && fields[1].ends_with(&want) && fields[3] == "0A" {
                    return true;
                }
            }
        }
    }
    false
}

/// Deletes `<root>_<pid>` directories of runners that are gone.
fn remove_stale_fallbacks(root: &Path) {
    let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
        return;
    };
    let prefix = format!("{}_", name.to_string_lossy());
    if let Ok(rd) = fs::read_dir(parent) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok())
                && !pid_alive(pid)
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

pub struct ServRoot {
    pub root: PathBuf,
}

impl ServRoot {
    /// Creates a clean server root.  Another live runner's root is left
    /// alone: we fall back to `<root>_<pid>`.
    pub fn prepare(root: PathBuf) -> io::Result<ServRoot> {
        remove_stale_fallbacks(&root);
        let lock = root.join(".runner.pid");
        let root = match fs::read_to_string(&lock)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            Some(pid) if pid != my_pid() && pid_alive(pid) => {
                let mut p = root.clone().into_os_string();
                p.push(format!("_{}", my_pid()));
                PathBuf::from(p)
            }
            _ => root,
        };
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        fs::create_dir_all(&root)?;
        fs::write(root.join(".runner.pid"), my_pid().to_string())?;
        Ok(ServRoot { root })
    }

    pub fn html(&self) -> PathBuf {
        self.root.join("html")
    }
    pub fn conf_file(&self) -> PathBuf {
        self.root.join("conf/nginx.conf")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn error_log(&self) -> PathBuf {
        self.root.join("logs/error.log")
    }
    pub fn access_log(&self) -> PathBuf {
        self.root.join("logs/access.log")
    }
    pub fn stderr_log(&self) -> PathBuf {
        self.root.join("logs/stderr.log")
    }

    /// Fresh conf/, html/ (with the default index.html) and logs/ for a
    /// block, like Test::Nginx's setup_server_root.
    pub fn reset(&self) -> io::Result<()> {
        for e in fs::read_dir(&self.root)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            if name == ".runner.pid" || name == "failed" {
                continue;
            }
            if p.is_dir() {
                fs::remove_dir_all(&p)?;
            } else {
                fs::remove_file(&p)?;
            }
        }
        for d in ["conf", "html", "logs"] {
            fs::create_dir_all(self.root.join(d))?;
        }
        fs::write(
            self.html().join("index.html"),
            "<html><head><title>It works!</title></head><body>It works!</body></html>",
        )?;
        fs::write(self.error_log(), "")?;
        Ok(())
    }

    /// Where the logs of failed blocks are kept for inspection.
    pub fn failed_dir(&self) -> PathBuf {
        self.root.join("failed")
    }

    pub fn remove_lock(&self) {
        let _ = fs::remove_file(self.root.join(".runner.pid"));
    }
}

pub struct Nginx {
    child: Option<Child>,
    pgid: i32,
}

pub enum Started {
    Running(Nginx),
    /// nginx exited before listening; its exit status and its
    /// stdout/stderr output.
    Exited(ExitStatus, Vec<u8>),
}

impl Nginx {
    /// Starts nginx and waits until its port listens (or it exits).
    /// `cmd` is the nginx binary, or a wrapper (valgrind) and its arguments
    /// ending with the binary.
    pub fn start(
        cmd: &[String],
        root: &ServRoot,
        port: u16,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Started, String> {
        let out =
            fs::File::create(root.stderr_log()).map_err(|e| format!("cannot create stderr.log: {}", e))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut prefix = root.root.clone().into_os_string();
        prefix.push("/");
        let (program, pre_args) = cmd.split_first().ok_or("no nginx command")?;
        let child = Command::new(program)
            .args(pre_args)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg("conf/nginx.conf")
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {}", program, e))?;
        let pgid = child.id() as i32;
        CURRENT_PGID.store(pgid, Ordering::SeqCst);
        let mut ngx = Nginx {
            child: Some(child),
            pgid,
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = ngx.try_wait() {
                ngx.kill_group();
                let output = fs::read(root.stderr_log()).unwrap_or_default();
                return Ok(Started::Exited(status, output));
            }
            if is_listening(port) {
                return Ok(Started::Running(ngx));
            }
            if Instant::now() > deadline {
                ngx.stop(Duration::ZERO);
                return Err(format!(
                    "nginx did not listen on port {} within {:?}",
                    port, timeout
                ));
            }
            // nginx usually listens within 5-20 ms: poll finely at first
            let waited = timeout.saturating_sub(deadline.saturating_duration_since(Instant::now()));
            std::thread::sleep(Duration::from_millis(1).max((waited / 20).min(Duration::from_millis(5))));
        }
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Exit status if the master is gone already.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.try_wait()
    }

    fn kill_group(&mut self) {
        if self.pgid <= 0 {
            return;
        }
        // SAFETY: kill only sends a signal; a stale pid or group is an error, not UB.
        unsafe {
            kill(-self.pgid, SIGKILL);
        }
        // orphaned workers are reaped by init, not us: wait until they are
        // gone (or zombies) so the port and files are free for the next block
        let deadline = Instant::now() + Duration::from_secs(2);
        while !group_members(self.pgid).is_empty() && Instant::now() < deadline {
            // SAFETY: kill only sends a signal; a stale pid or group is an error, not UB.
            unsafe {
                kill(-self.pgid, SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        reap_orphans(self.pgid);
    }

    /// Graceful stop (SIGQUIT) waiting up to `grace`, then SIGKILL for the
    /// whole group.  Returns false when nginx had to be killed.
    pub fn stop(&mut self, grace: Duration) -> bool {
        let mut graceful = true;
        if let Some(mut child) = self.child.take()
            && child.try_wait().ok().flatten().is_none()
        {
            // SAFETY: kill only sends a signal; a stale pid or group is an error, not UB.
            unsafe {
                kill(child.id() as i32, SIGQUIT);
            }
            let deadline = Instant::now() + grace;
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if Instant::now() >= deadline {
                    graceful = false;
                    // SAFETY: kill only sends a signal; a stale pid or group is an error, not UB.
                    unsafe {
                        kill(-self.pgid, SIGKILL);
                    }
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if !group_members(self.pgid).is_empty() {
            self.kill_group();
        }
        reap_orphans(self.pgid);
        CURRENT_PGID.store(0, Ordering::SeqCst);
        self.pgid = 0;
        graceful
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if self.child.is_some() || self.pgid > 0 {
            self.stop(Duration::ZERO);
        }
    }
}

/// `nginx -v` → (major, minor, patch).
pub fn nginx_version(binary: &Path) -> Result<(u32, u32, u32), String> {
    let out = Command::new(binary)
        .arg("-V")
        .output()
        .map_err(|e| format!("cannot run {}: {}", binary.display(), e))?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let v = text
        .split("nginx/")
        .nth(1)
        .ok_or_else(|| format!("unexpected `{} -V` output: {}", binary.display(), text))?;
    let nums: Vec<u32> = v
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Ok((nums[0], *nums.get(1).unwrap_or(&0), *nums.get(2).unwrap_or(&0)))
}

/// "built with OpenSSL 3.0.20 ..." from `nginx -V`.
pub fn openssl_version(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let rest = text.split("built with OpenSSL ").nth(1)?;
    rest.split_whitespace().next().map(str::to_string)
}
