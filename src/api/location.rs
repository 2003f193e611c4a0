//! ngx.location.capture and ngx.location.capture_multi: subrequests whose
//! responses come back to Lua as tables (see runtime/capture.rs for how they
//! are collected and how the calling thread waits).

use std::ffi::CStr;

use std::rc::Rc;

use nginx_sys::ngx_http_request_t;

use super::query_args;
use crate::conf::loc_conf;
use crate::glue::subrequest::{self, method_name, Pairs, Spec};
use crate::lua::lua_fns;
use crate::lua::{bad_arg, ffi, lua_State, set_fn, to_bytes, type_name, LuaRet};
use crate::runtime::capture::{self, Group};
use crate::runtime::context::{self, REQUEST_YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::yield_wait;

lua_fns! {
    capture => capture_impl,
    capture_multi => capture_multi_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    ffi::lua_pushstring(l, c"location".as_ptr());
    ffi::lua_rawget(l, -2);
    if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushstring(l, c"location".as_ptr());
        ffi::lua_pushvalue(l, -2);
        ffi::lua_rawset(l, -4);
    }
    set_fn(l, -1, c"capture", capture);
    set_fn(l, -1, c"capture_multi", capture_multi);
    ffi::lua_pop(l, 1);
}

/// `capture(uri, opts)` is `capture_multi({{uri, opts}})`.
unsafe fn capture_impl(l: *mut lua_State) -> LuaRet {
    let n = ffi::lua_gettop(l);
    if n != 1 && n != 2 {
        return Err("expecting one or two arguments".into());
    }
    ffi::lua_createtable(l, n, 0);
    ffi::lua_insert(l, 1);
    for i in (1..=n).rev() {
        ffi::lua_rawseti(l, 1, i as ffi::lua_Integer);
    }
    ffi::lua_createtable(l, 1, 0);
    ffi::lua_insert(l, 1);
    ffi::lua_rawseti(l, 1, 1);
    capture_multi_impl(l)
}

unsafe fn capture_multi_impl(l: *mut lua_State) -> LuaRet {
    context::check(REQUEST_YIELDABLE)?;
    let n = ffi::lua_gettop(l);
    if n != 1 {
        return Err(format!("only one argument is expected, but got {n}"));
    }
    if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
        let got = type_name(l, 1);
        return Err(bad_arg(1, "capture_multi", &format!("table expected, got {got}")));
    }
    let count = ffi::lua_objlen(l, 1);
    if count == 0 {
        return Err("at least one subrequest should be specified".into());
    }
    let ctx = ctx::request()?;
    let mut specs = Vec::with_capacity(count);
    for i in 0..count {
        match parse_spec(l, i) {
            Ok(s) => specs.push(s),
            Err(e) => {
                release_refs(l, &specs);
                return Err(e);
            }
        }
    }
    let r = ctx.r;
    let max_body = loc_conf(r).capture_max_body_size.unwrap_or(0);
    let group = Group::new(r, count, max_body);
    for (i, spec) in specs.iter_mut().enumerate() {
        if let Err(e) = issue(r, &group, i, spec) {
            release_refs(l, &specs);
            return Err(e);
        }
    }
    let ctx_ptr: *mut RequestCtx = ctx;
    let t = ctx.running_thread().ok_or("no request thread to suspend")?;
    let co = t.co;
    t.wait = Some(capture::arm(ctx_ptr, co, group));
    yield_wait(l)
}

unsafe fn release_refs(l: *mut lua_State, specs: &[Spec]) {
    for s in specs {
        if let Some(r) = s.ctx_ref {
            ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
        }
    }
}

/// Reads query `i` (0-based, as lua-nginx-module numbers them in errors)
/// of the table at index 1.
unsafe fn parse_spec(l: *mut lua_State, i: usize) -> Result<Spec, String> {
    let top = ffi::lua_gettop(l);
    let res = parse_spec_at(l, i);
    ffi::lua_settop(l, top);
    res
}

