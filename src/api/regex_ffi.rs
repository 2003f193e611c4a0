//! The plain case of `ngx.re.match` and `ngx.re.find` as a C function for
//! LuaJIT's FFI: our Lua wrappers (`lua/regex.lua`) call it from compiled
//! traces and build the captures table in Lua, instead of leaving the
//! trace for a C function on every call (HTTP clients, routers and
//! template code run these in loops). lua-nginx-module's own FFI for
//! regexes hands compiled regex objects to Lua; ours keeps them in the
//! regex cache, so the name is ours.
//!
//! The same for `ngx.re.split` without a ctx table: the offsets of the
//! fields, the strings being made in Lua; and for `ngx.re.sub`/`gsub` with
//! a template: the result in the scratch buffer (`ffi_scratch.rs`).
//!
//! They never raise and cover only a match that succeeds or finds
//! nothing; anything else (a bad pattern or option, a match error, named
//! groups, the DFA mode, more groups than the caller's vector holds) is
//! declined, and the Lua side calls the classic function, which gives the
//! result or error lua-nginx-module gives.

use std::ffi::c_int;
use std::rc::Rc;

use nginx_sys::NGX_DECLINED;

use std::cell::Cell;

use super::ffi_scratch;
use super::regex::{compile, opts_from, settings};
use super::regex_split::walk;
use super::regex_sub::{parse_template, substitute_into};
use crate::glue::catch;
use crate::glue::loop_local::loop_local;
use crate::glue::pcre2::Regex;

const DECLINED: c_int = NGX_DECLINED as c_int;

/// The slice of `len` bytes at `p` (which may be null when `len` is 0).
///
/// # Safety
/// `p` is readable for `len` bytes while the slice is used.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract
    unsafe { std::slice::from_raw_parts(p, len) }
}

/// The regex of `pat` with the option letters `opts` and the match limit,
/// or None for a call to decline: a bad option or pattern, the DFA mode,
/// duplicate names, a subject too long for C int offsets.
fn regex_for(pat: &[u8], opts: &[u8], subj: &[u8]) -> Option<(Rc<Regex>, usize)> {
    let o = opts_from(opts).ok()?;
    if o.mode.dfa || o.dupnames || subj.len() > c_int::MAX as usize {
        return None;
    }
    let (cache_max, limit) = settings();
    let re = compile(pat, &o, cache_max).ok()?;
    Some((re, limit))
}

/// Runs `pat` with the option letters `opts` on `subj` from byte `start`:
/// the number of groups plus one, their offsets in `ovec` (start and end
/// of each, -1 and -1 for a group that did not take part), 0 for no
/// match, DECLINED for anything else.
///
/// # Safety
/// `pat`, `opts` and `subj` are readable for their lengths; `ovec` is
/// writable for `2 * ovec_pairs` ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_ffi_re_exec(
    pat: *const u8,
    pat_len: usize,
    opts: *const u8,
    opts_len: usize,
    subj: *const u8,
    subj_len: usize,
    start: usize,
    ovec: *mut c_int,
    ovec_pairs: c_int,
) -> c_int {
    // SAFETY: the caller's contract
    let (pat, opts, subj) = unsafe { (bytes(pat, pat_len), bytes(opts, opts_len), bytes(subj, subj_len)) };
    catch(DECLINED, || {
        let Some((re, limit)) = regex_for(pat, opts, subj) else {
            return DECLINED;
        };
        let groups = re.ncaptures + 1;
        if !re.names.is_empty() || groups > ovec_pairs.max(0) as usize {
            return DECLINED;
        }
        match re.exec(subj, start, limit) {
            Ok(None) => 0,
            Err(_) => DECLINED,
            Ok(Some(_)) => {
                // SAFETY: the caller gives `ovec_pairs` pairs, at least `groups`
                let out = unsafe { std::slice::from_raw_parts_mut(ovec, 2 * groups) };
                for (i, pair) in out.chunks_exact_mut(2).enumerate() {
                    let (s, e) = re.group(i).map_or((-1, -1), |(s, e)| (s as c_int, e as c_int));
                    pair[0] = s;
                    pair[1] = e;
                }
                groups as c_int
            }
        }
    })
}

