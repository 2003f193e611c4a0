//! ngx.location.capture and ngx.location.capture_multi: subrequests whose
//! responses come back to Lua as tables (see runtime/capture.rs for how they
//! are collected and how the calling thread waits).

use std::ffi::CStr;

use std::rc::Rc;

use nginx_sys::{ngx_http_request_t, ngx_pool_t};
use ngx::http::Request;

use super::query_args;
use crate::conf::loc_conf;
use crate::glue::headers::pool_str;
use crate::glue::subrequest::{self, Pairs, Spec, method_name};
use crate::lua::lua_fns;
use crate::lua::{LuaRet, bad_arg, ffi, lua_State, set_fn, to_bytes, type_name};
use crate::runtime::capture::{self, Group};
use crate::runtime::context::{self, REQUEST_YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::{Pending, yield_wait};

lua_fns! {
    capture => capture_impl,
    capture_multi => capture_multi_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushstring(l, c"location".as_ptr()) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_rawget(l, -2) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TTABLE {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_createtable(l, 0, 2) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pushstring(l, c"location".as_ptr()) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_pushvalue(l, -2) };
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { ffi::lua_rawset(l, -4) };
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"capture", capture) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { set_fn(l, -1, c"capture_multi", capture_multi) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pop(l, 1) };
}

/// `capture(uri, opts)` is `capture_multi({{uri, opts}})`.
unsafe fn capture_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 1 && n != 2 {
        return Err("expecting one or two arguments".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_createtable(l, n, 0) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_insert(l, 1) };
    for i in (1..=n).rev() {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_rawseti(l, 1, i as ffi::lua_Integer) };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_createtable(l, 1, 0) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_insert(l, 1) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_rawseti(l, 1, 1) };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { capture_multi_impl(l) }
}

unsafe fn capture_multi_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 1 {
        return Err(format!("only one argument is expected, but got {n}"));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TTABLE {
        // SAFETY: `l` is the running state Lua called this API function with
        let got = unsafe { type_name(l, 1) };
        return Err(bad_arg(1, "capture_multi", &format!("table expected, got {got}")));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let count = unsafe { ffi::lua_objlen(l, 1) };
    if count == 0 {
        return Err("at least one subrequest should be specified".into());
    }
    let ctx = ctx::request()?;
    let r = ctx.r;
    // SAFETY: `r` is the live request of the running context
    let pool = unsafe { (*r).pool };
    let mut specs: smallvec::SmallVec<[Spec; 1]> = smallvec::SmallVec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `l` is the running state Lua called this API function with
        match unsafe { parse_spec(l, pool, i) } {
            Ok(s) => specs.push(s),
            Err(e) => {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { release_refs(l, &specs) };
                return Err(e);
            }
        }
    }
    // SAFETY: `r` is the live request of the running context
    let max_body = unsafe { loc_conf(r) }.capture_max_body_size.unwrap_or(0);
    let group = Group::new(r, count, max_body);
    let mut issued: smallvec::SmallVec<[*mut ngx_http_request_t; 1]> = smallvec::SmallVec::new();
    for (i, spec) in specs.iter_mut().enumerate() {
        // SAFETY: `r` is the live request of the running context
        match unsafe { issue(r, &group, i, spec) } {
            Ok(sr) => issued.push(sr),
            Err(e) => {
                // The ones issued before it would run and wake a parent
                // whose code has ended (lua-nginx-module leaves them, and
                // the connection open): none of them has run yet.
                for &sr in &issued {
                    // SAFETY: `sr` was issued by this call and not run
                    unsafe { subrequest::cancel(sr) };
                }
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { release_refs(l, &specs) };
                return Err(e);
            }
        }
    }
    let co = ctx.running_thread().ok_or("no request thread to suspend")?.co;
    // Armed before it is stored: no borrow of the thread is live while
    // arm() takes the whole ctx.
    let wait = capture::arm(ctx, co, group);
    ctx.running_thread().ok_or("no request thread to suspend")?.wait = Some(Pending::Capture(wait));
    // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
    unsafe { yield_wait(l) }
}

unsafe fn release_refs(l: *mut lua_State, specs: &[Spec]) {
    for s in specs {
        if let Some(r) = s.ctx_ref {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r) };
        }
    }
}

