//! `ngx.socket.tcp()` (also `ngx.socket.stream`) and `ngx.socket.connect`:
//! the Lua face of `runtime::tcp_sock`.
//!
//! As in lua-nginx-module a socket object is a table whose slot 1 holds the
//! userdata owning the state; the methods live in the table's metatable.

use std::ffi::{CStr, c_int};

use nginx_sys::ngx_msec_t;

use super::output::append_value;
use crate::lua::lua_fns;
use crate::lua::lua_source;
use crate::lua::{LuaRet, bad_arg, check_bytes, check_number, ffi, lua_State, set_fn, type_name};
use crate::runtime::context::{self, YIELDABLE};
use crate::runtime::ctx::{self, RequestCtx};
use crate::runtime::scheduler::yield_wait;
use crate::runtime::tcp_sock::{RecvKind, SockWait, Step, TcpSock, UntilPat, Val, Vals, push_vals};

const UD_MT: &CStr = c"ngx_lua_tcp_socket_ud";
/// The same metatable under a light userdata key, for the check every
/// method call makes (no string to intern).
static UD_MT_KEY: u8 = 0;
const OBJ_MT: &CStr = c"ngx_lua_tcp_socket";
/// The same under a light userdata key, for `tcp()` (a registry lookup by
/// name interns the name's string every time).
static OBJ_MT_KEY: u8 = 0;
/// The matcher userdata of a `receiveuntil` iterator.
const UNTIL_MT: &CStr = c"ngx_lua_tcp_socket_until";

lua_fns! {
    tcp => tcp_impl,
    connect => connect_impl,
    send => send_impl,
    receive => receive_impl,
    receiveany => receiveany_impl,
    receiveuntil => receiveuntil_impl,
    until_iter => until_iter_impl,
    settimeout => settimeout_impl,
    settimeouts => settimeouts_impl,
    setoption => setoption_impl,
    getoption => getoption_impl,
    close => close_impl,
    setkeepalive => setkeepalive_impl,
    getreusedtimes => getreusedtimes_impl,
    bind => bind_impl,
    gc => gc_impl,
    until_gc => until_gc_impl,
    wait => wait_impl,
}

/// # Safety
/// The `ngx` table must be on top of `l` (the main state, not running).
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::new_metatable(l, UD_MT);
        set_fn(l, -1, c"__gc", gc);
        crate::lua::set_registry(l, &UD_MT_KEY);
        ffi::lua_pop(l, 1);
        crate::lua::new_metatable(l, UNTIL_MT);
        set_fn(l, -1, c"__gc", until_gc);
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_pop(l, 1);
        crate::lua::new_metatable(l, OBJ_MT);
        crate::lua::set_registry(l, &OBJ_MT_KEY);
        // The methods go into the metatable itself, its own __index, as in
        // lua-nginx-module: code that wraps a method through
        // getmetatable(sock) finds it there.
        ffi::lua_pushvalue(l, -1);
    }
    for (name, f) in [
        (c"connect", connect),
        (c"send", send),
        (c"receive", receive),
        (c"receiveany", receiveany),
        (c"receiveuntil", receiveuntil),
        (c"settimeout", settimeout),
        (c"settimeouts", settimeouts),
        (c"setoption", setoption),
        (c"getoption", getoption),
        (c"close", close),
        (c"setkeepalive", setkeepalive),
        (c"getreusedtimes", getreusedtimes),
        (c"bind", bind),
    ] {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        unsafe { set_fn(l, -1, name, f) };
    }
    // sslhandshake and the methods that take or return OpenSSL objects
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    (unsafe { super::socket_tls::install(l, -1) })?;
    // receive and send get Lua fast paths over the FFI (socket_ffi.rs),
    // given the methods table, the userdata's metatable and `wait`.
    let code = lua_source!("lua/socket.lua");
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract);
    // the buffer outlives the call
    let rc = unsafe { ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), c"=ngx.socket".as_ptr()) };
    if rc != 0 {
        // SAFETY: the load left its message on top of `l`'s stack
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up (caller's contract); the
    // chunk, the methods table below it and the metatable are on its stack
    let rc = unsafe {
        ffi::lua_pushvalue(l, -2);
        crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, UD_MT);
        ffi::lua_pushcfunction(l, wait);
        ffi::lua_pcall(l, 3, 0, 0)
    };
    if rc != 0 {
        // SAFETY: the failed call left its message on top of `l`'s stack
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::set_raw(l, -2, c"__index");
        ffi::lua_pop(l, 1);
    }

    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        socket_table(l);
        // The two metatables a new object gets, as upvalues: no registry
        // lookup per call.
        crate::lua::get_registry(l, &UD_MT_KEY);
        crate::lua::get_registry(l, &OBJ_MT_KEY);
        crate::lua::ffi::lua_pushcclosure(l, tcp, 2);
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_raw(l, -3, c"tcp");
        crate::lua::set_raw(l, -2, c"stream");
    }
    // ngx.socket.connect(...): a new socket, connected, or nil and the error.
    let code = br#"
