//! ngx.var: nginx variables by name (read and write) and regex captures
//! by number. The classic C functions here answer what the FFI face
//! (`var_ffi.rs`, `lua/var.lua`) leaves to them: errors, unusual
//! arguments, code running outside its request's Lua thread.

use nginx_sys::{
    NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_INDEXED, ngx_hash_find, ngx_hash_strlow, ngx_http_get_variable,
    ngx_http_request_t, ngx_http_variable_value_t, ngx_palloc, ngx_pnalloc, ngx_str_t,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, ffi, lua_State, push_bytes, to_bytes, type_name};
use crate::runtime::context;
use crate::runtime::ctx::{self, RequestCtx};

lua_fns! {
    var_get => get_impl,
    var_set => set_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushcfunction(l, var_get);
        crate::lua::set_raw(l, -2, c"__index");
        ffi::lua_pushcfunction(l, var_set);
        crate::lua::set_raw(l, -2, c"__newindex");
        ffi::lua_setmetatable(l, -2);
        crate::lua::set_raw(l, -2, c"var");
    }
}

/// Runs the Lua face (`lua/var.lua`), which replaces both metamethods of
/// `ngx.var` and keeps the classic functions as its fallback.
///
/// # Safety
/// `l` must be the main state, not running, with the `ngx` global set.
pub unsafe fn install_ffi_face(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: the caller's contract
    unsafe {
        super::run_face(
            l,
            lua_source!("lua/var.lua"),
            c"=ngx.var",
            &[var_get, var_set],
            0,
            0,
        )
    }
}

/// Some variables ($body_bytes_sent...) read what went out: a write the
/// code made just before (held back, see runtime/output.rs) goes first.
pub(crate) fn send_held(ctx: &mut RequestCtx) {
    if !ctx.held_out.is_null() {
        let _ = crate::runtime::output::send_held(ctx);
    }
}

/// Runs `f` with a buffer of `len` bytes for a lower-cased name: on the
/// stack for the usual short names, so that a lookup allocates nothing.
pub(crate) fn with_low_buf<T>(len: usize, f: impl FnOnce(*mut u8) -> T) -> T {
    let mut short = [0u8; 64];
    if len <= short.len() {
        return f(short.as_mut_ptr());
    }
    let mut long = vec![0u8; len];
    f(long.as_mut_ptr())
}

/// The value of variable `name` (None: not found), its name lower-cased
/// into `low`.
///
/// # Safety
/// `r` is a live request; `low` has room for `name.len()` bytes.
pub(crate) unsafe fn lookup<'p>(r: *mut ngx_http_request_t, name: &[u8], low: *mut u8) -> Option<&'p [u8]> {
    // SAFETY: `low` has name.len() bytes (caller's contract); ngx_hash_strlow only reads `name`
    let hash = unsafe { ngx_hash_strlow(low, name.as_ptr() as *mut u8, name.len()) };
    let mut key = ngx_str_t {
        len: name.len(),
        data: low,
    };
    // SAFETY: `r` is a live request (caller's contract)
    let vv = unsafe { ngx_http_get_variable(r, &mut key, hash) };
    // SAFETY: a non-null value nginx returned is live in the request's pool
    if vv.is_null() || unsafe { (*vv).not_found() } != 0 {
        return None;
    }
    // SAFETY: as above; its bytes live as long as the request's pool
    Some(unsafe { std::slice::from_raw_parts((*vv).data, (*vv).len() as usize) })
}

/// `ngx.var[n]`: the n-th capture of the location's last regex match.
/// $0 (the whole match) and negative positions are not readable here, as
/// in lua-nginx-module.
///
/// # Safety
/// `r` is a live request.
pub(crate) unsafe fn capture<'p>(r: *mut ngx_http_request_t, n: i64) -> Option<&'p [u8]> {
    let n = usize::try_from(n).ok().filter(|&n| n > 0 && n < usize::MAX / 4)?;
    // SAFETY: `r` is a live request (caller's contract)
    let (caps, ncaps, data) = unsafe { ((*r).captures, (*r).ncaptures, (*r).captures_data) };
    if caps.is_null() || data.is_null() || n * 2 + 1 >= ncaps.max(1) {
        return None;
    }
    // SAFETY: `caps` holds `ncaps` offsets and n * 2 + 1 < ncaps was checked above
    let (a, b) = unsafe { (*caps.add(n * 2) as usize, *caps.add(n * 2 + 1) as usize) };
    // SAFETY: the offsets nginx recorded lie within its captured subject
    Some(unsafe { std::slice::from_raw_parts(data.add(a), b.saturating_sub(a)) })
}

