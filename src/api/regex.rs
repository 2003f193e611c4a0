//! ngx.re.match, ngx.re.find, ngx.re.gmatch and the `ngx.re` module
//! (split, opt); sub and gsub are in `regex_sub.rs`. The engine is PCRE2
//! (`glue/pcre2.rs`); `o` regexes live in `runtime/regex_cache.rs`.

use std::ffi::{c_int, c_void};
use std::rc::Rc;

use crate::conf::{main_conf, main_conf_cycle};
use crate::glue::fake_request::ConfRef;
use crate::glue::pcre2::{self, Mode, Regex};
use crate::lua::lua_fns;
use crate::lua::{LuaRet, bad_arg, check_bytes, ffi, lua_State, push_bytes, set_fn, to_bytes, type_name};
use crate::runtime::context;
use crate::runtime::{ctx, regex_cache};

lua_fns! {
    re_match => match_impl,
    re_find => find_impl,
    re_gmatch => gmatch_impl,
    gmatch_iter => gmatch_iter_impl,
    gmatch_gc => gmatch_gc_impl,
    opt => opt_impl,
    open_module => open_module_impl,
}

static GMATCH_MT: u8 = 0;

/// # Safety
/// The `ngx` table must be on top of `l`, which is the main state.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 8);
        set_fn(l, -1, c"match", re_match);
        set_fn(l, -1, c"find", re_find);
        set_fn(l, -1, c"gmatch", re_gmatch);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { super::regex_sub::install(l) })?;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"re") };

    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_pushlightuserdata(l, gmatch_mt_key());
        ffi::lua_createtable(l, 0, 1);
        set_fn(l, -1, c"__gc", gmatch_gc);
        ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
    }

    // require "ngx.re"
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
        crate::lua::get_raw(l, -1, c"preload");
        ffi::lua_createtable(l, 0, 3);
        super::regex_split::install(l);
        set_fn(l, -1, c"opt", opt);
        push_bytes(l, b"0.1.28");
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::set_raw(l, -2, c"version");
        ffi::lua_pushcclosure(l, open_module, 1);
        crate::lua::set_raw(l, -2, c"ngx.re");
        ffi::lua_pop(l, 2);
    }
    Ok(())
}

fn gmatch_mt_key() -> *mut c_void {
    &GMATCH_MT as *const u8 as *mut c_void
}

unsafe fn open_module_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1)) };
    Ok(1)
}

/// The options string of a call.
#[derive(Default, Clone, Copy)]
pub struct Opts {
    pub mode: Mode,
    pub once: bool,
    pub dupnames: bool,
}

/// Parses lua-nginx-module's option letters at stack index `idx`.
pub unsafe fn parse_opts(l: *mut lua_State, idx: c_int, fname: &str) -> Result<Opts, String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => Ok(Opts::default()),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING => opts_from(unsafe { to_bytes(l, idx) }.unwrap_or_default()),
        _ => {
            // SAFETY: `l` is the running state (callers' duty)
            let got = unsafe { type_name(l, idx) };
            Err(bad_arg(idx, fname, &format!("string expected, got {got}")))
        }
    }
}

/// lua-nginx-module's option letters `s`.
pub fn opts_from(s: &[u8]) -> Result<Opts, String> {
    let mut o = Opts::default();
    for &c in s {
        match c {
            b'a' => o.mode.options |= pcre2::ANCHORED,
            b'd' => o.mode.dfa = true,
            b'D' => {
                o.mode.options |= pcre2::DUPNAMES;
                o.dupnames = true;
            }
            b'i' => o.mode.options |= pcre2::CASELESS,
            b'j' => o.mode.jit = true,
            // PCRE2 has no JavaScript mode; these are the options that
            // replace it (\u, \x{..} escapes and unset back references).
            b'J' => o.mode.options |= pcre2::ALT_BSUX | pcre2::MATCH_UNSET_BACKREF,
            b'm' => o.mode.options |= pcre2::MULTILINE,
            b'o' => o.once = true,
            b's' => o.mode.options |= pcre2::DOTALL,
            b'u' => o.mode.options |= pcre2::UTF,
            b'U' => {
                o.mode.options |= pcre2::UTF;
                o.mode.no_utf_check = true;
            }
            b'x' => o.mode.options |= pcre2::EXTENDED,
            _ => {
                return Err(format!(
                    "unknown flag \"{}\" (flags \"{}\")",
                    c as char,
                    String::from_utf8_lossy(s)
                ));
            }
        }
    }
    Ok(o)
}

