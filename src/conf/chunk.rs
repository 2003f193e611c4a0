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
    /// The compiled inline chunk in the configuration's VM.
    pub func: Cell<FuncRef>,
}

/// Shared between the blocks that inherit it.
#[derive(Clone)]
pub struct LuaCode(pub Rc<CodeInner>);

impl LuaCode {
    pub fn inline(func: FuncRef) -> Self {
        LuaCode(Rc::new(CodeInner {
            source: Source::Inline,
            func: Cell::new(func),
        }))
    }

    pub fn file(path: FilePath) -> Self {
        LuaCode(Rc::new(CodeInner {
            source: Source::File(path),
            func: Cell::new(LUA_NOREF),
        }))
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
