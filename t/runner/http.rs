//! The HTTP/1.x client: builds requests the way Test::Nginx::Socket does,
//! sends them over a plain TCP socket and parses the raw responses.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// One write on the socket, optionally preceded by a pause.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub data: Vec<u8>,
    pub delay: Option<f64>,
}

impl Packet {
    pub fn new(data: Vec<u8>) -> Packet {
        Packet { data, delay: None }
    }
}

/// Formats a more_headers section: `Name: value` lines (comments and blank
/// lines dropped) with CRLF endings; also says whether the request body is
/// chunked, in which case no Content-Length is added.
pub fn format_more_headers(s: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut chunked = false;
    for line in s.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'#') {
            continue;
        }
        let (k, v) = match line.iter().position(|&c| c == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                let ws = v.iter().take_while(|c| c.is_ascii_whitespace()).count();
                (&line[..i], &v[ws..])
            }
            None => (line, &b""[..]),
        };
        if k.eq_ignore_ascii_case(b"transfer-encoding") && v == b"chunked" {
            chunked = true;
        }
        out.extend_from_slice(k);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    (out, chunked)
}

fn has_header_line(headers: &[u8], name: &[u8], ci: bool) -> bool {
    headers.split(|&c| c == b'\n').any(|l| {
        l.len() >= name.len()
            && if ci {
                l[..name.len()].eq_ignore_ascii_case(name)
            } else {
                &l[..name.len()] == name
            }
    })
}

fn is_ws(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b
}

/// Drops leading whitespace and `#` comment lines from a request section.
pub fn strip_request_comments(mut s: &[u8]) -> &[u8] {
    loop {
        let ws = s.iter().take_while(|&&c| is_ws(c)).count();
        s = &s[ws..];
        if s.first() == Some(&b'#') {
            let end = s
                .iter()
                .position(|&c| c == b'\n')
                .map(|p| p + 1)
                .unwrap_or(s.len());
            s = &s[end..];
        } else {
            return s;
        }
    }
}

/// Turns "METHOD [URL [VERSION]]\nbody" (split over `packets`) into a full
/// request: adds Host, Connection and Content-Length headers like
/// Test::Nginx, which also trims the body when it computes the length.
/// Packet boundaries are kept at the corresponding places.
pub fn build_request(
    packets: &[Packet],
    more_headers: &[u8],
    chunked: bool,
    connection: &str,
    server_name: &str,
) -> Result<(Vec<Packet>, bool), String> {
    let full: Vec<u8> = packets.iter().flat_map(|p| p.data.iter().copied()).collect();
    let line_end = full
        .iter()
        .position(|&c| c == b'\n')
        .map(|p| p + 1)
        .unwrap_or(full.len());
    let first = &full[..line_end];
    let lead = first.iter().take_while(|&&c| is_ws(c)).count();
    let words: Vec<&[u8]> = first.split(|&c| is_ws(c)).filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > 3 {
        return Err(format!(
            "request line is not valid, should be 'meth [url [version]]' but got \"{}\"",
            String::from_utf8_lossy(first).trim_end()
        ));
    }
    let method = words[0];
    let url: &[u8] = words.get(1).copied().unwrap_or(b"/");
    let version: &[u8] = words.get(2).copied().unwrap_or(b"HTTP/1.1");
    let mut content = &full[line_end..];
    let mut content_trim = 0;
    let mut len_header = Vec::new();
    if !chunked && !content.is_empty() && !has_header_line(more_headers, b"Content-Length:", false) {
        let a = content.iter().take_while(|&&c| is_ws(c)).count();
        let b = content[a..].iter().rev().take_while(|&&c| is_ws(c)).count();
        content = &content[a..content.len() - b];
        content_trim = a;
        len_header = format!("Content-Length: {}\r\n", content.len()).into_bytes();
    }
    let mut head = Vec::new();
    for (i, w) in [method, url, version].iter().enumerate() {
        if i > 0 {
            head.push(b' ');
        }
        head.extend_from_slice(w);
    }
    let line_len = head.len();
    head.extend_from_slice(b"\r\n");
    if !has_header_line(more_headers, b"Host:", true) {
        head.extend_from_slice(format!("Host: {}\r\n", server_name).as_bytes());
    }
    if !has_header_line(more_headers, b"Connection", true) {
        head.extend_from_slice(format!("Connection: {}\r\n", connection).as_bytes());
    }
    head.extend_from_slice(more_headers);
    head.extend_from_slice(&len_header);
    head.extend_from_slice(b"\r\n");
    let head_len = head.len();
    let mut req = head;
    req.extend_from_slice(content);

    // map each original packet start to a position in the new request
    let mut out = Vec::new();
    let mut orig = 0;
    let mut prev_new = 0;
    for (k, p) in packets.iter().enumerate() {
        let new_start = if k == 0 {
            0
        } else if orig < line_end {
            orig.saturating_sub(lead).min(line_len)
        } else {
            head_len + (orig - line_end).saturating_sub(content_trim).min(content.len())
        };
        let new_start = new_start.max(prev_new);
        if k > 0
            && let Some(last) = out.last_mut()
        {
            let last: &mut Packet = last;
            last.data = req[prev_new..new_start].to_vec();
        }
        out.push(Packet {
            data: Vec::new(),
            delay: p.delay,
        });
        prev_new = new_start;
        orig += p.data.len();
    }
    if let Some(last) = out.last_mut() {
        last.data = req[prev_new..].to_vec();
    }
    Ok((out, method == b"HEAD"))
}