/// (lua_regex_cache_max_entries, lua_regex_match_limit) of the running code.
/// init_by_lua runs while ngx_cycle is still the previous (or the bare
/// initial) cycle, so it gets the defaults.
pub fn settings() -> (usize, usize) {
    const DEFAULTS: (usize, usize) = (1024, 0);
    if context::current() == context::INIT {
        return DEFAULTS;
    }
    // SAFETY: the request of the current context is live; ngx_cycle is.
    unsafe {
        if (*nginx_sys::ngx_cycle).conf_ctx.is_null() {
            return DEFAULTS;
        }
        let m = match ctx::current() {
            Some(c) => Some(main_conf(c.r)),
            None => match ConfRef::http_block() {
                Some(_) => main_conf_cycle(nginx_sys::ngx_cycle).map(|m| &*m),
                None => None,
            },
        };
        m.map(|m| (m.regex_cache_max_entries(), m.regex_match_limit()))
            .unwrap_or(DEFAULTS)
    }
}

/// The compiled regex: from the cache with `o`, else compiled for this call.
pub fn compile(pattern: &[u8], o: &Opts, cache_max: usize) -> Result<Rc<Regex>, String> {
    if o.once {
        regex_cache::get(pattern, o.mode, cache_max)
    } else {
        pcre2::compile(pattern, o.mode).map(Rc::new)
    }
}

/// lua-nginx-module's message for a failed match.
pub fn exec_error(rc: c_int) -> String {
    if rc == 0 {
        "capture size too small".into()
    } else {
        format!("pcre_exec() failed: {rc}")
    }
}

/// Where the search goes on after a match of `start..end`: past an empty
/// match by one character (so iteration advances), `None` at the end.
pub fn next_start(re: &Regex, subj: &[u8], start: usize, end: usize) -> Option<usize> {
    if end > start {
        return Some(end);
    }
    if end >= subj.len() {
        return None;
    }
    let mut next = end + 1;
    if re.mode.options & pcre2::UTF != 0 {
        while next < subj.len() && subj[next] & 0xC0 == 0x80 {
            next += 1;
        }
    }
    Some(next)
}

/// The 0-based start offset from `ctx.pos` (1-based) of the table at `idx`.
pub(super) unsafe fn ctx_start(l: *mut lua_State, idx: c_int, fname: &str) -> Result<Option<usize>, String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => Ok(None),
        ffi::LUA_TTABLE => {
            // SAFETY: `l` is the running state (callers' duty)
            (unsafe { crate::lua::get_field(l, idx, c"pos") })?;
            // SAFETY: `l` is the running state (callers' duty)
            let pos = if unsafe { ffi::lua_isnumber(l, -1) } != 0 {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { ffi::lua_tonumber(l, -1) }
            } else {
                0.0
            };
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 1) };
            Ok(Some(if pos <= 0.0 { 0 } else { pos as usize - 1 }))
        }
        _ => {
            // SAFETY: `l` is the running state (callers' duty)
            let got = unsafe { type_name(l, idx) };
            Err(bad_arg(idx, fname, &format!("table expected, got {got}")))
        }
    }
}

pub(super) unsafe fn set_ctx_pos(l: *mut lua_State, idx: c_int, pos: usize) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushinteger(l, pos as ffi::lua_Integer) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { crate::lua::set_field(l, idx, c"pos") }
}

/// Fills the table on top of the stack with the last match of `re`:
/// `[0]` whole match, `[n]` groups (false when unmatched), named groups
/// (arrays of the matched ones with `D`).
pub unsafe fn fill_captures(l: *mut lua_State, re: &Regex, subj: &[u8], dupnames: bool) {
    for i in 0..=re.ncaptures {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe {
            push_group(l, re, subj, i);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
        }
    }
    for (n, name) in &re.names {
        // With `D`, unmatched groups are left out (lua-resty-core's rule):
        // a name no group of which matched stays nil.
        if dupnames && re.group(*n).is_none() {
            continue;
        }
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { push_bytes(l, name) };
        if dupnames {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe {
                push_bytes(l, name);
                ffi::lua_rawget(l, -3);
            }
            // SAFETY: `l` is the running state (callers' duty)
            if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TTABLE {
                // SAFETY: `l` is the running state (callers' duty)
                unsafe {
                    ffi::lua_pop(l, 1);
                    ffi::lua_createtable(l, 2, 0);
                }
            }
            // SAFETY: `l` is the running state (callers' duty)
            unsafe {
                push_group(l, re, subj, *n);
                ffi::lua_rawseti(l, -2, ffi::lua_objlen(l, -2) as ffi::lua_Integer + 1);
            }
        } else {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { push_group(l, re, subj, *n) };
        }
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_rawset(l, -3) };
    }
}