/// Reads query `i` (0-based, as lua-nginx-module numbers them in errors)
/// of the table at index 1.
unsafe fn parse_spec(l: *mut lua_State, pool: *mut ngx_pool_t, i: usize) -> Result<Spec, String> {
    // SAFETY: `l` is the running state (callers' duty)
    let top = unsafe { ffi::lua_gettop(l) };
    // SAFETY: `l` is the running state (callers' duty)
    let res = unsafe { parse_spec_at(l, pool, i) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_settop(l, top) };
    res
}

unsafe fn parse_spec_at(l: *mut lua_State, pool: *mut ngx_pool_t, i: usize) -> Result<Spec, String> {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_rawgeti(l, 1, i as ffi::lua_Integer + 1) };
    // SAFETY: `l` is the running state (callers' duty)
    let q = unsafe { ffi::lua_gettop(l) };
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, q) } {
        ffi::LUA_TNIL => return Err("only array-like tables are allowed".into()),
        ffi::LUA_TTABLE => {}
        _ => {
            return Err(format!(
                "the query argument {i} is not a table, but a {}",
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { type_name(l, q) }
            ));
        }
    }
    // SAFETY: `l` is the running state (callers' duty)
    let nargs = unsafe { ffi::lua_objlen(l, q) };
    if nargs != 1 && nargs != 2 {
        return Err(format!("query argument {i} expecting one or two arguments"));
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_rawgeti(l, q, 1) };
    // SAFETY: `l` is the running state (callers' duty)
    let uri = match unsafe { ffi::lua_type(l, -1) } {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            // SAFETY: `l` is the running state (callers' duty)
            let b = unsafe { to_bytes(l, -1) }.unwrap_or_default();
            // SAFETY: `pool` is the live request's (callers' duty)
            unsafe { pool_str(pool, b) }.ok_or("no memory")?
        }
        _ => {
            return Err(bad_arg(
                1,
                "capture",
                // SAFETY: `l` is the running state (callers' duty)
                &format!("string expected, got {}", unsafe { type_name(l, -1) }),
            ));
        }
    };
    if uri.as_bytes().first() == Some(&b'@') {
        return Err(format!(
            "named locations are not supported by subrequests: \"{}\"",
            String::from_utf8_lossy(uri.as_bytes())
        ));
    }
    let mut spec = Spec {
        uri,
        extra_args: Vec::new(),
        method: 0x0002,
        body: None,
        vars: Vec::new(),
        share_vars: false,
        copy_vars: false,
        forward_body: false,
        ctx_ref: None,
    };
    if nargs == 2 {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_rawgeti(l, q, 2) };
        // SAFETY: `l` is the running state (callers' duty)
        let o = unsafe { ffi::lua_gettop(l) };
        // SAFETY: `l` is the running state (callers' duty)
        if unsafe { ffi::lua_type(l, o) } != ffi::LUA_TTABLE {
            return Err(format!(
                "expecting table as the 2nd argument for subrequest {i}, but got {}",
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { type_name(l, o) }
            ));
        }
        // SAFETY: `l` is the running state (callers' duty)
        (unsafe { parse_options(l, o, &mut spec) })?;
    }
    Ok(spec)
}

/// Pushes option `name` of table `t` (its `__index` runs, as in
/// lua-nginx-module) and returns its type.
unsafe fn field(l: *mut lua_State, t: i32, name: &CStr) -> Result<i32, String> {
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { crate::lua::get_field(l, t, name) })?;
    // SAFETY: `l` is the running state (callers' duty)
    Ok(unsafe { ffi::lua_type(l, -1) })
}

