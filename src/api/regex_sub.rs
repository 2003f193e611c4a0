//! ngx.re.sub and ngx.re.gsub: the replacement is a template (`$0`, `$1`,
//! `${1}`, `${name}`, `$$`) or a function of the captures table, which
//! `lua/re_sub.lua` calls from Lua so that it may wait.

use super::regex::{compile, exec_error, next_start, parse_opts, push_captures, settings};
use crate::glue::pcre2::Regex;
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{
    LuaRet, bad_arg, check_bytes, check_stack, ffi, lua_State, push_bytes, set_raw, to_bytes, type_name,
};

lua_fns! {
    c_sub => sub_impl,
    c_gsub => gsub_impl,
    c_matches => matches_impl,
}

/// Sets `sub` and `gsub` on the `ngx.re` table on top of `l`: the Lua
/// driver of `lua/re_sub.lua` over the template and match primitives.
///
/// # Safety
/// `l` must be the main state, not running, with `ngx.re` on top.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    let classic = [c_sub, c_gsub, c_matches];
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { super::run_face(l, lua_source!("lua/re_sub.lua"), c"=ngx.re.sub", &classic, 0, 2) }?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        set_raw(l, -3, c"gsub");
        set_raw(l, -2, c"sub");
    }
    Ok(())
}

unsafe fn sub_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { substitute(l, false, "sub") }
}

unsafe fn gsub_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { substitute(l, true, "gsub") }
}

/// A part of a parsed template: text (borrowed from the template, `$$`
/// being a static "$"), or a group's capture.
pub(crate) enum Piece<'t> {
    Lit(&'t [u8]),
    Group(usize),
}

/// A parsed template: on the stack for the usual handful of parts, so
/// that a substitution allocates nothing but its result.
pub(crate) type Pieces<'t> = smallvec::SmallVec<[Piece<'t>; 8]>;

/// Parses a replacement template with lua-nginx-module's grammar: `$$`,
/// `$N`, `${N}`, and (ours) `$name`/`${name}` for a named group of `re`.
/// A malformed one gives the line lua-nginx-module logs for it.
pub(crate) fn parse_template<'t>(t: &'t [u8], re: &Regex) -> Result<Pieces<'t>, String> {
    let invalid = || {
        format!(
            "lua script: invalid capturing variable name found in \"{}\"",
            String::from_utf8_lossy(t)
        )
    };
    let mut out = Pieces::new();
    // The literal text since the last group: t[lit..i].
    let mut lit = 0;
    let mut i = 0;
    while i < t.len() {
        if t[i] != b'$' {
            i += 1;
            continue;
        }
        if lit < i {
            out.push(Piece::Lit(&t[lit..i]));
        }
        i += 1;
        match t.get(i) {
            None => return Err(invalid()),
            Some(b'$') => {
                out.push(Piece::Lit(b"$"));
                i += 1;
                lit = i;
                continue;
            }
            _ => {}
        }
        let bracket = t[i] == b'{';
        if bracket {
            i += 1;
            if i == t.len() {
                return Err(invalid());
            }
        }
        let numeric = t[i].is_ascii_digit();
        let start = i;
        while i < t.len()
            && (t[i].is_ascii_digit() || !numeric && (t[i].is_ascii_alphanumeric() || t[i] == b'_'))
        {
            i += 1;
        }
        let name = &t[start..i];
        if bracket {
            if t.get(i) != Some(&b'}') {
                return Err(format!(
                    "the closing bracket in \"{}\" variable is missing",
                    String::from_utf8_lossy(name)
                ));
            }
            i += 1;
        }
        if name.is_empty() {
            return Err(invalid());
        }
        let group = if numeric {
            // Digits past any group number are just an empty group.
            name.iter()
                .try_fold(0usize, |n, &d| {
                    n.checked_mul(10)?.checked_add((d - b'0') as usize)
                })
                .unwrap_or(usize::MAX)
        } else {
            match re.names.iter().find(|(_, n)| n == name) {
                Some((n, _)) => *n,
                None => {
                    return Err(format!(
                        "attempt to use named capturing variable \"{}\" (named captures not supported yet)",
                        String::from_utf8_lossy(name)
                    ));
                }
            }
        };
        out.push(Piece::Group(group));
        lit = i;
    }
    if lit < t.len() {
        out.push(Piece::Lit(&t[lit..]));
    }
    Ok(out)
}

/// Substitutes `pieces` for the first match of `re` in `subj` (every match
/// when `global`), handing the result to `out` in parts: the count of
/// matches (with nothing handed over for none).
pub(crate) fn substitute_into(
    re: &Regex,
    subj: &[u8],
    pieces: &[Piece],
    global: bool,
    limit: usize,
    mut out: impl FnMut(&[u8]),
) -> Result<usize, String> {
    let mut copied = 0usize;
    let count = for_each_match(re, subj, global, limit, |s, e| {
        out(&subj[copied..s]);
        for p in pieces {
            match p {
                Piece::Lit(b) => out(b),
                Piece::Group(n) => {
                    if let Some((a, b)) = re.group(*n) {
                        out(&subj[a..b]);
                    }
                }
            }
        }
        copied = e;
    })?;
    if count > 0 {
        out(&subj[copied..]);
    }
    Ok(count)
}

unsafe fn fail(l: *mut lua_State, err: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_pushnil(l);
        ffi::lua_pushnil(l);
        push_bytes(l, err.as_bytes());
    }
    Ok(3)
}