local tcp = ...
return function(...)
    local sock = tcp()
    local ok, err = sock:connect(...)
    if not ok then
        return nil, err
    end
    return sock
end
"#;
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe {
        ffi::luaL_loadbuffer(
            l,
            code.as_ptr().cast(),
            code.len(),
            c"=ngx.socket.connect".as_ptr(),
        )
    } != 0
    {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's
    // contract); the socket table is below the chunk
    unsafe { crate::lua::get_raw(l, -2, c"tcp") };
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::lua_pcall(l, 1, 1, 0) } != 0 {
        // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        crate::lua::set_raw(l, -2, c"connect");
        ffi::lua_pop(l, 1);
    }
    Ok(())
}

unsafe fn tcp_impl(l: *mut lua_State) -> LuaRet {
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(
            "expecting zero arguments, but got ".to_string() + &unsafe { ffi::lua_gettop(l) }.to_string()
        );
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe {
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        new_bare(l, false);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
        ffi::lua_setmetatable(l, -2);
    }
    Ok(1)
}

/// Pushes a new socket object with the methods of metatable `mt`.
///
/// # Safety
/// `l` must be a valid state with room on its stack.
pub(crate) unsafe fn new_object(l: *mut lua_State, mt: &CStr, dgram: bool) {
    // SAFETY: `l` is a valid state with room (callers' duty)
    unsafe {
        crate::lua::get_registry(l, &UD_MT_KEY);
        new_bare(l, dgram);
        crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, mt);
        ffi::lua_setmetatable(l, -2);
    }
}

/// Replaces the socket userdata metatable on top of the stack with a new
/// socket object with no methods yet: its table holding the socket
/// userdata at [1].
///
/// # Safety
/// `l` must be a valid state with room on its stack and the userdata
/// metatable on top.
unsafe fn new_bare(l: *mut lua_State, dgram: bool) {
    // Only [1] is used: an array part that LuaJIT allocates with the table
    // itself, and no hash part.
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_createtable(l, 1, 0) };
    // SAFETY: `l` is the running state (callers' duty)
    let ud = unsafe { ffi::lua_newuserdata(l, std::mem::size_of::<*mut TcpSock>()) } as *mut *mut TcpSock;
    let mut s = crate::runtime::tcp_sock::new_sock();
    s.dgram = dgram;
    // SAFETY: `l` is the running state (callers' duty): the metatable,
    // the table and the userdata are its three top values
    unsafe {
        *ud = Box::into_raw(s);
        ffi::lua_pushvalue(l, -3);
        ffi::lua_setmetatable(l, -2);
        ffi::lua_rawseti(l, -2, 1);
        ffi::lua_replace(l, -2);
    }
}

unsafe fn gc_impl(l: *mut lua_State) -> LuaRet {
    // `__gc` can be fetched with getmetatable and called on anything.
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(ud) = (unsafe { crate::lua::udata_with(l, 1, &UD_MT_KEY) }) else {
        return Ok(0);
    };
    let ud = ud as *mut *mut TcpSock;
    // SAFETY: udata_of checked the userdata is a socket of ours: it holds one TcpSock pointer
    if !unsafe { (*ud).is_null() } {
        // SAFETY: a non-null slot holds the Box::into_raw of its TcpSock, taken once here
        let mut s = unsafe { Box::from_raw(*ud) };
        // SAFETY: the slot is ours; cleared so the socket is freed once
        unsafe {
            *ud = std::ptr::null_mut();
        }
        s.release();
        crate::runtime::tcp_sock::recycle(s);
    }
    Ok(0)
}

/// The socket state of the object at `idx`: never null. A raw pointer, not
/// a reference: the socket lives as long as its Lua object, which no Rust
/// lifetime describes; each caller borrows it for its own call only.
///
/// # Safety
/// `l` must be the running state of an API call.
pub(crate) unsafe fn sock_at(l: *mut lua_State, idx: c_int, fname: &str) -> Result<*mut TcpSock, String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, idx) } != ffi::LUA_TTABLE {
        // SAFETY: `l` is the running state (callers' duty)
        let got = if unsafe { ffi::lua_type(l, idx) } == ffi::LUA_TNONE {
            "no value".to_string()
        } else {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { type_name(l, idx) }
        };
        return Err(bad_arg(1, fname, &format!("table expected, got {got}")));
    }
    // Another object type's table (a shared dict, a semaphore...) passed as
    // `self` holds no socket userdata of ours at [1].
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_rawgeti(l, idx, 1) };
    // SAFETY: `l` is the running state (callers' duty)
    let ud = unsafe { crate::lua::udata_with(l, -1, &UD_MT_KEY) };
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pop(l, 1) };
    let ud = ud.map_or(std::ptr::null_mut(), |p| p as *mut *mut TcpSock);
    // SAFETY: a non-null `ud` is a socket userdata of ours holding one TcpSock pointer
    if ud.is_null() || unsafe { (*ud).is_null() } {
        return Err("bad socket".into());
    }
    // SAFETY: `ud` is a socket userdata of ours (checked above)
    Ok(unsafe { *ud })
}