unsafe fn push_group(l: *mut lua_State, re: &Regex, subj: &[u8], i: usize) {
    match re.group(i) {
        // SAFETY: `l` is the running state (callers' duty)
        Some((s, e)) => unsafe { push_bytes(l, &subj[s..e]) },
        // SAFETY: `l` is the running state (callers' duty)
        None => unsafe { ffi::lua_pushboolean(l, 0) },
    }
}

/// A new captures table for the last match.
pub unsafe fn push_captures(l: *mut lua_State, re: &Regex, subj: &[u8], dupnames: bool) {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe {
        ffi::lua_createtable(l, re.ncaptures as c_int, re.names.len() as c_int);
        fill_captures(l, re, subj, dupnames);
    }
}

pub(super) unsafe fn fail(l: *mut lua_State, nils: c_int, err: &str) -> LuaRet {
    for _ in 0..nils {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pushnil(l) };
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { push_bytes(l, err.as_bytes()) };
    Ok(nils + 1)
}

/// `ngx.re.match(subject, regex, options?, ctx?, res_table?)`
unsafe fn match_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let subj = unsafe { check_bytes(l, 1, "match") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let pat = unsafe { check_bytes(l, 2, "match") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let o = unsafe { parse_opts(l, 3, "match") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let start = unsafe { ctx_start(l, 4, "match") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let res = match unsafe { ffi::lua_type(l, 5) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => false,
        ffi::LUA_TTABLE => true,
        _ => {
            return Err(bad_arg(
                5,
                "match",
                // SAFETY: `l` is the running state Lua called this API function with
                &format!("table expected, got {}", unsafe { type_name(l, 5) }),
            ));
        }
    };
    let (cache_max, limit) = settings();
    let re = match compile(pat, &o, cache_max) {
        Ok(re) => re,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => return unsafe { fail(l, 1, &e) },
    };
    match re.exec(subj, start.unwrap_or(0), limit) {
        Ok(None) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushnil(l) };
            Ok(1)
        }
        // SAFETY: `l` is the running state Lua called this API function with
        Err(rc) => unsafe { fail(l, 1, &exec_error(rc)) },
        Ok(Some(_)) => {
            let (_, end) = re.group(0).unwrap_or_default();
            // The captures are read before `ctx.pos` is assigned: a
            // `__newindex` on ctx may run this cached regex again and
            // overwrite its match data.
            if res {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe {
                    ffi::lua_pushvalue(l, 5);
                    fill_captures(l, &re, subj, o.dupnames);
                }
            } else {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { push_captures(l, &re, subj, o.dupnames) };
            }
            if start.is_some() {
                // SAFETY: `l` is the running state Lua called this API function with
                (unsafe { set_ctx_pos(l, 4, end + 1) })?;
            }
            Ok(1)
        }
    }
}

/// `ngx.re.find(subject, regex, options?, ctx?, nth?)`: `from, to` of the
/// whole match or of group `nth`.
unsafe fn find_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let subj = unsafe { check_bytes(l, 1, "find") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let pat = unsafe { check_bytes(l, 2, "find") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let o = unsafe { parse_opts(l, 3, "find") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let start = unsafe { ctx_start(l, 4, "find") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let nth = match unsafe { ffi::lua_type(l, 5) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => 0,
        // SAFETY: `l` is the running state Lua called this API function with
        _ => unsafe { crate::lua::check_number(l, 5, "find") }?.max(0.0) as usize,
    };
    let (cache_max, limit) = settings();
    let re = match compile(pat, &o, cache_max) {
        Ok(re) => re,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => return unsafe { fail(l, 2, &e) },
    };
    match re.exec(subj, start.unwrap_or(0), limit) {
        Ok(None) => {
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushnil(l) };
            Ok(1)
        }
        // SAFETY: `l` is the running state Lua called this API function with
        Err(rc) => unsafe { fail(l, 2, &exec_error(rc)) },
        Ok(Some(_)) => {
            let (_, end) = re.group(0).unwrap_or_default();
            // Read before `ctx.pos` is assigned (see match_impl).
            let group = re.group(nth);
            if start.is_some() {
                // SAFETY: `l` is the running state Lua called this API function with
                (unsafe { set_ctx_pos(l, 4, end + 1) })?;
            }
            if nth > re.ncaptures {
                // SAFETY: `l` is the running state Lua called this API function with
                return unsafe { fail(l, 2, "nth out of bound") };
            }
            match group {
                Some((s, e)) => {
                    // SAFETY: `l` is the running state Lua called this API function with
                    unsafe {
                        ffi::lua_pushinteger(l, (s + 1) as ffi::lua_Integer);
                        ffi::lua_pushinteger(l, e as ffi::lua_Integer);
                    }
                    Ok(2)
                }
                None => {
                    // SAFETY: `l` is the running state Lua called this API function with
                    unsafe { ffi::lua_pushnil(l) };
                    Ok(1)
                }
            }
        }
    }
}

/// The state of a gmatch iterator; the subject is the closure's first
/// upvalue, this userdata its second.
struct Gmatch {
    re: Rc<Regex>,
    /// Where the next search starts; `None` once exhausted.
    next: Option<usize>,
    dupnames: bool,
}

type GmatchSlot = Option<Gmatch>;

/// `ngx.re.gmatch(subject, regex, options?)`: an iterator over the matches.
unsafe fn gmatch_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { check_bytes(l, 1, "gmatch") })?;
    // SAFETY: `l` is the running state Lua called this API function with
    let pat = unsafe { check_bytes(l, 2, "gmatch") }?;
    // SAFETY: `l` is the running state Lua called this API function with
    let o = unsafe { parse_opts(l, 3, "gmatch") }?;
    let (cache_max, _) = settings();
    let re = match compile(pat, &o, cache_max) {
        Ok(re) => re,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(e) => return unsafe { fail(l, 1, &e) },
    };
    // The subject as a string (a number argument is converted in place).
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushvalue(l, 1) };
    // SAFETY: `l` is the running state Lua called this API function with
    let ud = unsafe { ffi::lua_newuserdata(l, std::mem::size_of::<GmatchSlot>()) } as *mut GmatchSlot;
    // SAFETY: fresh userdata of the right size, aligned for pointers.
    unsafe {
        ud.write(Some(Gmatch {
            re,
            next: Some(0),
            dupnames: o.dupnames,
        }))
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe {
        ffi::lua_pushlightuserdata(l, gmatch_mt_key());
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pushcclosure(l, gmatch_iter, 2);
    }
    Ok(1)
}

unsafe fn gmatch_gc_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let ud = unsafe { ffi::lua_touserdata(l, 1) } as *mut GmatchSlot;
    if !ud.is_null() {
        // SAFETY: only our gmatch userdata carry this metatable.
        unsafe { (*ud).take() };
    }
    Ok(0)
}

