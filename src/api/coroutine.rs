//! `coroutine.*` replaced so that a wait inside a user coroutine suspends
//! the whole request: the wait sentinel is passed up to the scheduler and
//! the results of the wait come back down into the same coroutine, while a
//! plain `coroutine.yield` still returns to its resumer as in plain Lua.

use std::ffi::c_void;

use crate::lua::{ffi, lua_State};
use crate::runtime::scheduler::{WRAP_FAILURES, YIELD_MARK};

const WRAPPERS: &[u8] = br#"
local MARK, failures, thread_status = ...
-- As lua-nginx-module: loading OpenResty LuaJIT's thread.exdata also
-- defines the global `exdata` (the request of the running coroutine).
pcall(require, "thread.exdata")
local co_create, co_yield, co_status = coroutine.create, coroutine.yield, coroutine.status
local co_wrap = coroutine.wrap
local co_running = coroutine.running
local select, error, unpack, type = select, error, unpack, type
local get_phase = ngx.get_phase

-- Where lua-nginx-module leaves LuaJIT's own coroutine functions in place:
-- outside requests (init_by_lua) and in the output filters.
local function std_context()
    local phase = get_phase()
    return phase == "init" or phase == "header_filter" or phase == "body_filter"
end

-- Each nested resume runs on the worker's C stack: past this depth a
-- resume fails instead, where unbounded nesting (a function that resumes a
-- new coroutine of itself) would overflow that stack.
local MAX_NESTED = 200
local native_resume = coroutine.resume
local nested = 0

local function leave(...)
    nested = nested - 1
    return ...
end

local function status(co)
    return thread_status(co) or co_status(co)
end

local function co_resume(co, ...)
    if type(co) ~= "thread" then
        -- level 3: the code that called coroutine.resume
        error("bad argument #1 to 'resume' (coroutine expected)", 3)
    end
    local st = status(co)
    if st ~= "suspended" and not std_context() then
        -- lua-nginx-module names the status ("normal", "running", "dead")
        return false, "cannot resume " .. st .. " coroutine"
    end
    if nested >= MAX_NESTED then
        return false, "C stack overflow"
    end
    nested = nested + 1
    return leave(native_resume(co, ...))
end

local function pass(co, ok, ...)
    if ok and select('#', ...) == 1 and (...) == MARK and co_status(co) == "suspended" then
        -- An API wait inside `co`: suspend our own thread too, then hand
        -- what we are resumed with back down to `co`.
        return pass(co, co_resume(co, co_yield(MARK)))
    end
    return ok, ...
end

coroutine.status = status

function coroutine.resume(co, ...)
    return pass(co, co_resume(co, ...))
end

-- A wrapped coroutine's error goes on in its caller. In a request the
-- message stays as it is and the failed coroutines are noted for the
-- traceback (innermost first); elsewhere LuaJIT's wrap adds the caller's
-- position.
local function unwrap(co, ok, ...)
    if ok then
        return ...
    end
    local msg = ...
    if std_context() then
        error(msg, 2)
    end
    local inner = failures[co]
    local chain = { co }
    if inner and inner.msg == msg then
        chain = inner.chain
        chain[#chain + 1] = co
    end
    failures[co_running()] = { msg = msg, chain = chain }
    error(msg, 0)
end

function coroutine.wrap(f)
    local co = co_create(f)
    return function(...)
        local st = status(co)
        if st ~= "suspended" and not std_context() then
            -- lua-nginx-module returns resume's refusal instead of raising
            return false, "cannot resume " .. st .. " coroutine"
        end
        return unwrap(co, pass(co, co_resume(co, ...)))
    end
end

-- The table's shape is lua-nginx-module's: LuaJIT's own functions stay
-- reachable as coroutine._create, ._yield, ... (lua-resty-core's modules
-- yield with coroutine._yield), the request-aware ones also as
-- coroutine.__create, ...; it has no isyieldable.
local std = { create = co_create, wrap = co_wrap, resume = native_resume,
              yield = co_yield, status = co_status }
for _, k in ipairs({ "create", "wrap", "resume", "yield", "status" }) do
    coroutine["_" .. k] = std[k]
    coroutine["__" .. k] = coroutine[k]
end
coroutine.isyieldable = nil
"#;

/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    let name = c"=coroutine_wrappers";
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    if unsafe { ffi::luaL_loadbuffer(l, WRAPPERS.as_ptr().cast(), WRAPPERS.len(), name.as_ptr()) } != 0 {
        // SAFETY: the failed load left its message on top
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe { ffi::lua_pushlightuserdata(l, &YIELD_MARK as *const u8 as *mut c_void) };
    // Weak keys: a record goes with the coroutine that raised it.
    // SAFETY: `l` is the VM's main state being set up, not running (caller's contract)
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushstring(l, c"__mode".as_ptr());
        ffi::lua_pushstring(l, c"k".as_ptr());
        ffi::lua_rawset(l, -3);
        ffi::lua_setmetatable(l, -2);
        crate::lua::set_registry(l, &WRAP_FAILURES);
        super::thread::push_status_fn(l);
    }
    // SAFETY: the loaded chunk and its 3 arguments are on `l`, which is not running
    if unsafe { ffi::lua_pcall(l, 3, 0, 0) } != 0 {
        // SAFETY: the failed call left its message on top
        return Err(unsafe { crate::lua::vm::pop_message(l) });
    }
    Ok(())
}