/// The checks every method makes: the phase, the request, and that the
/// socket is not another request's. The socket is a raw pointer, as from
/// [`sock_at`].
///
/// # Safety
/// `l` must be the running state of an API call.
pub(crate) unsafe fn method<'a>(
    l: *mut lua_State,
    idx: c_int,
    fname: &str,
) -> Result<(&'a mut RequestCtx, *mut TcpSock), String> {
    let ctx = ctx::request()?;
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state (callers' duty)
    let sp = unsafe { sock_at(l, idx, fname) }?;
    // SAFETY: sock_at returns the live socket of a Lua object; this
    // reference ends here.
    let s = unsafe { &*sp };
    // A socket whose connection is gone reports "closed" to whoever uses
    // it (its request's end closed it), as lua-nginx-module checks that
    // before the request.
    if !s.conn.is_null() && !owned_by(s, ctx) {
        return Err("bad request".into());
    }
    Ok((ctx, sp))
}

pub(crate) fn owned_by(s: &TcpSock, ctx: &RequestCtx) -> bool {
    // SAFETY: ctx.r is the live running request.
    s.owner
        .is_none_or(|o| o == unsafe { crate::runtime::tcp_sock::owner_id(ctx.r) })
}

/// luaL_argerror's text for argument `narg` of the running C function: in a
/// method call (`sock:send(x)`) `self` is not counted; an unknown function
/// name (a call through pcall) is '?'.
pub(crate) unsafe fn argerror(l: *mut lua_State, narg: c_int, extra: &str) -> String {
    // SAFETY: lua_Debug is plain C data, all-zero is a valid value
    let mut ar = unsafe { std::mem::MaybeUninit::<ffi::lua_Debug>::zeroed().assume_init() };
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_getstack(l, 0, &mut ar) } == 0 {
        return format!("bad argument #{narg} ({extra})");
    }
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_getinfo(l, c"n".as_ptr(), &mut ar) };
    let name = if ar.name.is_null() {
        "?".to_string()
    } else {
        // SAFETY: lua_getinfo set a non-null `name` to a NUL-terminated string
        (unsafe { CStr::from_ptr(ar.name) })
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: lua_getinfo set a non-null `namewhat` to a NUL-terminated string
    let method = !ar.namewhat.is_null() && unsafe { CStr::from_ptr(ar.namewhat) }.to_bytes() == b"method";
    let mut narg = narg;
    if method {
        narg -= 1;
        if narg == 0 {
            return format!("calling '{name}' on bad self ({extra})");
        }
    }
    format!("bad argument #{narg} to '{name}' ({extra})")
}

/// The bytes `send` writes for the value at `idx`: strings, numbers, nil
/// and booleans as text, array tables (nested) of strings and numbers.
unsafe fn send_data(l: *mut lua_State, idx: c_int, out: &mut Vec<u8>) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    match unsafe { ffi::lua_type(l, idx) } {
        ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if unsafe { ffi::lua_toboolean(l, idx) } != 0 {
            b"true"
        } else {
            b"false"
        }),
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TSTRING | ffi::LUA_TNUMBER => unsafe { append_value(l, idx, 2, "send", out) }?,
        // SAFETY: `l` is the running state (callers' duty)
        ffi::LUA_TTABLE => unsafe { send_table(l, idx, out, 0) }?,
        _ => {
            // SAFETY: `l` is the running state (callers' duty)
            return Err(unsafe {
                argerror(
                    l,
                    2,
                    &format!(
                        "string, number, boolean, nil, or array table expected, got {}",
                        type_name(l, idx)
                    ),
                )
            });
        }
    }
    Ok(())
}

unsafe fn send_table(l: *mut lua_State, idx: c_int, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    // SAFETY: `l` is the running state (callers' duty)
    if depth >= 1000 || unsafe { ffi::lua_checkstack(l, 3) } == 0 {
        return Err("stack overflow".into());
    }
    // Every key a positive integer; the largest is the length.
    let mut max = 0usize;
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { ffi::lua_pushnil(l) };
    // SAFETY: `l` is the running state (callers' duty)
    while unsafe { ffi::lua_next(l, idx) } != 0 {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the running state (callers' duty)
        let k = if unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TNUMBER {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_tonumber(l, -1) }
        } else {
            0.0
        };
        if k < 1.0 || k.fract() != 0.0 {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { ffi::lua_pop(l, 1) };
            // SAFETY: `l` is the running state (callers' duty)
            return Err(unsafe { argerror(l, 2, "non-array table found") });
        }
        max = max.max(k as usize);
    }
    for i in 1..=max {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_rawgeti(l, idx, i as _) };
        // SAFETY: `l` is the running state (callers' duty)
        let top = unsafe { ffi::lua_gettop(l) };
        // SAFETY: `l` is the running state (callers' duty)
        let r = match unsafe { ffi::lua_type(l, top) } {
            // SAFETY: `l` is the running state (callers' duty)
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => unsafe { append_value(l, top, 2, "send", out) },
            // SAFETY: `l` is the running state (callers' duty)
            ffi::LUA_TTABLE => unsafe { send_table(l, top, out, depth + 1) },
            // SAFETY: `l` is the running state (callers' duty)
            _ => Err(unsafe { argerror(l, 2, &format!("bad data type {} found", type_name(l, top))) }),
        };
        // SAFETY: `l` is the running state (callers' duty)
        unsafe { ffi::lua_pop(l, 1) };
        r?;
    }
    Ok(())
}

