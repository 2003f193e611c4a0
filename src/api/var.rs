//! ngx.var: nginx variables by name (read and write) and regex captures
//! by number.

use nginx_sys::{
    NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_INDEXED, ngx_hash_find, ngx_hash_strlow, ngx_http_get_variable,
    ngx_http_request_t, ngx_http_variable_value_t, ngx_palloc, ngx_pnalloc, ngx_str_t,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use crate::lua::lua_fns;
use crate::lua::{LuaRet, ffi, lua_State, push_bytes, to_bytes, type_name};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    var_get => get_impl,
    var_set => set_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_createtable(l, 0, 0) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_createtable(l, 0, 2) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushcfunction(l, var_get) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"__index") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushcfunction(l, var_set) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"__newindex") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_setmetatable(l, -2) };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { crate::lua::set_raw(l, -2, c"var") };
}

fn request() -> Result<*mut ngx_http_request_t, String> {
    context::check_request_data(context::ANY_REQUEST)?;
    Ok(ctx::request()?.r)
}

unsafe fn get_impl(l: *mut lua_State) -> LuaRet {
    context::check_request_data(context::ANY_REQUEST)?;
    let ctx = ctx::request()?;
    // Some variables ($body_bytes_sent...) read what went out: a write the
    // code made just before (held back, see runtime/output.rs) goes first.
    if !ctx.held_out.is_null() {
        let _ = crate::runtime::output::send_held(ctx);
    }
    let r = ctx.r;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TNUMBER {
        // SAFETY: `l` is the running state Lua called this API function with
        return unsafe { get_capture(l, r, ffi::lua_tointeger(l, 2) as i64) };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(name) = (unsafe { to_bytes(l, 2) }) else {
        return Err("bad variable name".into());
    };
    // The lower-cased name: on the stack for the usual short names, so a
    // read allocates nothing.
    let mut short = [0u8; 64];
    let mut long = Vec::new();
    let low: &mut [u8] = if name.len() <= short.len() {
        &mut short[..name.len()]
    } else {
        long.resize(name.len(), 0);
        &mut long
    };
    // SAFETY: `low` has name.len() bytes; ngx_hash_strlow only reads `name`
    let hash = unsafe { ngx_hash_strlow(low.as_mut_ptr(), name.as_ptr() as *mut u8, name.len()) };
    let mut key = ngx_str_t {
        len: low.len(),
        data: low.as_mut_ptr(),
    };
    // SAFETY: `r` is the live request of the running context
    let vv = unsafe { ngx_http_get_variable(r, &mut key, hash) };
    // SAFETY: a non-null value nginx returned is live in the request's pool
    if vv.is_null() || unsafe { (*vv).not_found() } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pushnil(l) };
    } else {
        // SAFETY: `l` is the running state; `vv` is a found, live variable value
        unsafe { push_bytes(l, (*vv).as_bytes()) };
    }
    Ok(1)
}

/// `ngx.var[n]`: the n-th capture of the location's last regex match.
unsafe fn get_capture(l: *mut lua_State, r: *mut ngx_http_request_t, n: i64) -> LuaRet {
    // SAFETY: `r` is a live request (callers' duty)
    let caps = unsafe { (*r).captures };
    // SAFETY: `r` is a live request (callers' duty)
    let ncaps = unsafe { (*r).ncaptures };
    // $0 (the whole match) and negative positions are not readable here,
    // as in lua-nginx-module.
    let n = match usize::try_from(n) {
        Ok(n) if n > 0 && n < usize::MAX / 4 => n,
        _ => {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pushnil(l) };
            return Ok(1);
        }
    };
    // SAFETY: `r` is a live request (callers' duty)
    if caps.is_null() || unsafe { (*r).captures_data.is_null() } || n * 2 + 1 >= ncaps.max(1) {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pushnil(l) };
        return Ok(1);
    }
    // SAFETY: `caps` holds `ncaps` offsets and n * 2 + 1 < ncaps was checked above
    let (a, b) = (
        unsafe { *caps.add(n * 2) } as usize,
        unsafe { *caps.add(n * 2 + 1) } as usize,
    );
    // SAFETY: `r` is a live request (callers' duty)
    let data = unsafe { std::slice::from_raw_parts((*r).captures_data.add(a), b.saturating_sub(a)) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { push_bytes(l, data) };
    Ok(1)
}

unsafe fn set_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(name) = unsafe { to_bytes(l, 2) }.map(|b| b.to_vec()) else {
        return Err("bad variable name".into());
    };
    // SAFETY: `l` is the running state Lua called this API function with
    let value: Option<Vec<u8>> = match unsafe { ffi::lua_type(l, 3) } {
        ffi::LUA_TNIL => None,
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => Some(unsafe { to_bytes(l, 3) }.unwrap_or_default().to_vec()),
        // SAFETY: `l` is the running state Lua called this API function with
        _ => return Err(format!("bad variable value type: {}", unsafe { type_name(l, 3) })),
    };
    let shown = String::from_utf8_lossy(&name).into_owned();
    let mut low = name.clone();
    // SAFETY: ngx_hash_strlow lowers `low` in place, within its len() bytes
    let hash = unsafe { ngx_hash_strlow(low.as_mut_ptr(), low.as_mut_ptr(), low.len()) };
    // SAFETY: `r` is the live request of the running context
    let cmcf = NgxHttpCoreModule::main_conf_mut(unsafe { &*r }).ok_or("no core conf")?;
    // SAFETY: the core conf's variables hash is built; `low` holds the lower-cased name
    let v = unsafe { ngx_hash_find(&mut cmcf.variables_hash, hash, low.as_mut_ptr(), low.len()) }
        as *mut nginx_sys::ngx_http_variable_t;
    if v.is_null() {
        return Err(format!(
            "variable \"{shown}\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set ${shown} '';\" in the config file to define it first"
        ));
    }
    // SAFETY: `v` is a live variable definition found in the hash
    if unsafe { (*v).flags } as u32 & NGX_HTTP_VAR_CHANGEABLE == 0 {
        return Err(format!("variable \"{shown}\" not changeable"));
    }
    // SAFETY: `v` is a live variable definition found in the hash
    let vv = if let Some(set) = unsafe { (*v).set_handler } {
        // SAFETY: `r` is the live request of the running context
        let vv = unsafe { ngx_palloc((*r).pool, std::mem::size_of::<ngx_http_variable_value_t>()) }
            as *mut ngx_http_variable_value_t;
        if vv.is_null() {
            return Err("no memory".into());
        }
        // SAFETY: `r` is the live request of the running context
        (unsafe { fill(r, vv, value.as_deref()) })?;
        // SAFETY: `r` is the live request of the running context
        unsafe { set(r, vv, (*v).data) };
        return Ok(0);
    // SAFETY: `v` is a live variable definition found in the hash
    } else if unsafe { (*v).flags } as u32 & NGX_HTTP_VAR_INDEXED != 0 {
        // SAFETY: `r` is the live request of the running context
        unsafe { (*r).variables.add((*v).index) }
    } else {
        return Err(format!("variable \"{shown}\" cannot be assigned a value"));
    };
    // SAFETY: `r` is the live request of the running context
    (unsafe { fill(r, vv, value.as_deref()) })?;
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