unsafe fn parse_spec_at(l: *mut lua_State, i: usize) -> Result<Spec, String> {
    ffi::lua_rawgeti(l, 1, i as ffi::lua_Integer + 1);
    let q = ffi::lua_gettop(l);
    match ffi::lua_type(l, q) {
        ffi::LUA_TNIL => return Err("only array-like tables are allowed".into()),
        ffi::LUA_TTABLE => {}
        _ => {
            return Err(format!(
                "the query argument {i} is not a table, but a {}",
                type_name(l, q)
            ))
        }
    }
    let nargs = ffi::lua_objlen(l, q);
    if nargs != 1 && nargs != 2 {
        return Err(format!("query argument {i} expecting one or two arguments"));
    }
    ffi::lua_rawgeti(l, q, 1);
    let uri = match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => to_bytes(l, -1).unwrap_or_default().to_vec(),
        _ => {
            return Err(bad_arg(
                1,
                "capture",
                &format!("string expected, got {}", type_name(l, -1)),
            ))
        }
    };
    if uri.first() == Some(&b'@') {
        return Err(format!(
            "named locations are not supported by subrequests: \"{}\"",
            String::from_utf8_lossy(&uri)
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
        ffi::lua_rawgeti(l, q, 2);
        let o = ffi::lua_gettop(l);
        if ffi::lua_type(l, o) != ffi::LUA_TTABLE {
            return Err(format!(
                "expecting table as the 2nd argument for subrequest {i}, but got {}",
                type_name(l, o)
            ));
        }
        parse_options(l, o, &mut spec)?;
    }
    Ok(spec)
}

/// Pushes option `name` of table `t` (its `__index` runs, as in
/// lua-nginx-module) and returns its type.
unsafe fn field(l: *mut lua_State, t: i32, name: &CStr) -> Result<i32, String> {
    crate::lua::get_field(l, t, name)?;
    Ok(ffi::lua_type(l, -1))
}

unsafe fn parse_options(l: *mut lua_State, o: i32, spec: &mut Spec) -> Result<(), String> {
    match field(l, o, c"args")? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => {
            spec.extra_args = query_args::encode(l, ffi::lua_gettop(l), &query_args::ARGS_OPTION)?
        }
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => spec.extra_args = to_bytes(l, -1).unwrap_or_default().to_vec(),
        _ => return Err("Bad args option value".into()),
    }
    match field(l, o, c"vars")? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => spec.vars = read_vars(l, ffi::lua_gettop(l))?,
        _ => return Err("Bad vars option value".into()),
    }
    spec.share_vars = bool_option(l, o, c"share_all_vars")?;
    spec.copy_vars = bool_option(l, o, c"copy_all_vars")?;
    field(l, o, c"always_forward_body")?;
    spec.forward_body = ffi::lua_toboolean(l, -1) != 0;
    match field(l, o, c"method")? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TNUMBER => spec.method = ffi::lua_tonumber(l, -1) as usize,
        _ => return Err("Bad http request method".into()),
    }
    if method_name(spec.method).is_none() {
        return Err(format!("unsupported HTTP method: {}", spec.method));
    }
    match field(l, o, c"ctx")? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => {
            ffi::lua_pushvalue(l, -1);
            spec.ctx_ref = Some(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
        }
        _ => {
            return Err(format!(
                "Bad ctx option value type {}, expected a Lua table",
                type_name(l, -1)
            ))
        }
    }
    match field(l, o, c"body")? {
        ffi::LUA_TNIL => {}
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => spec.body = Some(to_bytes(l, -1).unwrap_or_default().to_vec()),
        _ => return Err("Bad http request body".into()),
    }
    Ok(())
}

unsafe fn bool_option(l: *mut lua_State, o: i32, name: &CStr) -> Result<bool, String> {
    match field(l, o, name)? {
        ffi::LUA_TNIL => Ok(false),
        ffi::LUA_TBOOLEAN => Ok(ffi::lua_toboolean(l, -1) != 0),
        _ => Err(format!("Bad {} option value", name.to_string_lossy())),
    }
}

unsafe fn read_vars(l: *mut lua_State, t: i32) -> Result<Pairs, String> {
    let mut out = Vec::new();
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, t) != 0 {
        if ffi::lua_type(l, -2) != ffi::LUA_TSTRING {
            ffi::lua_pop(l, 2);
            return Err("attempt to use a non-string key in the \"vars\" option table".into());
        }
        if !matches!(ffi::lua_type(l, -1), ffi::LUA_TSTRING | ffi::LUA_TNUMBER) {
            let msg = format!("attempt to use bad variable value type {}", type_name(l, -1));
            ffi::lua_pop(l, 2);
            return Err(msg);
        }
        let v = to_bytes(l, -1).unwrap_or_default().to_vec();
        let k = to_bytes(l, -2).unwrap_or_default().to_vec();
        out.push((k, v));
        ffi::lua_pop(l, 1);
    }
    Ok(out)
}

/// Issues subrequest `i` of `group` as `spec` describes it.
unsafe fn issue(
    r: *mut ngx_http_request_t,
    group: &Rc<Group>,
    i: usize,
    spec: &mut Spec,
) -> Result<(), String> {
    let ps = capture::post_subrequest(r, group, i).ok_or("no memory")?;
    let sr = subrequest::issue(r, ps, spec)?;
    if let Some(ctx_ref) = spec.ctx_ref.take() {
        let sctx = RequestCtx::get_or_create(sr).ok_or("no memory")?;
        sctx.ctx_ref = ctx_ref;
    }
    Ok(())
}