/// Returns the results of a finished step, or parks the running thread on
/// the socket and yields.
pub(crate) unsafe fn finish_step(
    l: *mut lua_State,
    ctx: &mut RequestCtx,
    s: &mut TcpSock,
    step: Step,
) -> LuaRet {
    match step {
        // SAFETY: `l` is the running state (callers' duty)
        Step::Ready(v) => Ok(unsafe { s.push(l, &v) }),
        Step::Wait => {
            let ctx_ptr: *mut RequestCtx = ctx;
            let sp: *mut TcpSock = s;
            let Some(t) = ctx.running_thread() else {
                s.abort();
                return Err("no request thread to suspend".into());
            };
            let side = s.unclaimed_side();
            t.wait = Some(crate::runtime::scheduler::Pending::Sock(SockWait(sp, side)));
            s.set_waiter(side, ctx_ptr, t.co);
            // SAFETY: `l` is the running state; the wait it yields for is stored on its thread
            unsafe { yield_wait(l) }
        }
    }
}

/// Parks the running thread on the operation that a fast path of
/// `lua/socket.lua` started and that waits (socket_ffi.rs said so), and
/// yields: the operation's results come back as this call's.
unsafe fn wait_impl(l: *mut lua_State) -> LuaRet {
    let ctx = ctx::request()?;
    context::check(YIELDABLE)?;
    // Only lua/socket.lua has this function: it passes the socket userdata
    // that it checked and that the fast path just used (no second check of
    // its metatable, half the cost of this call).
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, 1) } != ffi::LUA_TUSERDATA {
        return Err("bad socket".into());
    }
    // SAFETY: a socket userdata's payload is its socket pointer (null once
    // collected)
    let s = unsafe { *(ffi::lua_touserdata(l, 1) as *mut *mut TcpSock) };
    // SAFETY: the live socket of that userdata; the only reference to it in this call
    let Some(s) = (unsafe { s.as_mut() }) else {
        return Err("bad socket".into());
    };
    if !s.conn.is_null() && !owned_by(s, ctx) {
        return Err("bad request".into());
    }
    if !s.has_unclaimed() {
        return Err("no pending socket operation".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, Step::Wait) }
}

/// Pushes lua-nginx-module's "socket busy ..." results when an operation on
/// the read and/or write side cannot start now.
///
/// # Safety
/// `l` must be the running state of an API call, with room for 2 values.
pub(crate) unsafe fn busy(l: *mut lua_State, s: &TcpSock, read: bool, write: bool) -> Option<c_int> {
    // SAFETY: l is the running state (caller's contract).
    s.busy_for(read, write)
        .map(|e| unsafe { push_vals(l, &Val::err(e)) })
}