unsafe fn parse_options(l: *mut lua_State, o: i32, spec: &mut Spec) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { field(l, o, c"args") }? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => {
            // SAFETY: `l` is the running state (callers' duty)
            spec.extra_args = unsafe { query_args::encode(l, ffi::lua_gettop(l), &query_args::ARGS_OPTION) }?
        }
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            // SAFETY: `l` is the running state (callers' duty)
            spec.extra_args = unsafe { to_bytes(l, -1) }.unwrap_or_default().to_vec()
        }
        _ => return Err("Bad args option value".into()),
    }
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { field(l, o, c"vars") }? {
        ffi::LUA_TNIL => {}
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TTABLE => spec.vars = unsafe { read_vars(l, ffi::lua_gettop(l)) }?,
        _ => return Err("Bad vars option value".into()),
    }
    // SAFETY: `l` is the running state (callers' duty)
    spec.share_vars = unsafe { bool_option(l, o, c"share_all_vars") }?;
    // SAFETY: `l` is the running state (callers' duty)
    spec.copy_vars = unsafe { bool_option(l, o, c"copy_all_vars") }?;
    // SAFETY: `l` is the running state (callers' duty)
    (unsafe { field(l, o, c"always_forward_body") })?;
    // SAFETY: `l` is the running state (callers' duty)
    spec.forward_body = unsafe { ffi::lua_toboolean(l, -1) } != 0;
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { field(l, o, c"method") }? {
        ffi::LUA_TNIL => {}
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TNUMBER => spec.method = unsafe { ffi::lua_tonumber(l, -1) } as usize,
        _ => return Err("Bad http request method".into()),
    }
    if method_name(spec.method).is_none() {
        return Err(format!("unsupported HTTP method: {}", spec.method));
    }
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { field(l, o, c"ctx") }? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushvalue(l, -1) };
            // SAFETY: `l` is the running state (callers' duty)
            spec.ctx_ref = Some(unsafe { ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX) });
        }
        _ => {
            return Err(format!(
                "Bad ctx option value type {}, expected a Lua table",
                // SAFETY: `l` is the running state (callers' duty)
                unsafe { type_name(l, -1) }
            ));
        }
    }
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { field(l, o, c"body") }? {
        ffi::LUA_TNIL => {}
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
            // SAFETY: `l` is the running state (callers' duty)
            spec.body = Some(unsafe { to_bytes(l, -1) }.unwrap_or_default().to_vec())
        }
        _ => return Err("Bad http request body".into()),
    }
    Ok(())
}

unsafe fn bool_option(l: *mut lua_State, o: i32, name: &CStr) -> Result<bool, String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { field(l, o, name) }? {
        ffi::LUA_TNIL => Ok(false),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TBOOLEAN => Ok(unsafe { ffi::lua_toboolean(l, -1) } != 0),
        _ => Err(format!("Bad {} option value", name.to_string_lossy())),
    }
}

unsafe fn read_vars(l: *mut lua_State, t: i32) -> Result<Pairs, String> {
    let mut out = Vec::new();
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushnil(l) };
    // SAFETY: `l` is the running state (callers' duty)
    while unsafe { ffi::lua_next(l, t) } != 0 {
        // SAFETY: `l` is the running state (callers' duty)
        if unsafe { ffi::lua_type(l, -2) } != ffi::LUA_TSTRING {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 2) };
            return Err("attempt to use a non-string key in the \"vars\" option table".into());
        }
        // SAFETY: `l` is the running state (callers' duty)
        if !matches!(
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_type(l, -1) },
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER
        ) {
            // SAFETY: `l` is the running state (callers' duty)
            let msg = format!("attempt to use bad variable value type {}", unsafe {
                type_name(l, -1)
            });
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 2) };
            return Err(msg);
        }
        // SAFETY: `l` is the running state (callers' duty)
        let v = unsafe { to_bytes(l, -1) }.unwrap_or_default().to_vec();
        // SAFETY: `l` is the running state (callers' duty)
        let k = unsafe { to_bytes(l, -2) }.unwrap_or_default().to_vec();
        out.push((k, v));
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pop(l, 1) };
    }
    Ok(out)
}

/// Issues subrequest `i` of `group` as `spec` describes it.
unsafe fn issue(
    r: *mut ngx_http_request_t,
    group: &Rc<Group>,
    i: usize,
    spec: &mut Spec,
) -> Result<*mut ngx_http_request_t, String> {
    // SAFETY: `r` is a live request (callers' duty)
    let ps = unsafe { capture::post_subrequest(r, group, i) }.ok_or("no memory")?;
    // SAFETY: `r` is a live request (callers' duty)
    let sr = unsafe { subrequest::issue(r, ps, spec) }?;
    if let Some(ctx_ref) = spec.ctx_ref.take() {
        // SAFETY: `sr` is the live subrequest just issued
        let Some(sctx) = RequestCtx::get_or_create(unsafe { Request::from_ngx_http_request(sr) }) else {
            spec.ctx_ref = Some(ctx_ref);
            // SAFETY: `sr` was just issued and has not run
            unsafe { subrequest::cancel(sr) };
            return Err("no memory".into());
        };
        sctx.ctx_ref = ctx_ref;
    }
    Ok(sr)
}
