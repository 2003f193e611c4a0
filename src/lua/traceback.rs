//! The "stack traceback:" that lua-nginx-module logs when a thread dies:
//! its own format (Lua 5.1's wording, one section per coroutine, from the
//! one that failed up through its living parents), not LuaJIT's.

use std::ffi::{CStr, c_int};
use std::fmt::Write;

use super::{ffi, lua_State};

/// Frames shown per coroutine before "...".
const MAX_DEPTH: c_int = 22;
/// Coroutines shown at most.
const MAX_COROUTINES: usize = 5;

/// The traceback of `chain`: the coroutine that failed, then its parents.
///
/// # Safety
/// Each state must be a live (or dead but not collected) coroutine.
pub unsafe fn format(chain: &[*mut lua_State]) -> String {
    let mut out = String::from("stack traceback:");
    for (id, &co) in chain.iter().take(MAX_COROUTINES).enumerate() {
        let _ = write!(out, "\ncoroutine {id}:");
        // SAFETY: each state in `chain` is a live or uncollected coroutine (caller's contract)
        unsafe { frames(co, &mut out) };
    }
    out
}

/// The traceback of the running state `l` from `level` up, without the
/// coroutine sections: what lua-nginx-module appends to the errors of code
/// that runs to completion (log, filters, set).
///
/// # Safety
/// `l` must be a valid state.
pub unsafe fn plain(l: *mut lua_State, level: c_int) -> String {
    let mut out = String::from("stack traceback:");
    // SAFETY: `l` is a valid state (caller's contract)
    unsafe { frames_from(l, level, &mut out) };
    out
}

unsafe fn frames(co: *mut lua_State, out: &mut String) {
    // SAFETY: `co` is a live or uncollected coroutine (callers' duty)
    unsafe { frames_from(co, 0, out) }
}

/// The chunk of our Lua versions of functions that lua-nginx-module has in
/// C (coroutine.*): a traceback shows them as one C frame, as there.
const BUILTIN_CHUNK: &str = "coroutine_wrappers";

unsafe fn frames_from(co: *mut lua_State, first: c_int, out: &mut String) {
    // SAFETY: lua_Debug is plain C data, all-zero is a valid value
    let mut ar: ffi::lua_Debug = unsafe { std::mem::zeroed() };
    let mut level = first;
    // C frames not written yet: they may belong to a builtin's run.
    let mut held: Vec<String> = Vec::new();
    let mut builtin: Option<String> = None;
    // SAFETY: `co` is a live or uncollected coroutine (callers' duty)
    while unsafe { ffi::lua_getstack(co, level, &mut ar) } != 0 {
        level += 1;
        if level - first > MAX_DEPTH {
            out.push_str("\n\t...");
            return;
        }
        // SAFETY: lua_getstack just filled `ar` for a frame of `co`
        unsafe { ffi::lua_getinfo(co, c"Snl".as_ptr(), &mut ar) };
        // SAFETY: lua_getinfo filled short_src with a NUL-terminated string
        let src = unsafe { CStr::from_ptr(ar.short_src.as_ptr()) }.to_string_lossy();
        let what = if ar.what.is_null() {
            0
        } else {
            // SAFETY: lua_getinfo set `what` to a static NUL-terminated string
            (unsafe { *ar.what }) as u8
        };
        if src == BUILTIN_CHUNK {
            // SAFETY: `ar` was filled by lua_getinfo with "n"
            builtin = Some(unsafe { frame_name(&ar) }.unwrap_or_default());
            held.clear();
            continue;
        }
        let mut line = String::new();
        // SAFETY: `ar` was filled by lua_getinfo with "Sl"
        unsafe { describe(&ar, &src, &mut line) };
        if what == b'C' && builtin.is_none() {
            held.push(line);
            continue;
        }
        if let Some(name) = builtin.take() {
            let _ = write!(out, "\n\t[C]: in function '{name}'");
            held.clear();
        }
        for h in held.drain(..) {
            out.push_str(&h);
        }
        out.push_str(&line);
    }
    if let Some(name) = builtin {
        let _ = write!(out, "\n\t[C]: in function '{name}'");
    }
    for h in held {
        out.push_str(&h);
    }
}

unsafe fn frame_name(ar: &ffi::lua_Debug) -> Option<String> {
    // SAFETY: `ar` was filled by lua_getinfo (caller's contract): non-null strings are NUL-terminated
    let named = !ar.namewhat.is_null() && unsafe { *ar.namewhat } != 0 && !ar.name.is_null();
    // SAFETY: `name` was checked non-null; lua_getinfo gives NUL-terminated names
    named.then(|| unsafe { CStr::from_ptr(ar.name) }.to_string_lossy().into_owned())
}

/// One frame's line, in Lua 5.1's words.
unsafe fn describe(ar: &ffi::lua_Debug, src: &str, out: &mut String) {
    let _ = write!(out, "\n\t{src}:");
    if ar.currentline > 0 {
        let _ = write!(out, "{}:", ar.currentline);
    }
    // SAFETY: `ar` was filled by lua_getinfo (caller's contract): non-null strings are NUL-terminated
    let named = !ar.namewhat.is_null() && unsafe { *ar.namewhat } != 0;
    let what = if ar.what.is_null() {
        0
    } else {
        // SAFETY: `ar` was filled by lua_getinfo (caller's contract): `what` is a static string
        (unsafe { *ar.what }) as u8
    };
    if named && !ar.name.is_null() {
        let _ = write!(
            out,
            " in function '{}'",
            // SAFETY: `name` was checked non-null; lua_getinfo gives NUL-terminated names
            (unsafe { CStr::from_ptr(ar.name) }).to_string_lossy()
        );
    } else if what == b'm' {
        out.push_str(" in main chunk");
    } else if what == b'C' || what == b't' {
        out.push_str(" ?");
    } else {
        let _ = write!(out, " in function <{src}:{}>", ar.linedefined);
    }
}
