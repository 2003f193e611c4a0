//! The one loader of every `*_by_lua`, `*_by_lua_block` and `*_by_lua_file`
//! directive: its value becomes a [`LuaCode`].

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_str_t};

use super::args::{ConfErr, arg, arg_str, conf_error};
use super::{chunk_name, lua_block};
use crate::conf::LuaCode;
use crate::conf::code::FilePath;

/// The code of the directive being parsed, told apart by its name's suffix:
/// `_file` takes the path in argument `i`, `_block` reads the block that
/// follows, any other takes the inline code in argument `i`. Inline code is
/// named after the directive without its suffix, at the directive's line.
///
/// # Safety
/// `cf` and `cmd` as nginx passes them to a setter.
pub unsafe fn load(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, i: usize) -> Result<LuaCode, ConfErr> {
    // SAFETY: `cmd` is the directive's entry in our static command table
    let name = unsafe { (*cmd).name.as_bytes() };
    if name.ends_with(b"_file") {
        // SAFETY: `cf` is being parsed and its command took argument `i` (caller's contract)
        return match unsafe { file_path(cf, arg_str(cf, i)) } {
            Ok(p) => Ok(LuaCode::file(p)),
            // SAFETY: `cf` is the configuration being parsed
            Err(e) => Err(unsafe { conf_error(cf, &e) }),
        };
    }
    let (block, base) = match name.strip_suffix(b"_block") {
        Some(base) => (true, base),
        None => (false, name),
    };
    // Named before a block is read: the line is the directive's.
    // SAFETY: `cf` is the configuration being parsed, in this setter (caller's contract)
    let chunk_name = unsafe { chunk_name::inline_name(cf, &String::from_utf8_lossy(base)) };
    let src = if block {
        // SAFETY: `cf` is the configuration being parsed, in this setter (caller's contract)
        unsafe { lua_block::read(cf) }.map_err(|e| unsafe { conf_error(cf, &e) })?
    } else {
        // SAFETY: `cf` is being parsed and its command took argument `i` (caller's contract)
        (unsafe { arg(cf, i) }).to_vec()
    };
    Ok(LuaCode::inline(src, chunk_name))
}

/// A `*_by_lua_file` path: compiled as a complex value when it has
/// variables, else made absolute against the prefix now.
unsafe fn file_path(cf: *mut ngx_conf_t, value: ngx_str_t) -> Result<FilePath, String> {
    let v = value.as_bytes();
    if v.is_empty() {
        return Err("invalid empty file path".into());
    }
    if v.contains(&b'$') {
        // SAFETY: `cf` is the configuration being parsed (load's contract)
        let cv =
            unsafe { crate::glue::complex::compile(cf, value) }.ok_or("failed to compile the file path")?;
        return Ok(FilePath::Complex(cv));
    }
    // SAFETY: `cf` is the configuration being parsed (load's contract)
    Ok(FilePath::Fixed(unsafe { crate::glue::complex::prefixed(cf, v) }))
}