unsafe fn connect_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let mut n = unsafe { ffi::lua_gettop(l) };
    if !(2..=4).contains(&n) {
        return Err(format!(
            "ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen {n}"
        ));
    }
    let ctx = ctx::request()?;
    context::check(YIELDABLE)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "connect") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let host = unsafe { check_bytes(l, 2, "connect") }?;
    // The options table is the last argument, whichever it is.
    let mut pool = None;
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_type(l, n) } == ffi::LUA_TTABLE {
        let opts = n;
        // SAFETY: `l` is the running state Lua called this API function with
        (unsafe { crate::lua::get_field(l, opts, c"pool_size") })?;
        // SAFETY: `l` is the running state Lua called this API function with
        match unsafe { ffi::lua_type(l, -1) } {
            ffi::LUA_TNIL => {}
            // SAFETY: `l` is the running state Lua called this API function with
            _ if unsafe { ffi::lua_isnumber(l, -1) } != 0 => {
                // SAFETY: `l` is the running state Lua called this API function with
                let v = unsafe { ffi::lua_tointeger(l, -1) } as i64;
                if v <= 0 {
                    // SAFETY: `l` is the running state Lua called this API function with
                    return Err(unsafe {
                        argerror(l, opts, &format!("bad \"pool_size\" option value: {v}"))
                    });
                }
                s.pool_size = Some(v as usize);
            }
            _ => {
                // SAFETY: `l` is the running state Lua called this API function with
                let t = unsafe { type_name(l, -1) };
                // SAFETY: `l` is the running state Lua called this API function with
                return Err(unsafe { argerror(l, opts, &format!("bad \"pool_size\" option type: {t}")) });
            }
        }
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the running state Lua called this API function with
        (unsafe { crate::lua::get_field(l, opts, c"backlog") })?;
        // SAFETY: `l` is the running state Lua called this API function with
        if unsafe { ffi::lua_isnumber(l, -1) } != 0 {
            // SAFETY: `l` is the running state Lua called this API function with
            let v = unsafe { ffi::lua_tointeger(l, -1) } as i64;
            if v < 0 {
                // SAFETY: `l` is the running state Lua called this API function with
                return Err(unsafe { argerror(l, opts, &format!("bad \"backlog\" option value: {v}")) });
            }
            s.backlog = Some(v as usize);
        }
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pop(l, 1) };
        // SAFETY: `l` is the running state Lua called this API function with
        (unsafe { crate::lua::get_field(l, opts, c"pool") })?;
        // SAFETY: `l` is the running state Lua called this API function with
        match unsafe { ffi::lua_type(l, -1) } {
            ffi::LUA_TNIL => {}
            // SAFETY: `l` is the running state Lua called this API function with
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                // SAFETY: `l` is the running state Lua called this API function with
                pool = Some(unsafe { check_bytes(l, -1, "connect") }?.to_vec())
            }
            _ => {
                // SAFETY: `l` is the running state Lua called this API function with
                let t = unsafe { type_name(l, -1) };
                // SAFETY: `l` is the running state Lua called this API function with
                return Err(unsafe { argerror(l, opts, &format!("bad \"pool\" option type: {t}")) });
            }
        }
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pop(l, 1) };
        n -= 1;
    }
    let unix = host.len() >= 5 && host[..5].eq_ignore_ascii_case(b"unix:");
    // SAFETY: `l` is the running state Lua called this API function with
    let port = if n >= 3 && unsafe { ffi::lua_isnumber(l, 3) } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        let p = unsafe { ffi::lua_tointeger(l, 3) } as i64;
        if !(0..=65535).contains(&p) {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &Val::err(&format!("bad port number: {p}"))) });
        }
        p as u16
    } else if unix {
        0
    } else {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("missing the port number")) });
    };
    // A socket still tied to another live request is not ours to use; once
    // that request ended (its cleanup closed the socket) any request may
    // connect it again.
    if !s.r.is_null() && !owned_by(s, ctx) {
        return Err("bad request".into());
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, true) } {
        return Ok(n);
    }
    // SAFETY: `ctx.r` is the live request of the running context
    (unsafe { s.bind_request(ctx.r) })?;
    let pool = pool.as_deref();
    let step = if unix {
        s.connect(&host[5..], 0, true, pool)
    } else {
        s.connect(host, port, false, pool)
    };
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

pub(crate) unsafe fn send_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 2 {
        return Err(format!(
            "expecting 2 arguments (including the object), but got {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, 1, "send") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if let Some(v) = s.send_closed() {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &v) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, false, true) } {
        return Ok(n);
    }
    let mut data = Vec::new();
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { send_data(l, 2, &mut data) })?;
    let step = s.send(data);
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

pub(crate) unsafe fn receive_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=2).contains(&n) {
        return Err(format!(
            "expecting 1 or 2 arguments (including the object), but got {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, 1, "receive") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if let Some(v) = s.recv_closed() {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &v) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, false) } {
        return Ok(n);
    }
    let kind = if n == 1 {
        RecvKind::Line
    // SAFETY: `l` is the running state Lua called this API function with
    } else if unsafe { ffi::lua_isnumber(l, 2) } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        let v = unsafe { ffi::lua_tointeger(l, 2) } as i64;
        if v < 0 {
            // SAFETY: `l` is the running state Lua called this API function with
            return Err(unsafe { argerror(l, 2, "bad pattern argument") });
        }
        if v == 0 {
            // SAFETY: `l` is the running state Lua called this API function with
            return Ok(unsafe { push_vals(l, &[Val::Str(Vec::new())]) });
        }
        RecvKind::Size(v as usize)
    // SAFETY: `l` is the running state Lua called this API function with
    } else if unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TSTRING {
        // SAFETY: `l` is the running state Lua called this API function with
        let p = unsafe { check_bytes(l, 2, "receive") }?;
        match p {
            b"*l" => RecvKind::Line,
            b"*a" => RecvKind::All,
            // SAFETY: `l` is the running state Lua called this API function with
            [b'*', _] => return Err(unsafe { argerror(l, 2, "bad pattern argument") }),
            _ => {
                let shown = String::from_utf8_lossy(p).into_owned();
                // SAFETY: `l` is the running state Lua called this API function with
                return Err(unsafe { argerror(l, 2, &format!("bad pattern argument: {shown}")) });
            }
        }
    } else {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(unsafe { argerror(l, 2, "bad pattern argument") });
    };
    let step = s.receive(kind);
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

pub(crate) unsafe fn receiveany_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n != 2 {
        return Err(format!(
            "expecting 2 arguments (including the object), but got {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, 1, "receiveany") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if let Some(v) = s.recv_closed() {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &v) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, false) } {
        return Ok(n);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_isnumber(l, 2) } == 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(unsafe { argerror(l, 2, "bad max argument") });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let max = unsafe { ffi::lua_tointeger(l, 2) } as i64;
    if max <= 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(unsafe { argerror(l, 2, "bad max argument") });
    }
    let step = s.receive(RecvKind::Any(max as usize));
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

pub(crate) unsafe fn receiveuntil_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(2..=3).contains(&n) {
        return Err(format!(
            "expecting 2 or 3 arguments (including the object), but got {n}"
        ));
    }
    // Only the iterator reads, and checks the socket's state then.
    ctx::request()?;
    // SAFETY: `l` is the running state Lua called this API function with
    (unsafe { sock_at(l, 1, "receiveuntil") })?;
    let mut inclusive = false;
    if n == 3 {
        // SAFETY: `l` is the running state Lua called this API function with
        if unsafe { ffi::lua_type(l, 3) } != ffi::LUA_TTABLE {
            return Err(bad_arg(
                3,
                "receiveuntil",
                // SAFETY: `l` is the running state Lua called this API function with
                &format!("table expected, got {}", unsafe { type_name(l, 3) }),
            ));
        }
        // SAFETY: `l` is the running state Lua called this API function with
        (unsafe { crate::lua::get_field(l, 3, c"inclusive") })?;
        // SAFETY: `l` is the running state Lua called this API function with
        match unsafe { ffi::lua_type(l, -1) } {
            ffi::LUA_TNIL => {}
            // SAFETY: `l` is the running state Lua called this API function with
            ffi::LUA_TBOOLEAN => inclusive = unsafe { ffi::lua_toboolean(l, -1) } != 0,
            _ => {
                return Err(format!(
                    "bad \"inclusive\" option value type: {}",
                    // SAFETY: `l` is the running state Lua called this API function with
                    unsafe { type_name(l, -1) }
                ));
            }
        }
        // SAFETY: `l` is the running state Lua called this API function with
        unsafe { ffi::lua_pop(l, 1) };
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let pat = unsafe { check_bytes(l, 2, "receiveuntil") }?;
    if pat.is_empty() {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("pattern is empty")) });
    }
    let pat = Box::new(std::rc::Rc::new(UntilPat::new(pat.to_vec(), inclusive)));
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushvalue(l, 1) };
    // SAFETY: `l` is the running state Lua called this API function with
    let ud = unsafe { ffi::lua_newuserdata(l, std::mem::size_of::<*mut std::rc::Rc<UntilPat>>()) }
        as *mut *mut std::rc::Rc<UntilPat>;
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe {
        *ud = Box::into_raw(pat);
        crate::lua::get_raw(l, ffi::LUA_REGISTRYINDEX, UNTIL_MT);
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pushcclosure(l, until_iter, 2);
    }
    Ok(1)
}

