//! The `ngx` table's own properties: ngx.status, ngx.ctx, ngx.headers_sent,
//! ngx.is_subrequest.

use nginx_sys::NGX_LOG_ERR;

use crate::glue::log as nlog;
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, bad_arg, check_number, ffi, lua_State, to_bytes};
use crate::runtime::context;
use crate::runtime::ctx;

lua_fns! {
    ngx_index => index_impl,
    ngx_newindex => newindex_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushcfunction(l, ngx_index);
        crate::lua::set_raw(l, -2, c"__index");
        ffi::lua_pushcfunction(l, ngx_newindex);
        crate::lua::set_raw(l, -2, c"__newindex");
        ffi::lua_setmetatable(l, -2);
    }
}

/// Runs the Lua face (`lua/ngx_fields.lua`), which replaces both
/// metamethods of `ngx` and keeps the classic functions as its fallback.
///
/// # Safety
/// `l` must be the main state, not running, with the `ngx` global set.
pub unsafe fn install_ffi_face(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: the caller's contract
    unsafe {
        super::run_face(
            l,
            lua_source!("lua/ngx_fields.lua"),
            c"=ngx.fields",
            &[ngx_index, ngx_newindex],
            0,
            0,
        )
    }
}

/// The key at 2 when it is a string (a number must stay a number: `ngx[1]`
/// is not `ngx["1"]`).
unsafe fn string_key<'a>(l: *mut lua_State) -> &'a [u8] {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TSTRING {
        // SAFETY: `l` is the running state (callers' duty)
        (unsafe { to_bytes(l, 2) }).unwrap_or_default()
    } else {
        b""
    }
}

fn request_phase() -> Result<(), String> {
    context::check_request_data(context::ANY_REQUEST).map(|_| ())
}

unsafe fn index_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let key = unsafe { string_key(l) };
    match key {
        b"status" => {
            request_phase()?;
            let r = ctx::request()?.r;
            // SAFETY: `r` is the live request of the running context; `l`
            // is the running state Lua called this API function with
            unsafe { ffi::lua_pushinteger(l, status_of(r) as _) };
        }
        // SAFETY: `l` is the running state Lua called this API function with
        b"ctx" => unsafe { push_ctx(l) }?,
        b"headers_sent" => {
            request_phase()?;
            let sent = ctx::request()?.header_sent();
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_pushboolean(l, sent as _) };
        }
        b"is_subrequest" => {
            request_phase()?;
            let r = ctx::request()?.r;
            // SAFETY: `l` is the running state and `r` the live request of its context
            unsafe { ffi::lua_pushboolean(l, ((*r).main != r) as _) };
        }
        // SAFETY: `l` is the running state Lua called this API function with
        _ => unsafe { ffi::lua_pushnil(l) },
    }
    Ok(1)
}

/// `ngx.status` as lua-nginx-module reads it: an error page's status
/// first, and 9 for an HTTP/0.9 request that set none.
///
/// # Safety
/// `r` is a live request.
pub(crate) unsafe fn status_of(r: *mut nginx_sys::ngx_http_request_t) -> i32 {
    // SAFETY: `r` is a live request (caller's contract)
    let (err, status, version) = unsafe { ((*r).err_status, (*r).headers_out.status, (*r).http_version) };
    if err != 0 {
        err as i32
    } else if status != 0 {
        status as i32
    } else if version == nginx_sys::NGX_HTTP_VERSION_9 as _ {
        9
    } else {
        0
    }
}

/// `ngx.status = status`; after the header is sent this only logs, as
/// lua-nginx-module does.
///
/// # Safety
/// `r` is a live request.
pub(crate) unsafe fn set_status(r: *mut nginx_sys::ngx_http_request_t, status: i64) -> Result<(), String> {
    // SAFETY: `r` is a live request (caller's contract)
    if unsafe { (*r).header_sent() } != 0 {
        // SAFETY: `r` is a live request (caller's contract)
        let log = unsafe { (*(*r).connection).log };
        nlog::error(
            log,
            NGX_LOG_ERR,
            b"attempt to set ngx.status after sending out response headers",
        );
        return Ok(());
    }
    if !(100..=999).contains(&status) {
        return Err(format!("invalid HTTP status code {status}"));
    }
    // nginx has no status line of its own for 101.
    // SAFETY: `r` is a live request (caller's contract)
    unsafe {
        (*r).headers_out.status = status as _;
        (*r).err_status = 0;
        (*r).headers_out.status_line = if status == 101 {
            ngx_string_static(b"101 Switching Protocols")
        } else {
            nginx_sys::ngx_str_t::empty()
        };
    }
    Ok(())
}

/// What the FFI face of `ngx.ctx` may do in the running code.
pub(crate) enum CtxSlot {
    /// Read the table at this registry reference (or, for a set, put the
    /// new table there).
    Table(i32),
    /// Make the request's first table, a plain empty one, and hand its
    /// reference to [`adopt_ctx`]: what the classic function would do.
    Make,
}

/// The running request's `ngx.ctx` table as the FFI face may use it: None
/// when the classic function must answer (no request here, a first use
/// that needs more than an empty table, a set in handshake code, whose
/// table is the connection's too: see runtime/ssl_ctx.rs).
pub(crate) fn ctx_slot(for_set: bool) -> Option<CtxSlot> {
    let c = context::current();
    if c == context::INIT_WORKER
        || (!c.is(context::ON_FAKE_REQUEST) && request_phase().is_err())
        || (for_set && c.is(context::SSL_ANY))
    {
        return None;
    }
    let rc = ctx::current()?;
    if rc.ctx_ref > 0 {
        return Some(CtxSlot::Table(rc.ctx_ref));
    }
    let main = crate::lua::vm::current()?.main();
    // SAFETY: `rc.r` is the live request of the running context; `main`
    // is the main state of the VM running it.
    let plain =
        rc.ctx_ref == ffi::LUA_NOREF && unsafe { crate::runtime::ssl_ctx::makes_plain(rc.r, main, c) };
    (plain && !for_set).then_some(CtxSlot::Make)
}

