//! Lua code attached to a directive: where it comes from and its chunk name.

use std::cell::Cell;
use std::ffi::CString;
use std::rc::Rc;

use nginx_sys::{ngx_conf_t, ngx_http_complex_value_t};

use super::FuncRef;
use crate::runtime::lua::ffi::LUA_NOREF;

pub enum Source {
    /// Code written in nginx.conf, compiled once at configuration time.
    Inline,
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
    /// `=content_by_lua(nginx.conf:40)` for inline code, so error messages
    /// read as lua-nginx-module's.
    pub chunk_name: CString,
    /// The compiled inline chunk in the configuration's VM.
    pub func: Cell<FuncRef>,
    /// Extra arguments of `set_by_lua*`, as complex values.
    pub args: Vec<*mut ngx_http_complex_value_t>,
}

/// Shared between the blocks that inherit it.
#[derive(Clone)]
pub struct LuaCode(pub Rc<CodeInner>);

impl LuaCode {
    pub fn inline(chunk_name: CString, func: FuncRef) -> Self {
        LuaCode(Rc::new(CodeInner {
            source: Source::Inline,
            chunk_name,
            func: Cell::new(func),
            args: Vec::new(),
        }))
    }

    pub fn file(path: FilePath) -> Self {
        LuaCode(Rc::new(CodeInner {
            source: Source::File(path),
            chunk_name: CString::default(),
            func: Cell::new(LUA_NOREF),
            args: Vec::new(),
        }))
    }

    pub fn with_args(self, args: Vec<*mut ngx_http_complex_value_t>) -> Self {
        let mut inner = Rc::try_unwrap(self.0).unwrap_or_else(|_| unreachable!("fresh code"));
        inner.args = args;
        LuaCode(Rc::new(inner))
    }
}

/// `=<directive>(<conf file basename>:<line>)`, as lua-nginx-module names
/// inline chunks.
pub fn inline_name(cf: *mut ngx_conf_t, directive: &str) -> CString {
    // SAFETY: cf->conf_file is the file being parsed when a directive is set.
    let (file, line) = unsafe {
        let f = &*(*cf).conf_file;
        (f.file.name.as_bytes().to_vec(), f.line)
    };
    let base = file.rsplit(|&c| c == b'/').next().unwrap_or(&file);
    let name = format!("={}({}:{})", directive, String::from_utf8_lossy(base), line);
    CString::new(name).unwrap_or_default()
}

/// The chunk name of a Lua file: `@` then its path, so errors show the path.
pub fn file_name(path: &[u8]) -> CString {
    let mut v = Vec::with_capacity(path.len() + 1);
    v.push(b'@');
    v.extend(path.iter().copied().filter(|&c| c != 0));
    CString::new(v).unwrap_or_default()
}