unsafe fn gmatch_iter_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let subj = unsafe { to_bytes(l, ffi::lua_upvalueindex(1)) }.unwrap_or_default();
    // SAFETY: `l` is the running state Lua called this API function with
    let ud = unsafe { ffi::lua_touserdata(l, ffi::lua_upvalueindex(2)) } as *mut GmatchSlot;
    // SAFETY: the closure's own state userdata, alive as its upvalue.
    let Some(g) = unsafe { ud.as_mut() }.and_then(|s| s.as_mut()) else {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    };
    let Some(start) = g.next else {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    };
    let (_, limit) = settings();
    let re = g.re.clone();
    match re.exec(subj, start, limit) {
        Ok(None) => {
            g.next = None;
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushnil(l) };
            Ok(1)
        }
        Err(rc) => {
            g.next = None;
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { fail(l, 1, &exec_error(rc)) }
        }
        Ok(Some(_)) => {
            let (s, e) = re.group(0).unwrap_or_default();
            g.next = next_start(&re, subj, s, e);
            let dupnames = g.dupnames;
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { push_captures(l, &re, subj, dupnames) };
            Ok(1)
        }
    }
}

/// `require("ngx.re").opt("jit_stack_size", n)`
unsafe fn opt_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let name = unsafe { check_bytes(l, 1, "opt") }?;
    if name != b"jit_stack_size" {
        return Err("unrecognized option name".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let size = unsafe { crate::lua::check_number(l, 2, "opt") }?;
    if regex_cache::len() > 0 {
        return Err(
            "changing jit stack size is not allowed when some regexs have already been compiled and cached"
                .into(),
        );
    }
    pcre2::set_jit_stack_size(size.max(0.0) as usize)?;
    Ok(0)
}