/// Calls `each(s, e)` for the first match of `re` in `subj` (every match
/// when `global`), with the match data of `re` set; returns the count.
fn for_each_match(
    re: &Regex,
    subj: &[u8],
    global: bool,
    limit: usize,
    mut each: impl FnMut(usize, usize),
) -> Result<usize, String> {
    let (mut search, mut count) = (0usize, 0usize);
    loop {
        match re.exec(subj, search, limit) {
            Ok(None) => break,
            Err(rc) => return Err(exec_error(rc)),
            Ok(Some(_)) => {}
        }
        let (s, e) = re.group(0).unwrap_or_default();
        count += 1;
        each(s, e);
        if !global {
            break;
        }
        match next_start(re, subj, s, e) {
            Some(next) => search = next,
            None => break,
        }
    }
    Ok(count)
}

/// `ngx.re.sub/gsub(subject, regex, template, options?)`: `new, n`.
unsafe fn substitute(l: *mut lua_State, global: bool, fname: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    let subj = unsafe { check_bytes(l, 1, fname) }?;
    // SAFETY: `l` is the running state (callers' duty)
    let pat = unsafe { check_bytes(l, 2, fname) }?;
    // SAFETY: `l` is the running state (callers' duty)
    let template = match unsafe { ffi::lua_type(l, 3) } {
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => unsafe { to_bytes(l, 3) }.unwrap_or_default(),
        ffi::LUA_TNONE => return Err(bad_arg(3, fname, "string expected, got no value")),
        _ => {
            return Err(bad_arg(
                3,
                fname,
                // SAFETY: `l` is the running state (callers' duty)
                &format!("string expected, got {}", unsafe { type_name(l, 3) }),
            ));
        }
    };
    // SAFETY: `l` is the running state (callers' duty)
    let o = unsafe { parse_opts(l, 4, fname) }?;
    let (cache_max, limit) = settings();
    let re = match compile(pat, &o, cache_max) {
        Ok(re) => re,
        // SAFETY: `l` is the running state (callers' duty)
        Err(e) => return unsafe { fail(l, &e) },
    };
    let pieces = match parse_template(template, &re) {
        Ok(p) => p,
        Err(line) => {
            crate::glue::log::error(super::log::current_log(), nginx_sys::NGX_LOG_ERR, line.as_bytes());
            // SAFETY: `l` is the running state (callers' duty)
            return unsafe { fail(l, "failed to compile the replacement template") };
        }
    };
    let mut out = Vec::new();
    let count = match substitute_into(&re, subj, &pieces, global, limit, |b| out.extend_from_slice(b)) {
        Ok(n) => n,
        // SAFETY: `l` is the running state (callers' duty)
        Err(e) => return unsafe { fail(l, &e) },
    };
    if count == 0 {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pushvalue(l, 1) };
    } else {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { push_bytes(l, &out) };
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushinteger(l, count as ffi::lua_Integer) };
    Ok(2)
}

/// The match primitive of `lua/re_sub.lua`: `(subject, regex, options,
/// global, fname)` gives `{from, to, captures, ...}, n` (0-based `from`,
/// exclusive `to`), `nil, nil, err` on a regex failure, and `false, msg`
/// for an argument error, which the Lua side raises at its caller.
unsafe fn matches_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let fname = if unsafe { ffi::lua_toboolean(l, 4) } != 0 {
        "gsub"
    } else {
        "sub"
    };
    // SAFETY: `l` is the running state Lua called this API function with
    match unsafe { collect_matches(l, ffi::lua_toboolean(l, 4) != 0, fname) } {
        Ok(n) => Ok(n),
        Err(msg) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe {
                ffi::lua_pushboolean(l, 0);
                push_bytes(l, msg.as_bytes());
            }
            Ok(2)
        }
    }
}

unsafe fn collect_matches(l: *mut lua_State, global: bool, fname: &str) -> LuaRet {
    // SAFETY: `l` is the running state (callers' duty)
    let subj = unsafe { check_bytes(l, 1, fname) }?;
    // SAFETY: `l` is the running state (callers' duty)
    let pat = unsafe { check_bytes(l, 2, fname) }?;
    // SAFETY: `l` is the running state (callers' duty)
    let o = unsafe { parse_opts(l, 3, fname) }?;
    let (cache_max, limit) = settings();
    let re = match compile(pat, &o, cache_max) {
        Ok(re) => re,
        // SAFETY: `l` is the running state (callers' duty)
        Err(e) => return unsafe { fail(l, &e) },
    };
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { check_stack(l, 4) })?;
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_createtable(l, 3, 0) };
    // SAFETY: `l` is the running state (callers' duty)
    let t = unsafe { ffi::lua_gettop(l) };
    let mut slot = 0;
    let count = for_each_match(&re, subj, global, limit, |s, e| {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe {
            ffi::lua_pushinteger(l, s as ffi::lua_Integer);
            ffi::lua_rawseti(l, t, slot + 1);
            ffi::lua_pushinteger(l, e as ffi::lua_Integer);
            ffi::lua_rawseti(l, t, slot + 2);
            push_captures(l, &re, subj, o.dupnames);
            ffi::lua_rawseti(l, t, slot + 3);
        }
        slot += 3;
    });
    match count {
        Ok(n) => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushinteger(l, n as ffi::lua_Integer) };
            Ok(2)
        }
        // SAFETY: `l` is the running state (callers' duty)
        Err(e) => unsafe { fail(l, &e) },
    }
}
