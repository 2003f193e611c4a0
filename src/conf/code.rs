//! Lua code attached to a directive: where it comes from, its compiled
//! function once compiled, and set_by_lua's instruction in the rewrite
//! script.

use std::cell::Cell;
use std::ffi::CString;
use std::rc::Rc;

use nginx_sys::{ngx_http_complex_value_t, ngx_http_script_code_pt};

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

/// set_by_lua's instruction in the rewrite module's script: runs the code
/// and pushes the value for the following set-var instruction.
#[repr(C)]
pub struct SetCode {
    pub code: ngx_http_script_code_pt,
    pub lua: *const LuaCode,
    pub args: *const Vec<*mut ngx_http_complex_value_t>,
}