/// Sets variable `name` to a pool copy of `value` (None: not found), its
/// name lower-cased into `low`; lua-nginx-module's error texts.
///
/// # Safety
/// `r` is a live request; `low` has room for `name.len()` bytes.
pub(crate) unsafe fn assign(
    r: *mut ngx_http_request_t,
    name: &[u8],
    low: *mut u8,
    value: Option<&[u8]>,
) -> Result<(), String> {
    // SAFETY: `low` has name.len() bytes (caller's contract); ngx_hash_strlow only reads `name`
    let hash = unsafe { ngx_hash_strlow(low, name.as_ptr() as *mut u8, name.len()) };
    // SAFETY: `r` is a live request (caller's contract)
    let cmcf = NgxHttpCoreModule::main_conf_mut(unsafe { &*r }).ok_or("no core conf")?;
    // SAFETY: the core conf's variables hash is built; `low` holds the lower-cased name
    let v = unsafe { ngx_hash_find(&mut cmcf.variables_hash, hash, low, name.len()) }
        as *mut nginx_sys::ngx_http_variable_t;
    let shown = || String::from_utf8_lossy(name).into_owned();
    if v.is_null() {
        let shown = shown();
        return Err(format!(
            "variable \"{shown}\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set ${shown} '';\" in the config file to define it first"
        ));
    }
    // SAFETY: `v` is a live variable definition found in the hash
    let (flags, set_handler, data, index) = unsafe { ((*v).flags, (*v).set_handler, (*v).data, (*v).index) };
    if flags as u32 & NGX_HTTP_VAR_CHANGEABLE == 0 {
        return Err(format!("variable \"{}\" not changeable", shown()));
    }
    if let Some(set) = set_handler {
        // SAFETY: `r` is a live request (caller's contract)
        let vv = unsafe { ngx_palloc((*r).pool, std::mem::size_of::<ngx_http_variable_value_t>()) }
            as *mut ngx_http_variable_value_t;
        if vv.is_null() {
            return Err("no memory".into());
        }
        // SAFETY: `vv` is a fresh pool value; `r` is live
        unsafe { fill(r, vv, value) }?;
        // SAFETY: nginx's own handler for this variable, with its data
        unsafe { set(r, vv, data) };
        return Ok(());
    }
    if flags as u32 & NGX_HTTP_VAR_INDEXED == 0 {
        return Err(format!("variable \"{}\" cannot be assigned a value", shown()));
    }
    // SAFETY: an indexed variable has its slot among the request's variables
    unsafe { fill(r, (*r).variables.add(index), value) }
}

fn request() -> Result<*mut ngx_http_request_t, String> {
    context::check_request_data(context::ANY_REQUEST)?;
    Ok(ctx::request()?.r)
}

unsafe fn get_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(context::ANY_REQUEST)?;
    let ctx = ctx::request()?;
    send_held(ctx);
    let r = ctx.r;
    // SAFETY: `l` is the running state Lua called this API function with
    let found = if unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TNUMBER {
        // SAFETY: as above; `r` is the live request of the running context
        unsafe { capture(r, ffi::lua_tointeger(l, 2) as i64) }
    } else {
        // SAFETY: `l` is the running state Lua called this API function with
        let Some(name) = (unsafe { to_bytes(l, 2) }) else {
            return Err("bad variable name".into());
        };
        // SAFETY: `r` is the live request of the running context; the buffer has name.len() bytes
        with_low_buf(name.len(), |low| unsafe { lookup(r, name, low) })
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe {
        match found {
            Some(v) => push_bytes(l, v),
            None => ffi::lua_pushnil(l),
        }
    }
    Ok(1)
}

unsafe fn set_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(name) = (unsafe { to_bytes(l, 2) }) else {
        return Err("bad variable name".into());
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let value = match unsafe { ffi::lua_type(l, 3) } {
        ffi::LUA_TNIL => None,
        // SAFETY: as above; a number becomes its string in place
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => Some(unsafe { to_bytes(l, 3) }.unwrap_or_default()),
        // SAFETY: `l` is the running state Lua called this API function with
        _ => return Err(format!("bad variable value type: {}", unsafe { type_name(l, 3) })),
    };
    // SAFETY: `r` is the live request of the running context; the buffer has name.len() bytes
    with_low_buf(name.len(), |low| unsafe { assign(r, name, low, value) })?;
    Ok(0)
}
/// Sets a variable value to a pool copy of `value` (None: not found).
unsafe fn fill(
    r: *mut ngx_http_request_t,
    vv: *mut ngx_http_variable_value_t,
    value: Option<&[u8]>,
) -> Result<(), String> {
    // SAFETY: `vv` is valid for writes of one value (callers' duty)
    unsafe { std::ptr::write_bytes(vv, 0, 1) };
    match value {
        None => {
            // SAFETY: `vv` is valid for writes (callers' duty)
            unsafe { (*vv).set_not_found(1) };
        }
        Some(b) => {
            let p = if b.is_empty() {
                std::ptr::null_mut()
            } else {
                // SAFETY: `r` is a live request (callers' duty)
                let p = unsafe { ngx_pnalloc((*r).pool, b.len()) } as *mut u8;
                if p.is_null() {
                    return Err("no memory".into());
                }
                // SAFETY: `p` has b.len() fresh bytes, apart from `b`
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len()) };
                p
            };
            // SAFETY: `vv` is valid for writes (callers' duty)
            unsafe { (*vv).set_len(b.len() as u32) };
            // SAFETY: `vv` is valid for writes (callers' duty)
            unsafe {
                (*vv).data = p;
            }
            // SAFETY: `vv` is valid for writes (callers' duty)
            unsafe { (*vv).set_valid(1) };
        }
    }
    Ok(())
}