/// What came back from one connection.
#[derive(Debug, Default)]
pub struct Exchange {
    pub data: Vec<u8>,
    pub timed_out: bool,
    pub error: Option<String>,
}

/// Sends the packets over one connection and reads until the server closes
/// it.  `timeout` bounds each wait (connect, every write and every read),
/// like Test::Nginx's select() timeout.
pub fn exchange(
    addr: SocketAddr,
    packets: &[Packet],
    timeout: Duration,
    middle_delay: Option<f64>,
    shutdown: Option<Shutdown>,
) -> Exchange {
    let mut ex = Exchange::default();
    // a zero timeout would mean "block forever" to set_read_timeout
    let timeout = timeout.max(Duration::from_millis(1));
    let mut sock = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            ex.error = Some(format!("cannot connect to {}: {}", addr, e));
            return ex;
        }
    };
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    for (k, p) in packets.iter().enumerate() {
        let delay = p.delay.or(if k > 0 { middle_delay } else { None });
        if let Some(d) = delay.filter(|d| *d > 0.0) {
            std::thread::sleep(Duration::from_secs_f64(d));
        }
        if let Err(e) = sock.write_all(&p.data) {
            // the server may have answered early (e.g. 413); read that
            if !matches!(
                e.kind(),
                ErrorKind::BrokenPipe
                    | ErrorKind::ConnectionReset
                    | ErrorKind::WouldBlock
                    | ErrorKind::TimedOut
            ) {
                ex.error = Some(format!("write failed: {}", e));
            }
            break;
        }
    }
    if let Some(how) = shutdown {
        let _ = sock.shutdown(how);
    }
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => ex.data.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                ex.timed_out = true;
                break;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => {
                ex.error = Some(format!("read failed: {}", e));
                break;
            }
        }
    }
    ex
}

#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: Option<u16>,
    /// Status line and header lines, each with its CRLF, as Test::Nginx's
    /// raw_response_headers_* sections see them.
    pub raw_headers: Vec<u8>,
    /// In order, with repeats and original case.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub warnings: Vec<String>,
}

