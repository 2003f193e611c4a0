//! `ndk.set_var.<directive>(value)`: runs a set-var directive of another
//! module (set-misc's `set_escape_uri`, `set_md5`...) on a value, without us
//! needing the Nginx Development Kit: those directives are registered with
//! NDK's `ndk_set_var_value` setter, whose `post` names the function that
//! does the work. The exported functions keep lua-nginx-module's ABI (so
//! lua-resty-core's own `resty.core.ndk` also works); our Lua face is
//! `lua/ndk.lua`.

use std::ffi::{c_int, c_void};

use nginx_sys::{
    NGX_ERROR, NGX_HTTP_MODULE, NGX_OK, ngx_command_t, ngx_cycle, ngx_http_request_t,
    ngx_http_variable_value_t, ngx_int_t, ngx_str_t,
};

use crate::lua::lua_State;
use crate::lua::lua_source;

/// NDK's description of a set-var directive (`ndk_set_var_t`).
#[repr(C)]
struct NdkSetVar {
    kind: ngx_int_t,
    func: *mut c_void,
    size: usize,
    data: *mut c_void,
}

/// `ngx_int_t (*)(ngx_http_request_t *r, ngx_str_t *res, ngx_http_variable_value_t *v)`
type SetVarValue = unsafe extern "C" fn(
    *mut ngx_http_request_t,
    *mut ngx_str_t,
    *mut ngx_http_variable_value_t,
) -> ngx_int_t;

/// lua-nginx-module's `ngx_http_lua_ffi_str_t`.
#[repr(C)]
pub struct FfiStr {
    len: c_int,
    data: *const u8,
}

/// NDK's single-value setter, if NDK is loaded: only directives it sets up
/// can be called this way.
fn ndk_set_var_value() -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT only looks a symbol up.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"ndk_set_var_value".as_ptr()) }
}

/// The work function of set-var directive `name`, or null.
///
/// # Safety
/// Runs in a worker, with `ngx_cycle` live.
unsafe fn lookup(name: &[u8]) -> *mut c_void {
    let setter = ndk_set_var_value();
    if setter.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: ngx_cycle is live; its modules array ends with a null entry
    let mut m = unsafe { (*ngx_cycle).modules };
    // SAFETY: `m` walks the cycle's null-terminated modules array
    while !m.is_null() && !unsafe { (*m).is_null() } {
        // SAFETY: `m` walks the cycle's null-terminated modules array
        let module = unsafe { *m };
        // SAFETY: `*m` was not the terminator, so the next slot exists
        m = unsafe { m.add(1) };
        // SAFETY: `module` is a live module of the cycle
        if unsafe { (*module).type_ } != NGX_HTTP_MODULE as nginx_sys::ngx_uint_t
            // SAFETY: `module` is a live module of the cycle
            || unsafe { (*module).commands.is_null() }
        {
            continue;
        }
        // SAFETY: `module` is a live module of the cycle
        let mut cmd: *mut ngx_command_t = unsafe { (*module).commands };
        // SAFETY: `cmd` walks a module's command array, ended by an empty name
        while unsafe { (*cmd).name.len } != 0 {
            // SAFETY: `cmd` is a live command entry (not the terminator)
            let c = unsafe { &*cmd };
            // SAFETY: `cmd` was not the terminator, so the next entry exists
            cmd = unsafe { cmd.add(1) };
            let is_set_var = c.set.is_some_and(|f| f as *mut c_void == setter);
            if is_set_var && !c.post.is_null() && c.name.as_bytes() == name {
                // SAFETY: NDK's set_var commands keep an ndk_set_var_t in `post` (checked by name above)
                return unsafe { (*(c.post as *const NdkSetVar)).func };
            }
        }
    }
    std::ptr::null_mut()
}

/// # Safety
/// `data` must hold `len` bytes and `func` be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ndk_lookup_directive(
    data: *const u8,
    len: usize,
    func: *mut *mut c_void,
) -> c_int {
    crate::glue::catch(NGX_ERROR, || {
        // SAFETY: as the caller promises.
        unsafe {
            let name = if data.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(data, len)
            };
            *func = lookup(name);
            if (*func).is_null() {
                NGX_ERROR
            } else {
                NGX_OK as c_int
            }
        }
    })
}

/// # Safety
/// `r` must be a live request, `func` from the lookup above, `arg` hold
/// `len` bytes and `value` be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ngx_http_lua_ffi_ndk_set_var_get(
    r: *mut ngx_http_request_t,
    func: *mut c_void,
    arg: *const u8,
    len: usize,
    value: *mut FfiStr,
) -> c_int {
    crate::glue::catch(NGX_ERROR, || {
        if r.is_null() || func.is_null() {
            return NGX_ERROR;
        }
        // SAFETY: func is NDK's value setter signature (checked by lookup);
        // the argument is read only, the result lives in r's pool.
        unsafe {
            let f: SetVarValue = std::mem::transmute::<*mut c_void, SetVarValue>(func);
            let mut v: ngx_http_variable_value_t = std::mem::zeroed();
            v.set_valid(1);
            v.set_len(len as _);
            v.data = arg as *mut u8;
            let mut res = ngx_str_t {
                len: 0,
                data: std::ptr::null_mut(),
            };
            let rc = f(r, &mut res, &mut v);
            if rc != NGX_OK as ngx_int_t {
                return rc as c_int;
            }
            (*value).data = res.data;
            (*value).len = res.len as c_int;
            NGX_OK as c_int
        }
    })
}

/// Installs `ndk.set_var`.
///
/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { super::run_snippet(l, lua_source!("lua/ndk.lua"), c"=ndk") }
}
