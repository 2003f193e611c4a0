//! Chunk names of inline code, as lua-nginx-module builds them.

use std::ffi::CString;

use nginx_sys::ngx_conf_t;

/// `=<directive>(<file>:<line>)`, as lua-nginx-module names inline chunks:
/// `<file>` is `nginx.conf` for any file of that name, the path relative
/// to nginx's conf prefix for the files below it, else the whole path; a
/// long one keeps its end after `...`, so the name fits LuaJIT's chunk
/// name display.
///
/// # Safety
/// `cf` must be the configuration being parsed, inside a directive's setter
/// (its `conf_file` and `cycle` are then live).
pub unsafe fn inline_name(cf: *mut ngx_conf_t, directive: &str) -> CString {
    // SAFETY: cf->conf_file is the file being parsed when a directive is
    // set, and cf->cycle the cycle being configured (caller's contract).
    let (file, line, conf_prefix) = unsafe {
        let f = &*(*cf).conf_file;
        (
            f.file.name.as_bytes(),
            f.line,
            (*(*cf).cycle).conf_prefix.as_bytes(),
        )
    };
    let line = line.to_string();
    let shown = chunk_file_name(file, conf_prefix, directive.len() + line.len());
    let name = format!("={}({}:{})", directive, String::from_utf8_lossy(&shown), line);
    CString::new(name).unwrap_or_default()
}

/// The longest chunk name lua-nginx-module builds, in bytes.
const CHUNK_NAME_MAX: usize = 56;

fn chunk_file_name(file: &[u8], conf_prefix: &[u8], reserve: usize) -> Vec<u8> {
    if file.ends_with(b"/nginx.conf") {
        return b"nginx.conf".to_vec();
    }
    let (shown, fits) = match file.strip_prefix(conf_prefix) {
        Some(rel) if !conf_prefix.is_empty() && !rel.is_empty() => {
            (rel, rel.len() + reserve <= CHUNK_NAME_MAX)
        }
        _ => (file, file.len() + reserve <= CHUNK_NAME_MAX),
    };
    if fits {
        return shown.to_vec();
    }
    let keep = CHUNK_NAME_MAX.saturating_sub(reserve + 3).min(shown.len());
    [b"...", &shown[shown.len() - keep..]].concat()
}
