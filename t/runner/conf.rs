//! nginx.conf in the shape Test::Nginx generates: the main context (with
//! `daemon off`), events, and http with one server on 127.0.0.1 that holds
//! the block's --- config.

use crate::nginx::{ServRoot, is_root};
use std::fmt::Write;
use std::path::PathBuf;

/// Everything that goes into nginx.conf.
pub struct Conf<'a> {
    pub modules: &'a [PathBuf],
    pub main_config: &'a [u8],
    pub post_main_config: &'a [u8],
    pub http_config: &'a [u8],
    pub server_config: &'a [u8],
    pub workers: usize,
    pub master: bool,
    pub log_level: &'a str,
    pub worker_connections: usize,
    pub port: u16,
    pub server_name: &'a str,
    pub root_location: bool,
    pub env: &'a [String],
}

/// Environment variables Test::Nginx always passes to nginx.
const ENV_ALWAYS: &[&str] = &[
    "MOCKEAGAIN_VERBOSE",
    "MOCKEAGAIN",
    "MOCKEAGAIN_WRITE_TIMEOUT_PATTERN",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "ASAN_OPTIONS",
];

pub fn render(root: &ServRoot, c: &Conf) -> Vec<u8> {
    let r = root.root.display().to_string();
    let mut out = main_context(&r, c).into_bytes();
    out.extend_from_slice(c.main_config);
    out.extend_from_slice(events(c).as_bytes());
    out.extend_from_slice(http_head(&r).as_bytes());
    out.extend_from_slice(c.http_config);
    out.extend_from_slice(server_head(c).as_bytes());
    out.extend_from_slice(c.server_config);
    out.extend_from_slice(server_tail(&r, c).as_bytes());
    out.extend_from_slice(c.post_main_config);
    out.push(b'\n');
    out
}

fn main_context(r: &str, c: &Conf) -> String {
    let mut s = String::new();
    for m in c.modules {
        let _ = writeln!(s, "load_module {};", m.display());
    }
    if is_root() {
        // workers would otherwise run as nobody and could not use files
        // the tests create under the server root
        s.push_str("user root;\n");
    }
    let _ = write!(
        s,
        "worker_processes {};\ndaemon off;\nmaster_process {};\nerror_log {r}/logs/error.log {};\npid {r}/logs/nginx.pid;\n",
        c.workers,
        if c.master { "on" } else { "off" },
        c.log_level,
    );
    for e in ENV_ALWAYS {
        let _ = writeln!(s, "env {};", e);
    }
    for e in c.env {
        if e.contains(char::is_whitespace) {
            let _ = writeln!(s, "env '{}';", e.replace('\'', "\\'"));
        } else {
            let _ = writeln!(s, "env {};", e);
        }
    }
    s.push('\n');
    s
}

fn events(c: &Conf) -> String {
    format!(
        "\n\nevents {{\n    accept_mutex off;\n    worker_connections {};\n}}\n\n",
        c.worker_connections
    )
}

fn http_head(r: &str) -> String {
    format!(
        "http {{\n    access_log {r}/logs/access.log;\n    default_type text/plain;\n    keepalive_timeout 68;\n\
         \x20   client_body_temp_path {r}/client_body_temp;\n    proxy_temp_path {r}/proxy_temp;\n\
         \x20   fastcgi_temp_path {r}/fastcgi_temp;\n    uwsgi_temp_path {r}/uwsgi_temp;\n\
         \x20   scgi_temp_path {r}/scgi_temp;\n\n"
    )
}

fn server_head(c: &Conf) -> String {
    format!(
        "\n\n    server {{\n        listen 127.0.0.1:{};\n        server_name {};\n        client_max_body_size 30M;\n\n        # Begin test case config...\n",
        c.port, c.server_name
    )
}

/// The end of the server block (with Test::Nginx's `location /` unless
/// no_root_location()), of http, and what follows it.
fn server_tail(r: &str, c: &Conf) -> String {
    let mut s = String::from("\n        # End test case config.\n");
    if c.root_location {
        let _ = write!(
            s,
            "\n        location / {{\n            root {r}/html;\n            index index.html index.htm;\n        }}\n"
        );
    }
    s.push_str("    }\n}\n\n");
    s
}