impl Response {
    /// All values of a header joined with ", " (HTTP::Headers' scalar
    /// context), or None when absent.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        let vals: Vec<&Vec<u8>> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect();
        if vals.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(v);
        }
        Some(out)
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Parses one response from `raw`; returns it and the bytes after it
/// (pipelined responses, or garbage after the last chunk).  Errors are
/// malformed chunked bodies.
pub fn parse_response(raw: &[u8], head_request: bool) -> Result<(Response, Vec<u8>), String> {
    let mut r = Response::default();
    if let Some(p) = find(raw, b"\r\n\r\n") {
        r.raw_headers = raw[..p + 2].to_vec();
    }
    // split header block / body, accepting bare LF line ends like LWP
    let mut pos = 0;
    let mut lines = Vec::new();
    let mut body_start = raw.len();
    while pos < raw.len() {
        let end = raw[pos..].iter().position(|&c| c == b'\n').map(|e| pos + e);
        let (line, next) = match end {
            Some(e) => (&raw[pos..e], e + 1),
            None => (&raw[pos..], raw.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && !lines.is_empty() {
            body_start = next;
            break;
        }
        lines.push(line);
        pos = next;
        if end.is_none() {
            body_start = raw.len();
        }
    }
    if let Some(status_line) = lines.first() {
        let s = String::from_utf8_lossy(status_line);
        let mut parts = s.split_whitespace();
        let first = parts.next().unwrap_or("");
        let code = if first.len() == 3 && first.bytes().all(|c| c.is_ascii_digit()) {
            Some(first)
        } else {
            parts.next()
        };
        r.status = code
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse().ok());
    }
    for l in lines.iter().skip(1) {
        if l.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
            if let Some((_, v)) = r.headers.last_mut() {
                v.push(b' ');
                v.extend_from_slice(trim(l));
            }
            continue;
        }
        if let Some(i) = l.iter().position(|&c| c == b':') {
            let k = String::from_utf8_lossy(trim(&l[..i])).into_owned();
            r.headers.push((k, trim(&l[i + 1..]).to_vec()));
        }
    }
    let body = &raw[body_start.min(raw.len())..];
    let mut left = Vec::new();
    if matches!(r.status, Some(304) | Some(101)) {
        r.body = body.to_vec();
        return Ok((r, left));
    }
    let chunked = r.header("Transfer-Encoding").is_some_and(|v| {
        String::from_utf8_lossy(&v)
            .to_ascii_lowercase()
            .contains("chunked")
    });
    if chunked {
        let (b, l) = dechunk(body)?;
        r.body = b;
        left = l;
    } else if let Some(len) = r
        .header("Content-Length")
        .and_then(|v| String::from_utf8_lossy(&v).trim().parse::<usize>().ok())
    {
        if head_request {
            r.body = body.to_vec();
        } else if body.len() > len {
            r.body = body[..len].to_vec();
            left = body[len..].to_vec();
        } else {
            if body.len() < len {
                r.warnings.push(format!(
                    "response body truncated: {} expected, but got {}",
                    len,
                    body.len()
                ));
            }
            r.body = body.to_vec();
        }
    } else {
        r.body = body.to_vec();
    }
    Ok((r, left))
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let b = s[a..]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    &s[a..s.len() - b]
}

/// Decodes a chunked body; returns the data and whatever follows the last
/// chunk (and its trailers).
pub fn dechunk(raw: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let eol = match find(&raw[pos..], b"\r\n") {
            Some(e) => pos + e,
            None => {
                return Err(if pos >= raw.len() {
                    "invalid chunked body: no last chunk found".to_string()
                } else {
                    format!(
                        "invalid chunked body: incomplete chunk size line \"{}\"",
                        String::from_utf8_lossy(&raw[pos..]).escape_debug()
                    )
                });
            }
        };
        let line = String::from_utf8_lossy(&raw[pos..eol]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| {
            format!(
                "invalid chunked body: bad chunk size line \"{}\"",
                line.escape_debug()
            )
        })?;
        pos = eol + 2;
        if size == 0 {
            // trailers end with an empty line
            loop {
                let e = find(&raw[pos..], b"\r\n")
                    .ok_or("invalid chunked body: unterminated trailer after the last chunk")?;
                let empty = e == 0;
                pos += e + 2;
                if empty {
                    break;
                }
            }
            return Ok((out, raw[pos..].to_vec()));
        }
        if raw.len() < pos + size {
            return Err(format!(
                "invalid chunked body: chunk of {} bytes but only {} left",
                size,
                raw.len() - pos
            ));
        }
        out.extend_from_slice(&raw[pos..pos + size]);
        pos += size;
        if !raw[pos..].starts_with(b"\r\n") {
            return Err("invalid chunked body: expected CRLF after chunk data".into());
        }
        pos += 2;
    }
}
