//! `ngx.req.raw_header()`: the main request's head as the client sent it,
//! read back from the connection's buffers (nginx parsed it in place), as
//! lua-nginx-module reads it: the header buffer, then the large header
//! buffers nginx moved the rest into.

use nginx_sys::{ngx_buf_t, ngx_http_request_t};

/// The head of `r`'s main request, line breaks as the client sent them,
/// without the request line if `no_request_line`.
///
/// # Safety
/// `r` must be a live request (not a fake one).
pub unsafe fn read(r: *mut ngx_http_request_t, no_request_line: bool) -> Result<Vec<u8>, String> {
    // SAFETY: `r` is a live request (caller's contract)
    let mr = unsafe { (*r).main };
    // SAFETY: a live request's main request is live
    if !unsafe { (*mr).stream.is_null() } {
        return Err("http2 requests not supported yet".into());
    }
    // SAFETY: a live request's main request is live
    let line = unsafe { (*mr).request_line };
    if line.len == 0 || line.data.is_null() {
        // an invalid request has no head to give
        return Ok(Vec::new());
    }
    // SAFETY: the line break after the request line is in the same buffer
    let break_len = if unsafe { *line.data.add(line.len) } == b'\r' {
        2
    } else {
        1
    };
    // Where the copy starts: the request line, or just after it.
    let from = if no_request_line {
        // SAFETY: the line and its break lie in one buffer
        unsafe { line.data.add(line.len + break_len) }
    } else {
        line.data
    };
    let holds_line = |b: *mut ngx_buf_t| {
        // SAFETY: `b` is a live buffer of the connection; the pointers are
        // only compared (the line and its break lie in one buffer)
        unsafe { line.data >= (*b).start && line.data.add(line.len + break_len) <= (*b).pos }
    };

    let mut out = Vec::new();
    // SAFETY: a live request's connection and its buffer are live
    let cbuf = unsafe { (*(*mr).connection).buffer };
    let mut found = false;
    if !cbuf.is_null() && holds_line(cbuf) {
        found = true;
        // SAFETY: `from` and `pos` lie in the connection's buffer, from <= pos
        unsafe { copy_from(&mut out, from, (*cbuf).pos) };
        // SAFETY: the main request is live
        if cbuf != unsafe { (*mr).header_in } {
            trim_partial_line(&mut out, 0);
        }
        restore_separators(&mut out, 0, false);
    }
    // SAFETY: `mr` is the live main request
    for b in unsafe { busy_oldest_first(mr) } {
        if !found {
            // SAFETY: `b` is a live header buffer of the connection
            let overlaps = line.data < unsafe { (*b).pos }
                && unsafe { line.data.add(line.len + break_len) } > unsafe { (*b).start };
            if !overlaps {
                continue;
            }
            found = true;
            let start = out.len();
            // SAFETY: `from` and `pos` lie in this buffer
            unsafe { copy_from(&mut out, from, (*b).pos) };
            trim_partial_line(&mut out, start);
            restore_separators(&mut out, start, true);
        } else {
            let start = out.len();
            // SAFETY: `start` and `pos` bound the data of this live buffer
            unsafe { copy_from(&mut out, (*b).start, (*b).pos) };
            trim_partial_line(&mut out, start);
            restore_separators(&mut out, start, true);
        }
        // SAFETY: the main request is live
        if b == unsafe { (*mr).header_in } {
            break;
        }
    }
    cut_after_blank_line(&mut out);
    Ok(out)
}

/// The large header buffers, oldest first (nginx chains the newest first).
unsafe fn busy_oldest_first(mr: *mut ngx_http_request_t) -> Vec<*mut ngx_buf_t> {
    // SAFETY: `mr` is the live main request (read's contract)
    let hc = unsafe { (*mr).http_connection };
    let mut bufs = Vec::new();
    // SAFETY: `hc` is the request's live http connection
    if hc.is_null() || unsafe { (*hc).nbusy } <= 0 {
        return bufs;
    }
    // SAFETY: `hc` is the request's live http connection
    let mut cl = unsafe { (*hc).busy };
    while !cl.is_null() {
        // SAFETY: `cl` is a live link of the busy chain
        bufs.push(unsafe { (*cl).buf });
        // SAFETY: `cl` is a live link of the busy chain
        cl = unsafe { (*cl).next };
    }
    bufs.reverse();
    bufs
}

unsafe fn copy_from(out: &mut Vec<u8>, from: *const u8, to: *const u8) {
    if to > from {
        // SAFETY: `from` and `to` bound live bytes of one buffer (callers' duty), to > from
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(from, to.offset_from(from) as usize) });
    }
}

/// A buffer nginx moved on from may end in the middle of a header line,
/// whose start went to the next buffer: drop that partial line.
fn trim_partial_line(out: &mut Vec<u8>, start: usize) {
    while out.len() > start && !matches!(out[out.len() - 1], b'\n' | 0) {
        out.pop();
    }
}

/// nginx wrote NULs over the ':' after each name and the line break after
/// each value: put back what the client sent, alternating name and value
/// ends. `at_end_is_break`: a NUL ending the buffer was a line break.
fn restore_separators(out: &mut [u8], start: usize, at_end_is_break: bool) {
    let mut nuls = 0;
    let len = out.len();
    for i in start..len {
        if out[i] != 0 {
            continue;
        }
        nuls += 1;
        let next = out.get(i + 1).copied();
        out[i] = if next.is_none() && at_end_is_break {
            b'\n'
        } else if next == Some(b'\n') {
            b'\r'
        } else if nuls % 2 == 1 {
            b':'
        } else {
            b'\n'
        };
    }
}

/// Body bytes nginx read with the head may follow it: end at the blank line.
fn cut_after_blank_line(out: &mut Vec<u8>) {
    for end in [&b"\r\n\r\n"[..], b"\r\n\n", b"\n\r\n"] {
        if let Some(i) = out.windows(end.len()).position(|w| w == end) {
            out.truncate(i + end.len());
            return;
        }
    }
    let mut p = out.len();
    while p >= 3 {
        p -= 1;
        if out[p] == b'\n' && out[p - 1] == b'\r' {
            out[p - 1] = b'\n';
            out.truncate(p + 1);
            return;
        }
        if out[p] == b'\n' && out[p - 1] == b'\n' {
            out.truncate(p + 1);
            return;
        }
    }
}