unsafe fn until_gc_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(ud) = (unsafe { crate::lua::udata_of(l, 1, UNTIL_MT) }) else {
        return Ok(0);
    };
    let ud = ud as *mut *mut std::rc::Rc<UntilPat>;
    // SAFETY: udata_of checked the userdata is an iterator of ours: it holds one pattern pointer
    if !unsafe { (*ud).is_null() } {
        // SAFETY: a non-null slot holds the Box::into_raw of its pattern, taken once here
        drop(unsafe { Box::from_raw(*ud) });
        // SAFETY: the slot is ours; cleared so the pattern is freed once
        unsafe {
            *ud = std::ptr::null_mut();
        }
    }
    Ok(0)
}

/// The iterator `receiveuntil` returns: the data up to the next occurrence
/// of the pattern, or (given a size) the stream between two occurrences in
/// pieces of at most that size, each such run ended by `nil, nil, nil`.
unsafe fn until_iter_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if n > 1 {
        return Err(format!("expecting 0 or 1 arguments, but seen {n}"));
    }
    let size = if n == 1 {
        // SAFETY: `l` is the running state Lua called this API function with
        let v = unsafe { check_number(l, 1, "iterator") }?;
        crate::glue::cconv::int64(v).max(0) as usize
    } else {
        0
    };
    // A closed socket is reported before anything else, without a log line.
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, ffi::lua_upvalueindex(1), "receiveuntil") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if s.conn.is_null() || s.read_closed {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("closed")) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (ctx, s) = unsafe { method(l, ffi::lua_upvalueindex(1), "receiveuntil") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let Some(ud) = (unsafe { crate::lua::udata_of(l, ffi::lua_upvalueindex(2), UNTIL_MT) }) else {
        return Err("bad pattern".into());
    };
    let ud = ud as *mut *mut std::rc::Rc<UntilPat>;
    // SAFETY: udata_of checked the userdata is an iterator of ours: it holds one pattern pointer
    if unsafe { (*ud).is_null() } {
        return Err("bad pattern".into());
    }
    // SAFETY: a non-null slot points at its live boxed pattern
    let pat = unsafe { (**ud).clone() };
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, false) } {
        return Ok(n);
    }
    if pat.state.get() < 0 {
        pat.state.set(0);
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &[Val::Nil, Val::Nil, Val::Nil]) });
    }
    let step = s.receive(RecvKind::Until(pat, size));
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { finish_step(l, ctx, s, step) }
}

