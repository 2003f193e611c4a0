//! ngx.var: nginx variables by name (read and write) and regex captures
//! by number.

use nginx_sys::{
    ngx_hash_find, ngx_hash_strlow, ngx_http_get_variable, ngx_http_request_t, ngx_http_variable_value_t,
    ngx_pnalloc, ngx_str_t, NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_INDEXED,
};
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule};

use crate::lua::lua_fns;
use crate::lua::{ffi, lua_State, push_bytes, to_bytes, type_name, LuaRet};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    var_get => get_impl,
    var_set => set_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    ffi::lua_createtable(l, 0, 0);
    ffi::lua_createtable(l, 0, 2);
    ffi::lua_pushcfunction(l, var_get);
    crate::lua::set_raw(l, -2, c"__index");
    ffi::lua_pushcfunction(l, var_set);
    crate::lua::set_raw(l, -2, c"__newindex");
    ffi::lua_setmetatable(l, -2);
    crate::lua::set_raw(l, -2, c"var");
}

fn request() -> Result<*mut ngx_http_request_t, String> {
    context::check_request_data(context::ANY_REQUEST)?;
    Ok(ctx::request()?.r)
}

unsafe fn get_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    if ffi::lua_type(l, 2) == ffi::LUA_TNUMBER {
        return get_capture(l, r, ffi::lua_tointeger(l, 2) as i64);
    }
    let Some(name) = to_bytes(l, 2) else {
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
    let hash = ngx_hash_strlow(low.as_mut_ptr(), name.as_ptr() as *mut u8, name.len());
    let mut key = ngx_str_t {
        len: low.len(),
        data: low.as_mut_ptr(),
    };
    let vv = ngx_http_get_variable(r, &mut key, hash);
    if vv.is_null() || (*vv).not_found() != 0 {
        ffi::lua_pushnil(l);
    } else {
        push_bytes(l, (*vv).as_bytes());
    }
    Ok(1)
}

/// `ngx.var[n]`: the n-th capture of the location's last regex match.
unsafe fn get_capture(l: *mut lua_State, r: *mut ngx_http_request_t, n: i64) -> LuaRet {
    let caps = (*r).captures;
    let ncaps = (*r).ncaptures;
    // $0 (the whole match) and negative positions are not readable here,
    // as in lua-nginx-module.
    let n = match usize::try_from(n) {
        Ok(n) if n > 0 && n < usize::MAX / 4 => n,
        _ => {
            ffi::lua_pushnil(l);
            return Ok(1);
        }
    };
    if caps.is_null() || (*r).captures_data.is_null() || n * 2 + 1 >= ncaps.max(1) {
        ffi::lua_pushnil(l);
        return Ok(1);
    }
    let (a, b) = (*caps.add(n * 2) as usize, *caps.add(n * 2 + 1) as usize);
    let data = std::slice::from_raw_parts((*r).captures_data.add(a), b.saturating_sub(a));
    push_bytes(l, data);
    Ok(1)
}

unsafe fn set_impl(l: *mut lua_State) -> LuaRet {
    let r = request()?;
    let Some(name) = to_bytes(l, 2).map(|b| b.to_vec()) else {
        return Err("bad variable name".into());
    };
    let value: Option<Vec<u8>> = match ffi::lua_type(l, 3) {
        ffi::LUA_TNIL => None,
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => Some(to_bytes(l, 3).unwrap_or_default().to_vec()),
        _ => return Err(format!("bad variable value type: {}", type_name(l, 3))),
    };
    let shown = String::from_utf8_lossy(&name).into_owned();
    let mut low = name.clone();
    let hash = ngx_hash_strlow(low.as_mut_ptr(), low.as_mut_ptr(), low.len());
    let cmcf = NgxHttpCoreModule::main_conf_mut(&*r).ok_or("no core conf")?;
    let v = ngx_hash_find(&mut cmcf.variables_hash, hash, low.as_mut_ptr(), low.len())
        as *mut nginx_sys::ngx_http_variable_t;
    if v.is_null() {
        return Err(format!(
            "variable \"{shown}\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set ${shown} '';\" in the config file to define it first"
        ));
    }
    if (*v).flags as u32 & NGX_HTTP_VAR_CHANGEABLE == 0 {
        return Err(format!("variable \"{shown}\" not changeable"));
    }
    let vv = if let Some(set) = (*v).set_handler {
        let vv = ngx_pnalloc((*r).pool, std::mem::size_of::<ngx_http_variable_value_t>())
            as *mut ngx_http_variable_value_t;
        if vv.is_null() {
            return Err("no memory".into());
        }
        fill(r, vv, value.as_deref())?;
        set(r, vv, (*v).data);
        return Ok(0);
    } else if (*v).flags as u32 & NGX_HTTP_VAR_INDEXED != 0 {
        (*r).variables.add((*v).index)
    } else {
        return Err(format!("variable \"{shown}\" cannot be assigned a value"));
    };
    fill(r, vv, value.as_deref())?;
    Ok(0)
}

/// Sets a variable value to a pool copy of `value` (None: not found).
unsafe fn fill(
    r: *mut ngx_http_request_t,
    vv: *mut ngx_http_variable_value_t,
    value: Option<&[u8]>,
) -> Result<(), String> {
    std::ptr::write_bytes(vv, 0, 1);
    match value {
        None => {
            (*vv).set_not_found(1);
        }
        Some(b) => {
            let p = if b.is_empty() {
                std::ptr::null_mut()
            } else {
                let p = ngx_pnalloc((*r).pool, b.len()) as *mut u8;
                if p.is_null() {
                    return Err("no memory".into());
                }
                std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len());
                p
            };
            (*vv).set_len(b.len() as u32);
            (*vv).data = p;
            (*vv).set_valid(1);
        }
    }
    Ok(())
}