/// `require("ngx.re").split` without a ctx table, as the walk of
/// `regex_split.rs` does it: writes the start and end offsets of each
/// field into `out` (room for `out_pairs` fields) and returns the number
/// of fields; a number above `out_pairs` asks for a call with that much
/// room. An empty subject has no fields (and its pattern is not looked
/// at, as in the classic function). DECLINED as above.
///
/// # Safety
/// `pat`, `opts` and `subj` are readable for their lengths; `out` is
/// writable for `2 * out_pairs` ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_rs_ffi_re_split(
    pat: *const u8,
    pat_len: usize,
    opts: *const u8,
    opts_len: usize,
    subj: *const u8,
    subj_len: usize,
    max: i64,
    out: *mut c_int,
    out_pairs: c_int,
) -> c_int {
    // SAFETY: the caller's contract
    let (pat, opts, subj) = unsafe { (bytes(pat, pat_len), bytes(opts, opts_len), bytes(subj, subj_len)) };
    let room = out_pairs.max(0) as usize;
    let out: &mut [c_int] = if room == 0 {
        &mut []
    } else {
        // SAFETY: the caller gives `out_pairs` pairs
        unsafe { std::slice::from_raw_parts_mut(out, 2 * room) }
    };
    catch(DECLINED, || {
        if subj.is_empty() {
            return 0;
        }
        let Some((re, limit)) = regex_for(pat, opts, subj) else {
            return DECLINED;
        };
        let mut n = 0usize;
        let field = |s: usize, e: usize| {
            if n < room {
                out[2 * n] = s as c_int;
                out[2 * n + 1] = e as c_int;
            }
            n += 1;
        };
        match walk(&re, subj, 0, max, limit, |_| Ok(()), field) {
            Ok(()) => n.min(c_int::MAX as usize) as c_int,
            Err(_) => DECLINED,
        }
    })
}

/// `ngx_http_lua_rs_ffi_re_sub`'s answer for a subject without a match.
const NO_MATCH: c_int = -2;

loop_local! {
    /// The number of matches of the last `ngx_http_lua_rs_ffi_re_sub`.
    static SUB_COUNT: Cell<c_int> = Cell::new(0);
}

/// `ngx.re.sub` (`global` 0) or `gsub` with template `tmpl`: the result's
/// length, its bytes in the scratch buffer and the number of matches from
/// `ngx_http_lua_rs_ffi_re_sub_count`; NO_MATCH (the subject is the
/// result); DECLINED as above, and for a template with an error (the
/// classic function logs it) or a result longer than the scratch buffer.
///
/// # Safety
/// `pat`, `opts`, `subj` and `tmpl` are readable for their lengths.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_http_lua_rs_ffi_re_sub(
    pat: *const u8,
    pat_len: usize,
    opts: *const u8,
    opts_len: usize,
    subj: *const u8,
    subj_len: usize,
    tmpl: *const u8,
    tmpl_len: usize,
    global: c_int,
) -> c_int {
    // SAFETY: the caller's contract
    let (pat, opts, subj, tmpl) = unsafe {
        (
            bytes(pat, pat_len),
            bytes(opts, opts_len),
            bytes(subj, subj_len),
            bytes(tmpl, tmpl_len),
        )
    };
    catch(DECLINED, || {
        let Some((re, limit)) = regex_for(pat, opts, subj) else {
            return DECLINED;
        };
        let Ok(pieces) = parse_template(tmpl, &re) else {
            return DECLINED;
        };
        let mut out = ffi_scratch::Writer::new();
        let count = match substitute_into(&re, subj, &pieces, global != 0, limit, |b| out.push(b)) {
            Ok(0) => return NO_MATCH,
            Ok(n) => n,
            Err(_) => return DECLINED,
        };
        let Some(len) = out.finish().filter(|&l| l <= c_int::MAX as usize) else {
            return DECLINED;
        };
        SUB_COUNT.set(count.min(c_int::MAX as usize) as c_int);
        len as c_int
    })
}

/// The number of matches the last `ngx_http_lua_rs_ffi_re_sub` replaced.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_rs_ffi_re_sub_count() -> c_int {
    SUB_COUNT.get()
}