pub(crate) unsafe fn timeout_arg(
    l: *mut lua_State,
    idx: c_int,
    _fname: &str,
) -> Result<Option<ngx_msec_t>, String> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, idx) } == ffi::LUA_TNIL || unsafe { ffi::lua_type(l, idx) } == ffi::LUA_TNONE
    {
        return Ok(None);
    }
    // lua-nginx-module's `(ngx_int_t) lua_tonumber(L, n)`, refused outside
    // [0, 2^31): NaN and infinities too (a non-number is 0, the default).
    // SAFETY: `l` is the running state (callers' duty)
    let v = crate::glue::cconv::int64(unsafe { ffi::lua_tonumber(l, idx) });
    if v >> 31 != 0 {
        return Err("bad timeout value".into());
    }
    Ok((v > 0).then_some(v as ngx_msec_t))
}

pub(crate) unsafe fn settimeout_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "settimeout") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 2 {
        return Err(format!(
            "ngx.socket settimeout: expecting 2 arguments (including the object) but seen {}",
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_gettop(l) }
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let t = unsafe { timeout_arg(l, 2, "settimeout") }?;
    s.timeouts = [t; 3];
    Ok(0)
}

pub(crate) unsafe fn settimeouts_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "settimeouts") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 4 {
        return Err(format!(
            "ngx.socket settimeouts: expecting 4 arguments (including the object) but seen {}",
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_gettop(l) }
        ));
    }
    for i in 0..3 {
        // SAFETY: `l` is the running state Lua called this API function with
        s.timeouts[i] = unsafe { timeout_arg(l, i as c_int + 2, "settimeouts") }?;
    }
    Ok(0)
}

/// The socket level and name of a `setoption`/`getoption` option.
fn sockopt(name: &[u8]) -> Option<(c_int, c_int)> {
    Some(match name {
        b"keepalive" => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        b"reuseaddr" => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
        b"tcp-nodelay" => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        b"sndbuf" => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        b"rcvbuf" => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        _ => return None,
    })
}

/// The option name argument of `setoption`/`getoption`, or the results
/// lua-resty-core's versions return for a missing or unknown one.
unsafe fn option_arg(l: *mut lua_State) -> Result<(c_int, c_int), Vals> {
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_isnoneornil(l, 2) } != 0 {
        return Err(Val::err("missing the \"option\" argument"));
    }
    // SAFETY: `l` is the running state (callers' duty)
    let name = unsafe { crate::lua::to_bytes(l, 2) }.unwrap_or_default();
    sockopt(name).ok_or_else(|| {
        // SAFETY: `l` is the running state (callers' duty)
        let shown = if unsafe { ffi::lua_type(l, 2) } == ffi::LUA_TSTRING {
            String::from_utf8_lossy(name).into_owned()
        } else {
            // SAFETY: `l` is the running state (callers' duty)
            unsafe { type_name(l, 2) }
        };
        Val::err(&format!("unsupported option {shown}"))
    })
}

/// lua-resty-core's socket methods find no socket state before the first
/// `connect` (lua-nginx-module makes it there) and raise; a request socket
/// has its state from the start.
pub(crate) fn never_connected(s: &TcpSock) -> Result<(), String> {
    if !s.was_connected() && s.downstream.is_none() {
        return Err("socket is never created nor connected".into());
    }
    Ok(())
}

/// nginx's text for a system error (not lowercased, unlike the I/O errors).
fn strerror(e: c_int) -> String {
    let t = std::io::Error::from_raw_os_error(e).to_string();
    t.split(" (os error").next().unwrap_or("error").to_string()
}

unsafe fn setoption_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "setoption") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    never_connected(s)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let (level, name) = match unsafe { option_arg(l) } {
        Ok(o) => o,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(v) => return Ok(unsafe { push_vals(l, &v) }),
    };
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_isnoneornil(l, 3) } != 0 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("missing the \"value\" argument")) });
    }
    if s.conn.is_null() {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("closed")) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let v: c_int = match unsafe { ffi::lua_type(l, 3) } {
        // SAFETY: `l` is the running state Lua called this API function with
        ffi::LUA_TBOOLEAN => unsafe { ffi::lua_toboolean(l, 3) },
        // SAFETY: `l` is the running state Lua called this API function with
        _ => unsafe { check_number(l, 3, "setoption") }? as c_int,
    };
    // SAFETY: the socket's connection is live (checked by the method's checks); `v` is a live c_int
    let rc = unsafe {
        libc::setsockopt(
            (*s.conn).fd,
            level,
            name,
            &v as *const c_int as *const libc::c_void,
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if rc == -1 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err(&strerror(e))) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

unsafe fn getoption_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "getoption") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    never_connected(s)?;
    // SAFETY: `l` is the running state Lua called this API function with
    let (level, name) = match unsafe { option_arg(l) } {
        Ok(o) => o,
        // SAFETY: `l` is the running state Lua called this API function with
        Err(v) => return Ok(unsafe { push_vals(l, &v) }),
    };
    if s.conn.is_null() {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("closed")) });
    }
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: the socket's connection is live (checked by the method's checks); `v` and `len` are live
    let rc = unsafe {
        libc::getsockopt(
            (*s.conn).fd,
            level,
            name,
            &mut v as *mut c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if rc == -1 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err(&strerror(e))) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { push_vals(l, &[Val::Int(v as i64)]) })
}