/// Takes the registry reference `r` of the table the face made after
/// [`ctx_slot`] answered `Make` as the running request's `ngx.ctx`; false
/// (the face releases it) when that answer no longer holds.
pub(crate) fn adopt_ctx(r: i32) -> bool {
    if r <= 0 || !matches!(ctx_slot(false), Some(CtxSlot::Make)) {
        return false;
    }
    match ctx::current() {
        Some(rc) => {
            rc.ctx_ref = r;
            true
        }
        None => false,
    }
}

/// Registry key of init_worker_by_lua's `ngx.ctx` table.
static INIT_WORKER_CTX: u8 = 0;

/// ngx.ctx: one table per request (and per timer run, as in
/// lua-nginx-module), created on first use. init_worker_by_lua code has
/// one too (lua-nginx-module runs it on a fake request); it is kept for
/// the worker's life, a single small table.
unsafe fn push_ctx(l: *mut lua_State) -> Result<(), String> {
    match context::current() {
        c if c.is(context::ON_FAKE_REQUEST) => {}
        context::INIT_WORKER => {
            let key = &INIT_WORKER_CTX as *const u8 as *mut std::ffi::c_void;
            // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
            unsafe {
                ffi::lua_pushlightuserdata(l, key);
                ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
            }
            // SAFETY: `l` is the running state (callers' duty)
            if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TTABLE {
                // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
                unsafe {
                    ffi::lua_pop(l, 1);
                    ffi::lua_createtable(l, 0, 4);
                    ffi::lua_pushlightuserdata(l, key);
                    ffi::lua_pushvalue(l, -2);
                    ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
                }
            }
            return Ok(());
        }
        _ => request_phase()?,
    }
    let c = ctx::request()?;
    if c.ctx_ref == ffi::LUA_NOREF {
        let main = crate::lua::vm::current().map_or(l, |v| v.main());
        // SAFETY: `l` is the running state (callers' duty); `c.r` is the
        // live request of the running context
        unsafe {
            crate::runtime::ssl_ctx::push_new(l, main, c.r, context::current());
            ffi::lua_pushvalue(l, -1);
        }
        // SAFETY: `l` is the running state (callers' duty)
        c.ctx_ref = unsafe { ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX) };
    } else {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, c.ctx_ref as _) };
    }
    Ok(())
}

/// An ngx_str_t over static bytes (nginx only reads a status line).
fn ngx_string_static(s: &'static [u8]) -> nginx_sys::ngx_str_t {
    nginx_sys::ngx_str_t {
        len: s.len(),
        data: s.as_ptr().cast_mut(),
    }
}

unsafe fn newindex_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let key = unsafe { string_key(l) };
    match key {
        b"status" => {
            context::check_request_data(context::REQUEST_ALL)?;
            let r = ctx::request()?.r;
            // SAFETY: `l` is the running state Lua called this API function with
            let status = unsafe { check_number(l, 3, "status") }? as i64;
            // SAFETY: `r` is the live request of the running context
            unsafe { set_status(r, status) }?;
        }
        b"ctx" => {
            // Timers and handshake code have a ctx of their own too.
            if !context::current().is(context::ON_FAKE_REQUEST) {
                request_phase()?;
            }
            let c = ctx::request()?;
            // SAFETY: `l` is the running state Lua called this API function with
            if unsafe { ffi::lua_type(l, 3) } != ffi::LUA_TTABLE {
                // SAFETY: `l` is the running state Lua called this API function with
                let got = unsafe { crate::lua::type_name(l, 3) };
                return Err("ctx should be a table while getting a ".to_string() + &got);
            }
            if c.ctx_ref != ffi::LUA_NOREF {
                // SAFETY: `l` is the running state Lua called this API function with
                unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, c.ctx_ref) };
            }
            let main = crate::lua::vm::current().map_or(l, |v| v.main());
            // SAFETY: `l` is the running state Lua called this API function
            // with; `c.r` is the live request of the running context
            unsafe {
                ffi::lua_pushvalue(l, 3);
                crate::runtime::ssl_ctx::replace(l, main, c.r, context::current());
            }
            // SAFETY: `l` is the running state (callers' duty)
            c.ctx_ref = unsafe { ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX) };
        }
        _ => {
            // lua_rawset would raise (nil or NaN key) or write through a
            // non-table: refuse as Lua itself does for `t[nil] = v`.
            // SAFETY: `l` is the running state Lua called this API function with
            if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TTABLE {
                return Err(bad_arg(1, "__newindex", "table expected"));
            }
            // SAFETY: `l` is the running state Lua called this API function with
            match unsafe { ffi::lua_type(l, 2) } {
                ffi::LUA_TNIL | ffi::LUA_TNONE => return Err("table index is nil".into()),
                // SAFETY: `l` is the running state Lua called this API function with
                ffi::LUA_TNUMBER if unsafe { ffi::lua_tonumber(l, 2) }.is_nan() => {
                    return Err("table index is NaN".into());
                }
                _ => {}
            }
            // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
            unsafe {
                ffi::lua_settop(l, 3);
                ffi::lua_rawset(l, 1);
            }
        }
    }
    Ok(0)
}
