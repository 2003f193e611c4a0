//! Test::Nginx's embedded backends for `--- tcp_listen` and
//! `--- udp_listen`: for each repetition they accept one connection (or
//! datagram), record what nginx sent, optionally wait, and reply.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Spec {
    /// A port number or a `*.sock` path.
    pub target: String,
    pub replies: Vec<Vec<u8>>,
    /// Read until this many bytes arrived; None means one read.
    pub query_len: Option<usize>,
    pub reply_delay: Option<f64>,
    pub no_close: bool,
    /// 0 = read side, 1 = write side, 2 = both (TCP only).
    pub shutdown: Option<u8>,
    pub shutdown_delay: Option<f64>,
}

pub struct Mock {
    stop: Arc<AtomicBool>,
    query: Arc<Mutex<Vec<u8>>>,
    handle: Option<JoinHandle<()>>,
    unix_path: Option<String>,
}

const POLL: Duration = Duration::from_millis(10);

trait Conn: Read + Write {
    fn set_timeout(&self, d: Duration);
    fn shut(&self, how: Shutdown);
}

impl Conn for std::net::TcpStream {
    fn set_timeout(&self, d: Duration) {
        let _ = self.set_read_timeout(Some(d));
    }
    fn shut(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn set_timeout(&self, d: Duration) {
        let _ = self.set_read_timeout(Some(d));
    }
    fn shut(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

fn sleep_unless_stopped(secs: Option<f64>, stop: &AtomicBool) {
    if let Some(s) = secs.filter(|s| *s > 0.0) {
        let end = std::time::Instant::now() + Duration::from_secs_f64(s);
        while std::time::Instant::now() < end && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL.min(end - std::time::Instant::now()));
        }
    }
}

fn serve(mut c: Box<dyn Conn>, spec: &Spec, stop: &AtomicBool, query: &Mutex<Vec<u8>>) {
    let (mut no_read, mut no_write) = (false, false);
    if let Some(how) = spec.shutdown {
        sleep_unless_stopped(spec.shutdown_delay, stop);
        c.shut(match how {
            0 => Shutdown::Read,
            1 => Shutdown::Write,
            _ => Shutdown::Both,
        });
        if how == 0 || how == 2 {
            no_read = true;
        } else {
            no_write = true;
        }
    }
    c.set_timeout(POLL);
    if !no_read {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut q = query.lock().unwrap();
                    q.extend_from_slice(&buf[..n]);
                    if spec.query_len.is_none_or(|l| q.len() >= l) {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
    }
    sleep_unless_stopped(spec.reply_delay, stop);
    if !no_write {
        for r in &spec.replies {
            if c.write_all(r).is_err() {
                break;
            }
        }
    }
    if spec.no_close {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL);
        }
    }
}

impl Mock {
    /// Binds right away (so nginx can connect as soon as the request is
    /// sent) and serves one connection in a thread.
    pub fn tcp(spec: Spec) -> Result<Mock, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let query = Arc::new(Mutex::new(Vec::new()));
        let (st, q) = (stop.clone(), query.clone());
        let mut unix_path = None;
        let handle = if spec.target.ends_with(".sock") {
            let _ = std::fs::remove_file(&spec.target);
            let l =
                UnixListener::bind(&spec.target).map_err(|e| format!("tcp_listen {}: {}", spec.target, e))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            unix_path = Some(spec.target.clone());
            std::thread::spawn(move || {
                while !st.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((c, _)) => {
                            let _ = c.set_nonblocking(false);
                            serve(Box::new(c), &spec, &st, &q);
                            return;
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        } else {
            let port: u16 = spec
                .target
                .trim()
                .parse()
                .map_err(|_| format!("bad tcp_listen target \"{}\"", spec.target))?;
            let l =
                TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("tcp_listen {}: {}", port, e))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            std::thread::spawn(move || {
                while !st.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((c, _)) => {
                            let _ = c.set_nonblocking(false);
                            serve(Box::new(c), &spec, &st, &q);
                            return;
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Ok(Mock {
            stop,
            query,
            handle: Some(handle),
            unix_path,
        })
    }

    /// Receives one datagram, then sends the replies back to its sender.
    pub fn udp(spec: Spec) -> Result<Mock, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let query = Arc::new(Mutex::new(Vec::new()));
        let (st, q) = (stop.clone(), query.clone());
        let mut unix_path = None;
        let handle = if spec.target.ends_with(".sock") {
            let _ = std::fs::remove_file(&spec.target);
            let s =
                UnixDatagram::bind(&spec.target).map_err(|e| format!("udp_listen {}: {}", spec.target, e))?;
            let _ = s.set_read_timeout(Some(POLL));
            unix_path = Some(spec.target.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !st.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        q.lock().unwrap().extend_from_slice(&buf[..n]);
                        sleep_unless_stopped(spec.reply_delay, &st);
                        if let Some(p) = from.as_pathname() {
                            for r in &spec.replies {
                                let _ = s.send_to(r, p);
                            }
                        } else if from.as_abstract_name().is_some() {
                            // An autobound client (nginx's datagram unix
                            // sockets) has an abstract name.
                            for r in &spec.replies {
                                let _ = s.send_to_addr(r, &from);
                            }
                        }
                        return;
                    }
                }
            })
        } else {
            let port: u16 = spec
                .target
                .trim()
                .parse()
                .map_err(|_| format!("bad udp_listen target \"{}\"", spec.target))?;
            let s =
                UdpSocket::bind(("127.0.0.1", port)).map_err(|e| format!("udp_listen {}: {}", port, e))?;
            let _ = s.set_read_timeout(Some(POLL));
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !st.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        q.lock().unwrap().extend_from_slice(&buf[..n]);
                        sleep_unless_stopped(spec.reply_delay, &st);
                        for r in &spec.replies {
                            let _ = s.send_to(r, from);
                        }
                        return;
                    }
                }
            })
        };
        Ok(Mock {
            stop,
            query,
            handle: Some(handle),
            unix_path,
        })
    }

    /// Stops the server and returns what it received.
    pub fn finish(mut self) -> Vec<u8> {
        self.shutdown();
        let q = self.query.lock().unwrap();
        q.clone()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Some(p) = self.unix_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.shutdown();
    }
}