pub(crate) unsafe fn close_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err(format!(
            "expecting 1 argument (including the object) but seen {}",
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_gettop(l) }
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (_ctx, s) = unsafe { method(l, 1, "close") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if s.conn.is_null() || (s.read_closed && s.write_closed) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("closed")) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    if let Some(n) = unsafe { busy(l, s, true, true) } {
        return Ok(n);
    }
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { push_vals(l, &s.close()) })
}

unsafe fn setkeepalive_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    let n = unsafe { ffi::lua_gettop(l) };
    if !(1..=3).contains(&n) {
        return Err(format!(
            "expecting 1 to 3 arguments (including the object), but got {n}"
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (_ctx, s) = unsafe { method(l, 1, "setkeepalive") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let timeout = match unsafe { ffi::lua_type(l, 2) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => None,
        _ => {
            // SAFETY: `l` is the running state Lua called this API function with
            let v = unsafe { check_number(l, 2, "setkeepalive") }?;
            if v < 0.0 {
                return Err(format!("bad \"timeout\" argument: {v}"));
            }
            Some(v as ngx_msec_t)
        }
    };
    // The size only matters when this creates the pool.
    // SAFETY: `l` is the running state Lua called this API function with
    let size = match unsafe { ffi::lua_type(l, 3) } {
        ffi::LUA_TNONE | ffi::LUA_TNIL => None,
        _ => {
            // SAFETY: `l` is the running state Lua called this API function with
            let v = unsafe { check_number(l, 3, "setkeepalive") }? as i64;
            if v <= 0 && !s.conn.is_null() && !crate::runtime::socket_pool::exists(&s.pool_key) {
                // SAFETY: `l` is the running state Lua called this API function with
                return Err(unsafe { argerror(l, n, &format!("bad \"pool_size\" option value: {v}")) });
            }
            Some(v.max(1) as usize)
        }
    };
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { push_vals(l, &s.setkeepalive(timeout, size)) })
}

unsafe fn getreusedtimes_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 1 {
        return Err(format!(
            "expecting 1 argument (including the object), but got {}",
            // SAFETY: `l` is the running state Lua called this API function with
            unsafe { ffi::lua_gettop(l) }
        ));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let s = unsafe { sock_at(l, 1, "getreusedtimes") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    if s.conn.is_null() || (s.read_closed && s.write_closed) {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("closed")) });
    }
    // SAFETY: `l` is the running state Lua called this API function with
    Ok(unsafe { push_vals(l, &[Val::Int(s.reused as i64)]) })
}

pub(crate) unsafe fn bind_impl(l: *mut lua_State) -> LuaRet {
    // SAFETY: `l` is the running state Lua called this API function with
    if unsafe { ffi::lua_gettop(l) } != 2 {
        // SAFETY: `l` is the running state Lua called this API function with
        return Err(format!("expecting 2 arguments, but got {}", unsafe {
            ffi::lua_gettop(l)
        }));
    }
    // SAFETY: `l` is the running state Lua called this API function with
    let (_ctx, s) = unsafe { method(l, 1, "bind") }?;
    // SAFETY: the live socket of the Lua object just checked; the only reference to it in this call
    let s = unsafe { &mut *s };
    // SAFETY: `l` is the running state Lua called this API function with
    let ip = unsafe { check_bytes(l, 2, "bind") }?.to_vec();
    let text = String::from_utf8_lossy(&ip).into_owned();
    let Ok(addr) = text.parse::<std::net::IpAddr>() else {
        // SAFETY: `l` is the running state Lua called this API function with
        return Ok(unsafe { push_vals(l, &Val::err("bad address")) });
    };
    let mut b = Box::new((
        crate::glue::peer::Addr::ip(addr, 0),
        // SAFETY: ngx_addr_t is plain C data; all-zero is valid
        unsafe { std::mem::zeroed::<nginx_sys::ngx_addr_t>() },
        ip,
    ));
    b.1.sockaddr = b.0.as_ptr();
    b.1.socklen = b.0.len;
    b.1.name = nginx_sys::ngx_str_t {
        len: b.2.len(),
        data: b.2.as_mut_ptr(),
    };
    s.local = Some(b);
    s.debug(format_args!("lua tcp socket bind ip: {text}"));
    // SAFETY: `l` is the running state Lua called this API function with
    unsafe { ffi::lua_pushboolean(l, 1) };
    Ok(1)
}

/// Pushes `ngx.socket` (created if absent); the `ngx` table is on top.
///
/// # Safety
/// The `ngx` table must be on top of `l`.
pub unsafe fn socket_table(l: *mut lua_State) {
    // SAFETY: `l` is the running state (callers' duty)
    unsafe { crate::lua::get_raw(l, -1, c"socket") };
    // SAFETY: `l` is the running state (callers' duty)
    if unsafe { ffi::lua_type(l, -1) } != ffi::LUA_TTABLE {
        // SAFETY: `l` is the running state (callers' duty)
        unsafe {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 4);
            ffi::lua_pushvalue(l, -1);
            crate::lua::set_raw(l, -3, c"socket");
        }
    }
}
