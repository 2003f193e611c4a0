//! lua-nginx-module's public C API (`api/ngx_http_lua_api.h`), exported
//! with its names and ABI for other nginx modules and for Lua code that
//! declares them with `ffi.cdef`.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use nginx_sys::{
    NGX_DECLINED, NGX_ERROR, NGX_OK, ngx_conf_t, ngx_http_request_t, ngx_int_t, ngx_shared_memory_add,
    ngx_shm_zone_t, ngx_str_t,
};

use crate::conf::shdict::Zone;
use crate::glue::shdict_codec::Owned;
use crate::lua::{ffi, lua_State};

/// `ngx_http_lua_value_t`: a shared dictionary value.
#[repr(C)]
pub struct LuaValue {
    pub kind: u8,
    pub value: ValueUnion,
}

#[repr(C)]
pub union ValueUnion {
    pub b: c_int,
    pub n: f64,
    pub s: ngx_str_t,
}

/// The zone of `lua_shared_dict <name>` in the running cycle, or null.
///
/// # Safety
/// `name_data` must point to `name_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_find_zone(
    name_data: *const u8,
    name_len: usize,
) -> *mut ngx_shm_zone_t {
    crate::glue::catch(ptr::null_mut(), || {
        if name_data.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: the caller's buffer; the cycle's zone list is live.
        unsafe {
            let name = std::slice::from_raw_parts(name_data, name_len);
            let cycle = nginx_sys::ngx_cycle;
            let tag = crate::conf::module() as *const nginx_sys::ngx_module_t as *mut c_void;
            for zone in crate::glue::list::elts::<ngx_shm_zone_t>(ptr::addr_of!((*cycle).shared_memory)) {
                if (*zone).tag == tag && (*zone).shm.name.as_bytes() == name {
                    return zone;
                }
            }
            ptr::null_mut()
        }
    })
}

/// Reads `key` of the dictionary `zone` into `value`: NGX_OK, NGX_DECLINED
/// (no such key, or expired), NGX_ERROR. A string is copied into the
/// buffer the caller set in `value.s` (truncated to its length).
///
/// # Safety
/// `zone` must come from `ngx_http_lua_find_zone`; `key_data` must point to
/// `key_len` bytes; `value` must be writable, with `value.s` set for strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_shared_dict_get(
    zone: *mut ngx_shm_zone_t,
    key_data: *const u8,
    key_len: usize,
    value: *mut LuaValue,
) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: per the contract above; `data` of our zones is our Zone.
        unsafe {
            if zone.is_null() || value.is_null() || (*zone).data.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            let tag = crate::conf::module() as *const nginx_sys::ngx_module_t as *mut c_void;
            if (*zone).tag != tag {
                return NGX_ERROR as ngx_int_t;
            }
            let Some(dict) = (*((*zone).data as *const Zone)).dict.clone() else {
                return NGX_ERROR as ngx_int_t;
            };
            let key = if key_data.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(key_data, key_len)
            };
            match dict.get(key, false) {
                Ok(Some((v, _, _))) => fill(&mut *value, v),
                Ok(None) => NGX_DECLINED as ngx_int_t,
                Err(_) => NGX_ERROR as ngx_int_t,
            }
        }
    })
}

/// Writes `v` into `out` as lua-nginx-module does (Lua type numbers).
unsafe fn fill(out: &mut LuaValue, v: Owned) -> ngx_int_t {
    match v {
        Owned::Bool(b) => {
            out.kind = ffi::LUA_TBOOLEAN as u8;
            out.value.b = b as c_int;
        }
        Owned::Num(n) => {
            out.kind = ffi::LUA_TNUMBER as u8;
            out.value.n = n;
        }
        Owned::Str(s) => {
            out.kind = ffi::LUA_TSTRING as u8;
            // SAFETY: the caller's buffer, of `s.len` bytes (its contract).
            unsafe {
                let buf = out.value.s;
                if buf.data.is_null() || buf.len == 0 {
                    crate::glue::log::error(
                        crate::glue::log::cycle_log(),
                        nginx_sys::NGX_LOG_ERR,
                        b"no string buffer initialized",
                    );
                    return NGX_ERROR as ngx_int_t;
                }
                let n = s.len().min(buf.len);
                ptr::copy_nonoverlapping(s.as_ptr(), buf.data, n);
                out.value.s.len = n;
            }
        }
    }
    NGX_OK as ngx_int_t
}

/// The main Lua state of the configuration being parsed (init_by_lua's).
///
/// # Safety
/// `cf` must be inside the http block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_get_global_state(cf: *mut ngx_conf_t) -> *mut lua_State {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: per the contract.
        let lmcf = unsafe { crate::conf::main_conf_cf(cf) };
        lmcf.vm.as_ref().map_or(ptr::null_mut(), |vm| vm.main())
    })
}

/// nginx's process type (`ngx.process.type()` calls it through the FFI, so
/// that LuaJIT compiles the call).
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_ffi_get_process_type() -> c_int {
    crate::glue::catch(0, || crate::api::resty_core::current_process_type() as c_int)
}

/// The request whose Lua code runs now (a timer's fake request in timers),
/// or null outside requests.
#[unsafe(no_mangle)]
pub extern "C" fn ngx_http_lua_get_request(_l: *mut lua_State) -> *mut ngx_http_request_t {
    crate::glue::catch(ptr::null_mut(), || {
        crate::runtime::ctx::current().map_or(ptr::null_mut(), |c| c.r)
    })
}

/// Adds `func` as `package.preload[package]` in the VM being configured.
///
/// # Safety
/// `cf` must be inside the http block; `package` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_add_package_preload(
    cf: *mut ngx_conf_t,
    package: *const c_char,
    func: ffi::lua_CFunction,
) -> ngx_int_t {
    crate::glue::catch(NGX_ERROR as ngx_int_t, || {
        // SAFETY: per the contract; main state, balanced stack.
        unsafe {
            let lmcf = crate::conf::main_conf_cf(cf);
            let Some(vm) = lmcf.vm.as_ref() else {
                return NGX_ERROR as ngx_int_t;
            };
            let l = vm.main();
            crate::lua::get_raw(l, ffi::LUA_GLOBALSINDEX, c"package");
            if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
                ffi::lua_pop(l, 1);
                return NGX_ERROR as ngx_int_t;
            }
            crate::lua::get_raw(l, -1, c"preload");
            if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
                ffi::lua_pop(l, 2);
                return NGX_ERROR as ngx_int_t;
            }
            ffi::lua_pushstring(l, package);
            ffi::lua_pushcfunction(l, func);
            ffi::lua_rawset(l, -3);
            ffi::lua_pop(l, 2);
            NGX_OK as ngx_int_t
        }
    })
}

/// A shared memory zone for another module, as nginx's own
/// `ngx_shared_memory_add`. (lua-nginx-module also delays init_by_lua until
/// such zones are initialised; here init_by_lua waits for the
/// `lua_shared_dict` zones only.)
///
/// # Safety
/// `cf` must be a configuration being parsed; `name` a valid string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_shared_memory_add(
    cf: *mut ngx_conf_t,
    name: *mut ngx_str_t,
    size: usize,
    tag: *mut c_void,
) -> *mut ngx_shm_zone_t {
    crate::glue::catch(ptr::null_mut(), || {
        // SAFETY: per the contract.
        unsafe { ngx_shared_memory_add(cf, name, size, tag) }
    })
}
