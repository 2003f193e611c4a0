//! ngx.location.capture and ngx.location.capture_multi: subrequests whose
//! responses come back to Lua as tables (see runtime/capture.rs for how they
//! are collected and how the calling thread waits).

use std::ffi::CStr;

use nginx_sys::{
    ngx_alloc_chain_link, ngx_create_temp_buf, ngx_hash_find, ngx_hash_strlow, ngx_http_parse_unsafe_uri,
    ngx_http_request_body_t, ngx_http_request_t, ngx_http_subrequest, ngx_http_variable_value_t, ngx_palloc,
    ngx_pcalloc, ngx_pnalloc, ngx_str_t, ngx_table_elt_t, ngx_uint_t, NGX_HTTP_POST, NGX_HTTP_PUT,
    NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_INDEXED, NGX_OK,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use crate::glue::list;
use crate::lua_fns;
use crate::module::loc_conf;
use crate::runtime::capture::{self, Group};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::lua::{bad_arg, ffi, lua_State, set_fn, to_bytes, type_name, LuaRet};
use crate::runtime::phase::{self, REQUEST_YIELDABLE};
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

/// Name/value pairs (the `vars` option).
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One subrequest as the Lua code asked for it.
struct Spec {
    uri: Vec<u8>,
    extra_args: Vec<u8>,
    method: usize,
    body: Option<Vec<u8>>,
    vars: Pairs,
    share_vars: bool,
    copy_vars: bool,
    forward_body: bool,
    /// Registry reference of the `ctx` option's table.
    ctx_ref: Option<i32>,
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
    phase::check(REQUEST_YIELDABLE)?;
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
    Ok(yield_wait(l))
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

unsafe fn field(l: *mut lua_State, t: i32, name: &CStr) -> i32 {
    ffi::lua_getfield(l, t, name.as_ptr());
    ffi::lua_type(l, -1)
}

unsafe fn parse_options(l: *mut lua_State, o: i32, spec: &mut Spec) -> Result<(), String> {
    match field(l, o, c"args") {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => spec.extra_args = encode_args(l, ffi::lua_gettop(l))?,
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => spec.extra_args = to_bytes(l, -1).unwrap_or_default().to_vec(),
        _ => return Err("Bad args option value".into()),
    }
    match field(l, o, c"vars") {
        ffi::LUA_TNIL => {}
        ffi::LUA_TTABLE => spec.vars = read_vars(l, ffi::lua_gettop(l))?,
        _ => return Err("Bad vars option value".into()),
    }
    spec.share_vars = bool_option(l, o, c"share_all_vars")?;
    spec.copy_vars = bool_option(l, o, c"copy_all_vars")?;
    field(l, o, c"always_forward_body");
    spec.forward_body = ffi::lua_toboolean(l, -1) != 0;
    match field(l, o, c"method") {
        ffi::LUA_TNIL => {}
        ffi::LUA_TNUMBER => spec.method = ffi::lua_tonumber(l, -1) as usize,
        _ => return Err("Bad http request method".into()),
    }
    if method_name(spec.method).is_none() {
        return Err(format!("unsupported HTTP method: {}", spec.method));
    }
    match field(l, o, c"ctx") {
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
    match field(l, o, c"body") {
        ffi::LUA_TNIL => {}
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => spec.body = Some(to_bytes(l, -1).unwrap_or_default().to_vec()),
        _ => return Err("Bad http request body".into()),
    }
    Ok(())
}

unsafe fn bool_option(l: *mut lua_State, o: i32, name: &CStr) -> Result<bool, String> {
    match field(l, o, name) {
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

/// The `args` option's table as a query string (kept private here; the
/// public ngx.encode_args lives in its own area).
unsafe fn encode_args(l: *mut lua_State, t: i32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut add = |k: &[u8], v: Option<&[u8]>| {
        if !out.is_empty() {
            out.push(b'&');
        }
        escape_into(&mut out, k);
        if let Some(v) = v {
            out.push(b'=');
            escape_into(&mut out, v);
        }
    };
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, t) != 0 {
        if ffi::lua_type(l, -2) != ffi::LUA_TSTRING {
            ffi::lua_pop(l, 2);
            return Err("attempt to use a non-string key in the \"args\" option table".into());
        }
        let k = to_bytes(l, -2).unwrap_or_default().to_vec();
        match ffi::lua_type(l, -1) {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => add(&k, Some(to_bytes(l, -1).unwrap_or_default())),
            ffi::LUA_TBOOLEAN => {
                if ffi::lua_toboolean(l, -1) != 0 {
                    add(&k, None);
                }
            }
            ffi::LUA_TTABLE => {
                let n = ffi::lua_objlen(l, -1);
                for j in 1..=n {
                    ffi::lua_rawgeti(l, -1, j as ffi::lua_Integer);
                    match ffi::lua_type(l, -1) {
                        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                            add(&k, Some(to_bytes(l, -1).unwrap_or_default()))
                        }
                        ffi::LUA_TBOOLEAN if ffi::lua_toboolean(l, -1) != 0 => add(&k, None),
                        ffi::LUA_TBOOLEAN => {}
                        _ => {
                            ffi::lua_pop(l, 3);
                            return Err("attempt to use an invalid value in the \"args\" option table".into());
                        }
                    }
                    ffi::lua_pop(l, 1);
                }
            }
            _ => {
                ffi::lua_pop(l, 2);
                return Err("attempt to use an invalid value in the \"args\" option table".into());
            }
        }
        ffi::lua_pop(l, 1);
    }
    Ok(out)
}

/// Percent-encodes everything but unreserved characters, as URI components.
fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        }
    }
}

