//! `require("ngx.re").split`: the walk over a subject's fields, shared by
//! the classic C function here and the FFI function of `regex_ffi.rs`
//! (which `lua/regex.lua` calls for a split without a ctx table, so that
//! the loop building the result stays in compiled traces).

use std::ffi::c_int;

use super::regex::{compile, ctx_start, exec_error, fail, next_start, parse_opts, set_ctx_pos, settings};
use crate::glue::pcre2::Regex;
use crate::lua::lua_fns;
use crate::lua::{LuaRet, check_bytes, ffi, lua_State, push_bytes};

lua_fns! {
    split => split_impl,
}

/// Sets `split` in the `ngx.re` module table on top of `l`.
///
/// # Safety
/// `l` is a VM's main state being set up, the module table on top.
pub(super) unsafe fn install(l: *mut lua_State) {
    // SAFETY: the caller's contract
    unsafe { crate::lua::set_fn(l, -1, c"split", split) };
}

/// Why a walk stopped before the end.
pub enum Stop {
    /// The match failed with this PCRE2 code.
    Exec(c_int),
    /// Setting `ctx.pos` raised this error.
    Raised(String),
}

/// Hands the fields to the caller, holding empty ones back until a
/// non-empty one follows: with no max, those at the end are dropped.
struct Fields<F: FnMut(usize, usize)> {
    field: F,
    held: usize,
}

impl<F: FnMut(usize, usize)> Fields<F> {
    fn push(&mut self, start: usize, end: usize) {
        if start == end {
            self.held += 1;
            return;
        }
        self.flush();
        (self.field)(start, end);
    }

    fn flush(&mut self) {
        for _ in 0..self.held {
            (self.field)(0, 0);
        }
        self.held = 0;
    }
}

/// Splits `subj` from byte `from` by `re`: `field` gets the byte range of
/// each field in order (the separator's first group, when it has one and
/// it took part, being a field of its own), `matched` the end of each
/// separator (for `ctx.pos`). At most `max` fields when `max` > 0;
/// without one, the empty fields at the end go when the subject ends with
/// a separator (lua-resty-core's split, Perl's rule). An empty match right
/// at the start of a field does not end it.
pub fn walk(
    re: &Regex,
    subj: &[u8],
    mut from: usize,
    max: i64,
    limit: usize,
    mut matched: impl FnMut(usize) -> Result<(), String>,
    field: impl FnMut(usize, usize),
) -> Result<(), Stop> {
    let mut out = Fields { field, held: 0 };
    let mut fields = 1;
    let mut search = from;
    while max <= 0 || fields < max {
        match re.exec(subj, search, limit) {
            Ok(None) => break,
            Err(rc) => return Err(Stop::Exec(rc)),
            Ok(Some(_)) => {}
        }
        let (s, e) = re.group(0).unwrap_or_default();
        let sep = if re.ncaptures > 0 { re.group(1) } else { None };
        matched(e).map_err(Stop::Raised)?;
        if e == s && s >= subj.len() {
            break;
        }
        if e == s && s == from {
            match next_start(re, subj, s, e) {
                Some(next) if next < subj.len() => {
                    search = next;
                    continue;
                }
                _ => break,
            }
        }
        out.push(from, s);
        if let Some((cs, ce)) = sep {
            out.push(cs, ce);
        }
        fields += 1;
        from = e;
        match next_start(re, subj, s, e) {
            Some(next) if e < subj.len() => search = next,
            _ => break,
        }
    }
    if max > 0 || from < subj.len() {
        out.flush();
        (out.field)(from.min(subj.len()), subj.len());
    }
    Ok(())
}

/// `require("ngx.re").split(subject, regex, options?, ctx?, max?, res?)`
unsafe fn split_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let subj = unsafe { check_bytes(l, 1, "split") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let pat = unsafe { check_bytes(l, 2, "split") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let o = unsafe { parse_opts(l, 3, "split") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let start = unsafe { ctx_start(l, 4, "split") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let max = match unsafe { ffi::lua_type(l, 5) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => 0,
        // SAFETY: `l` is the running state Lua called this API function with
        _ => unsafe { crate::lua::check_number(l, 5, "split") }? as i64,
    };
    // SAFETY: `l` is the running state Lua called this API function with
    match unsafe { ffi::lua_type(l, 6) } {
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TNONE | ffi::LUA_TNIL => unsafe { ffi::lua_createtable(l, 4, 0) },
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TTABLE => unsafe { ffi::lua_pushvalue(l, 6) },
        _ => return Err("res is not a table".into()),
    }
    let from = start.unwrap_or(0);
    let mut n = 0;
    if from < subj.len() {
        let (cache_max, limit) = settings();
        let re = match compile(pat, &o, cache_max) {
            Ok(re) => re,
            // SAFETY: `l` is the running state Lua called this API function with
            Err(e) => return unsafe { fail(l, 1, &e) },
        };
        let matched = |end: usize| match start {
            // SAFETY: `l` is the running state Lua called this API function with
            Some(_) => unsafe { set_ctx_pos(l, 4, end + 1) },
            None => Ok(()),
        };
        let field = |s: usize, e: usize| {
            n += 1;
            // SAFETY: `l` is the running state, the result table on top
            unsafe {
                push_bytes(l, &subj[s..e]);
                ffi::lua_rawseti(l, -2, n);
            }
        };
        match walk(&re, subj, from, max, limit, matched, field) {
            Ok(()) => {}
            // SAFETY: `l` is the running state Lua called this API function with
            Err(Stop::Exec(rc)) => return unsafe { fail(l, 1, &exec_error(rc)) },
            Err(Stop::Raised(e)) => return Err(e),
        }
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe {
        ffi::lua_pushnil(l);
        ffi::lua_rawseti(l, -2, n + 1);
    }
    Ok(1)
}
