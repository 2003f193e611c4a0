//! Lua code attached to a directive: where it comes from and its chunk name.

use std::cell::Cell;
use std::ffi::CString;
use std::rc::Rc;

use nginx_sys::{ngx_conf_t, ngx_http_complex_value_t};

use super::FuncRef;
use crate::lua::ffi::LUA_NOREF;

pub enum Source {
    /// Code written in nginx.conf, compiled at its first use, as
    /// lua-nginx-module does: a syntax error fails the requests that run
    /// the code (500, "failed to load inlined Lua code"), not the whole
    /// configuration.
    Inline { code: Vec<u8>, name: CString },
    /// A `*_by_lua_file` path, absolute or relative to the nginx prefix.
    File(FilePath),
}

pub enum FilePath {
    Fixed(Vec<u8>),
    /// A path with nginx variables, evaluated per request.
    Complex(*mut ngx_http_complex_value_t),
}

pub struct CodeInner {
    pub source: Source,
    /// The compiled chunk in the configuration's VM, once compiled
    /// (`LUA_NOREF` before).
    pub func: Cell<FuncRef>,
}

/// Shared between the blocks that inherit it.
#[derive(Clone)]
pub struct LuaCode(pub Rc<CodeInner>);

impl LuaCode {
    pub fn inline(code: Vec<u8>, name: CString) -> Self {
        LuaCode(Rc::new(CodeInner {
            source: Source::Inline { code, name },
            func: Cell::new(LUA_NOREF),
        }))
    }

    pub fn file(path: FilePath) -> Self {
        LuaCode(Rc::new(CodeInner {
            source: Source::File(path),
            func: Cell::new(LUA_NOREF),
        }))
    }
}

/// `=<directive>(<file>:<line>)`, as lua-nginx-module names inline chunks:
/// `<file>` is `nginx.conf` for any file of that name, the path relative
/// to nginx's conf prefix for the files below it, else the whole path; a
/// long one keeps its end after `...`, so the name fits LuaJIT's chunk
/// name display.
pub fn inline_name(cf: *mut ngx_conf_t, directive: &str) -> CString {
    // SAFETY: cf->conf_file is the file being parsed when a directive is
    // set, and cf->cycle the cycle being configured.
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