/// The request line name of an ngx.HTTP_* method.
fn method_name(m: usize) -> Option<&'static [u8]> {
    Some(match m {
        0x0002 => b"GET",
        0x0004 => b"HEAD",
        0x0008 => b"POST",
        0x0010 => b"PUT",
        0x0020 => b"DELETE",
        0x0040 => b"MKCOL",
        0x0080 => b"COPY",
        0x0100 => b"MOVE",
        0x0200 => b"OPTIONS",
        0x0400 => b"PROPFIND",
        0x0800 => b"PROPPATCH",
        0x1000 => b"LOCK",
        0x2000 => b"UNLOCK",
        0x4000 => b"PATCH",
        0x8000 => b"TRACE",
        _ => return None,
    })
}

unsafe fn pool_str(r: *mut ngx_http_request_t, b: &[u8]) -> Result<ngx_str_t, String> {
    if b.is_empty() {
        return Ok(ngx_str_t::empty());
    }
    let p = ngx_pnalloc((*r).pool, b.len()) as *mut u8;
    if p.is_null() {
        return Err("no memory".into());
    }
    std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len());
    Ok(ngx_str_t {
        len: b.len(),
        data: p,
    })
}

/// Issues subrequest `i` of `group`.
unsafe fn issue(
    r: *mut ngx_http_request_t,
    group: &std::rc::Rc<Group>,
    i: usize,
    spec: &mut Spec,
) -> Result<(), String> {
    let mut uri = pool_str(r, &spec.uri)?;
    let mut args = ngx_str_t::empty();
    let mut flags: ngx_uint_t = 0;
    if uri.len == 0 || ngx_http_parse_unsafe_uri(r, &mut uri, &mut args, &mut flags) != NGX_OK as isize {
        return Err(format!(
            "unsafe uri in argument #1: {}",
            String::from_utf8_lossy(&spec.uri)
        ));
    }
    if !spec.extra_args.is_empty() {
        let mut all = args.as_bytes().to_vec();
        if !all.is_empty() {
            all.push(b'&');
        }
        all.extend_from_slice(&spec.extra_args);
        args = pool_str(r, &all)?;
    }
    let ps = capture::post_subrequest(r, group, i).ok_or("no memory")?;
    let c = (*r).connection;
    let active = (*c).data;
    let mut sr: *mut ngx_http_request_t = std::ptr::null_mut();
    let rc = ngx_http_subrequest(r, &mut uri, &mut args, &mut sr, ps, 0);
    if rc != NGX_OK as isize || sr.is_null() {
        return Err(format!("failed to issue subrequest: {rc}"));
    }
    // Captured output never reaches the postpone filter, so the subrequest
    // takes no place in the parent's output order (capture.rs).
    (*c).data = active;
    unlink_postponed(r, sr);
    adjust(r, sr, spec)?;
    if let Some(ctx_ref) = spec.ctx_ref.take() {
        let sctx = RequestCtx::get_or_create(sr).ok_or("no memory")?;
        sctx.ctx_ref = ctx_ref;
    }
    Ok(())
}

unsafe fn unlink_postponed(r: *mut ngx_http_request_t, sr: *mut ngx_http_request_t) {
    let mut p = &mut (*r).postponed as *mut *mut nginx_sys::ngx_http_postponed_request_t;
    while !(*p).is_null() {
        if (**p).request == sr {
            *p = (**p).next;
            return;
        }
        p = &mut (**p).next;
    }
}

/// Method, request body and variables of the new subrequest.
unsafe fn adjust(r: *mut ngx_http_request_t, sr: *mut ngx_http_request_t, spec: &Spec) -> Result<(), String> {
    let name = method_name(spec.method).ok_or("bad method")?;
    (*sr).method = spec.method as _;
    (*sr).method_name = ngx_str_t {
        len: name.len(),
        data: name.as_ptr() as *mut u8,
    };
    if let Some(body) = &spec.body {
        (*sr).request_body = request_body(r, body)?;
        set_content_length(r, sr, body.len())?;
    } else if !spec.forward_body
        && spec.method != NGX_HTTP_PUT as usize
        && spec.method != NGX_HTTP_POST as usize
        && (*r).headers_in.content_length_n > 0
    {
        (*sr).request_body = std::ptr::null_mut();
        set_content_length(r, sr, 0)?;
    }
    if !spec.share_vars {
        let cmcf = NgxHttpCoreModule::main_conf(&*r).ok_or("no core conf")?;
        let size = cmcf.variables.nelts * std::mem::size_of::<ngx_http_variable_value_t>();
        let v = ngx_pcalloc((*r).pool, size) as *mut ngx_http_variable_value_t;
        if v.is_null() {
            return Err("no memory".into());
        }
        if spec.copy_vars {
            std::ptr::copy_nonoverlapping((*r).variables, v, cmcf.variables.nelts);
        }
        (*sr).variables = v;
    }
    for (k, val) in &spec.vars {
        set_var(sr, k, val)?;
    }
    Ok(())
}

