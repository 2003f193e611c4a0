//! ngx.re.sub and ngx.re.gsub: the replacement is a template (`$0`, `$1`,
//! `${1}`, `${name}`, `$$`) or a function of the captures table.

use std::ffi::c_int;

use super::regex::{compile, exec_error, next_start, parse_opts, push_captures, settings};
use crate::glue::pcre2::Regex;
use crate::runtime::lua::{
    bad_arg, check_bytes, ffi, guard, lua_State, push_bytes, set_fn, to_bytes, type_name, LuaRet,
};

/// What a body returns when the replacement function raised an error: the
/// error value is left on the stack for the wrapper to raise unchanged.
const RETHROW: c_int = -1;

macro_rules! rethrowing_fn {
    ($name:ident => $body:path) => {
        #[allow(non_upper_case_globals)]
        const $name: ffi::lua_CFunction = {
            unsafe extern "C-unwind" fn raw(l: *mut lua_State) -> isize {
                // SAFETY: called by Lua with its own running state. On
                // RETHROW the body has returned, so no Rust value with a
                // destructor is alive when lua_error unwinds this frame.
                unsafe {
                    let n = guard(l, $body);
                    if n == RETHROW {
                        ffi::lua_error(l);
                    }
                    n as isize
                }
            }
            // SAFETY: as in `lua_fns!`: same calling convention, an isize
            // return fills the whole register.
            unsafe {
                std::mem::transmute::<unsafe extern "C-unwind" fn(*mut lua_State) -> isize, ffi::lua_CFunction>(
                    raw,
                )
            }
        };
    };
}

rethrowing_fn!(re_sub => sub_impl);
rethrowing_fn!(re_gsub => gsub_impl);

/// # Safety
/// The `ngx.re` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    set_fn(l, -1, c"sub", re_sub);
    set_fn(l, -1, c"gsub", re_gsub);
}

unsafe fn sub_impl(l: *mut lua_State) -> LuaRet {
    substitute(l, false, "sub")
}

unsafe fn gsub_impl(l: *mut lua_State) -> LuaRet {
    substitute(l, true, "gsub")
}

enum Piece {
    Lit(Vec<u8>),
    Group(usize),
}

/// Parses a replacement template; `None` when it is malformed (a `$` not
/// followed by `$`, digits or `{digits|name}`, or an unknown name).
fn parse_template(t: &[u8], re: &Regex) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] != b'$' {
            lit.push(t[i]);
            i += 1;
            continue;
        }
        i += 1;
        let group = match *t.get(i)? {
            b'$' => {
                lit.push(b'$');
                i += 1;
                continue;
            }
            b'0'..=b'9' => {
                let end = t[i..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(t.len(), |p| i + p);
                let n = std::str::from_utf8(&t[i..end]).ok()?.parse().ok()?;
                i = end;
                n
            }
            b'{' => {
                let close = i + t[i..].iter().position(|&c| c == b'}')?;
                let name = &t[i + 1..close];
                i = close + 1;
                if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
                    std::str::from_utf8(name).ok()?.parse().ok()?
                } else {
                    re.names.iter().find(|(_, n)| n == name)?.0
                }
            }
            _ => return None,
        };
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        out.push(Piece::Group(group));
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Some(out)
}

enum Replace {
    Template(Vec<Piece>),
    Function,
}

unsafe fn fail(l: *mut lua_State, err: &str) -> LuaRet {
    ffi::lua_pushnil(l);
    ffi::lua_pushnil(l);
    push_bytes(l, err.as_bytes());
    Ok(3)
}

/// `ngx.re.sub/gsub(subject, regex, replace, options?)`: `new, n`.
unsafe fn substitute(l: *mut lua_State, global: bool, fname: &str) -> LuaRet {
    let subj = check_bytes(l, 1, fname)?;
    let pat = check_bytes(l, 2, fname)?;
    let is_fn = match ffi::lua_type(l, 3) {
        ffi::LUA_TFUNCTION => true,
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => false,
        ffi::LUA_TNONE => return Err(bad_arg(3, fname, "string expected, got no value")),
        _ => {
            return Err(bad_arg(
                3,
                fname,
                &format!("string expected, got {}", type_name(l, 3)),
            ))
        }
    };
    let o = parse_opts(l, 4, fname)?;
    let (cache_max, limit) = settings();
    let re = match compile(pat, &o, cache_max) {
        Ok(re) => re,
        Err(e) => return fail(l, &e),
    };
    let replace = if is_fn {
        Replace::Function
    } else {
        match parse_template(to_bytes(l, 3).unwrap_or_default(), &re) {
            Some(t) => Replace::Template(t),
            None => return fail(l, "failed to compile the replacement template"),
        }
    };
    let mut out = Vec::new();
    let (mut copied, mut search, mut count) = (0usize, 0usize, 0);
    loop {
        match re.exec(subj, search, limit) {
            Ok(None) => break,
            Err(rc) => return fail(l, &exec_error(rc)),
            Ok(Some(_)) => {}
        }
        let (s, e) = re.group(0).unwrap_or_default();
        count += 1;
        out.extend_from_slice(&subj[copied..s]);
        match &replace {
            Replace::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Lit(b) => out.extend_from_slice(b),
                        Piece::Group(n) => {
                            if let Some((a, b)) = re.group(*n) {
                                out.extend_from_slice(&subj[a..b]);
                            }
                        }
                    }
                }
            }
            Replace::Function => {
                // The function may run ngx.re itself and reuse this
                // regex's match data: only `s` and `e` are used after it.
                ffi::lua_pushvalue(l, 3);
                push_captures(l, &re, subj, o.dupnames);
                if ffi::lua_pcall(l, 1, 1, 0) != 0 {
                    return Ok(RETHROW);
                }
                match ffi::lua_type(l, -1) {
                    ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                        out.extend_from_slice(to_bytes(l, -1).unwrap_or_default());
                    }
                    _ => {
                        let got = type_name(l, -1);
                        return Err(format!(
                            "attempt to use a {got} value as the replacement of '{fname}'"
                        ));
                    }
                }
                ffi::lua_pop(l, 1);
            }
        }
        copied = e;
        if !global {
            break;
        }
        match next_start(&re, subj, s, e) {
            Some(next) => {
                out.extend_from_slice(&subj[e..next]);
                copied = next;
                search = next;
            }
            None => break,
        }
    }
    if count == 0 {
        ffi::lua_pushvalue(l, 1);
    } else {
        out.extend_from_slice(&subj[copied..]);
        push_bytes(l, &out);
    }
    ffi::lua_pushinteger(l, count as ffi::lua_Integer);
    Ok(2)
}