unsafe fn request_body(
    r: *mut ngx_http_request_t,
    body: &[u8],
) -> Result<*mut ngx_http_request_body_t, String> {
    let pool = (*r).pool;
    let rb =
        ngx_pcalloc(pool, std::mem::size_of::<ngx_http_request_body_t>()) as *mut ngx_http_request_body_t;
    if rb.is_null() {
        return Err("no memory".into());
    }
    if !body.is_empty() {
        let b = ngx_create_temp_buf(pool, body.len());
        let cl = ngx_alloc_chain_link(pool);
        if b.is_null() || cl.is_null() {
            return Err("no memory".into());
        }
        std::ptr::copy_nonoverlapping(body.as_ptr(), (*b).last, body.len());
        (*b).last = (*b).last.add(body.len());
        (*b).set_last_buf(1);
        (*cl).buf = b;
        (*cl).next = std::ptr::null_mut();
        (*rb).bufs = cl;
        (*rb).buf = b;
    }
    Ok(rb)
}

/// Gives the subrequest the parent's request headers with its own
/// Content-Length.
unsafe fn set_content_length(
    r: *mut ngx_http_request_t,
    sr: *mut ngx_http_request_t,
    len: usize,
) -> Result<(), String> {
    let pool = (*r).pool;
    let hi = &mut (*sr).headers_in;
    if !list::init_headers(pool, &mut hi.headers) {
        return Err("no memory".into());
    }
    for h in list::elts::<ngx_table_elt_t>(&(*r).headers_in.headers) {
        let k = (*h).key.as_bytes();
        if k.eq_ignore_ascii_case(b"Content-Length") || k.eq_ignore_ascii_case(b"Transfer-Encoding") {
            continue;
        }
        if list::push_header(&mut hi.headers, *h).is_null() {
            return Err("no memory".into());
        }
    }
    let value = pool_str(r, len.to_string().as_bytes())?;
    let lower = pool_str(r, b"content-length")?;
    let key = pool_str(r, b"Content-Length")?;
    let h = ngx_table_elt_t {
        hash: nginx_sys::ngx_hash_key(lower.data, lower.len),
        key,
        value,
        lowcase_key: lower.data,
    };
    let p = list::push_header(&mut hi.headers, h);
    if p.is_null() {
        return Err("no memory".into());
    }
    hi.content_length = p;
    hi.content_length_n = len as _;
    hi.transfer_encoding = std::ptr::null_mut();
    hi.set_chunked(0);
    Ok(())
}

/// The `vars` option: sets a variable of the subrequest.
unsafe fn set_var(sr: *mut ngx_http_request_t, name: &[u8], value: &[u8]) -> Result<(), String> {
    let cmcf = NgxHttpCoreModule::main_conf_mut(&*sr).ok_or("no core conf")?;
    let lname = ngx_palloc((*sr).pool, name.len().max(1)) as *mut u8;
    if lname.is_null() {
        return Err("no memory".into());
    }
    let key = ngx_hash_strlow(lname, name.as_ptr() as *mut u8, name.len());
    let v = ngx_hash_find(&mut cmcf.variables_hash, key, lname, name.len())
        as *mut nginx_sys::ngx_http_variable_t;
    let shown = String::from_utf8_lossy(name);
    if v.is_null() {
        return Err(format!(
            "variable \"{shown}\" cannot be assigned a value (maybe you forgot to define it first?) "
        ));
    }
    if (*v).flags & NGX_HTTP_VAR_CHANGEABLE as ngx_uint_t == 0 {
        return Err(format!("variable \"{shown}\" not changeable"));
    }
    let data = pool_str(sr, value)?;
    let mut vv: ngx_http_variable_value_t = std::mem::zeroed();
    vv.set_len(data.len as u32);
    vv.set_valid(1);
    vv.data = data.data;
    if let Some(set) = (*v).set_handler {
        let p = ngx_palloc((*sr).pool, std::mem::size_of::<ngx_http_variable_value_t>())
            as *mut ngx_http_variable_value_t;
        if p.is_null() {
            return Err("no memory".into());
        }
        *p = vv;
        set(sr, p, (*v).data);
        return Ok(());
    }
    if (*v).flags & NGX_HTTP_VAR_INDEXED as ngx_uint_t != 0 {
        *(*sr).variables.add((*v).index) = vv;
        return Ok(());
    }
    Err(format!(
        "variable \"{shown}\" cannot be assigned a value (maybe you forgot to define it first?) "
    ))
}
