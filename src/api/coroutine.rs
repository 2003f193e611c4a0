//! `coroutine.*` replaced so that a wait inside a user coroutine suspends
//! the whole request: the wait sentinel is passed up to the scheduler and
//! the results of the wait come back down into the same coroutine, while a
//! plain `coroutine.yield` still returns to its resumer as in plain Lua.

use std::ffi::c_void;

use crate::lua::{ffi, lua_State};
use crate::runtime::scheduler::YIELD_MARK;

const WRAPPERS: &[u8] = br#"
local MARK = ...
local co_create, co_yield, co_status = coroutine.create, coroutine.yield, coroutine.status
local select, error, unpack, type = select, error, unpack, type

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

local function co_resume(co, ...)
    if type(co) ~= "thread" then
        -- level 3: the code that called coroutine.resume
        error("bad argument #1 to 'resume' (coroutine expected)", 3)
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

local thread_status = ngx.thread._status
function coroutine.status(co)
    return thread_status(co) or co_status(co)
end

function coroutine.resume(co, ...)
    return pass(co, co_resume(co, ...))
end

local function unwrap(ok, ...)
    if not ok then
        error((...), 0)
    end
    return ...
end

function coroutine.wrap(f)
    local co = co_create(f)
    return function(...)
        return unwrap(pass(co, co_resume(co, ...)))
    end
end
"#;

/// # Safety
/// `l` must be the main state, not running.
pub unsafe fn install(l: *mut lua_State) -> Result<(), String> {
    let name = c"=coroutine_wrappers";
    if ffi::luaL_loadbuffer(l, WRAPPERS.as_ptr().cast(), WRAPPERS.len(), name.as_ptr()) != 0 {
        return Err(crate::lua::vm::pop_message(l));
    }
    ffi::lua_pushlightuserdata(l, &YIELD_MARK as *const u8 as *mut c_void);
    if ffi::lua_pcall(l, 1, 0, 0) != 0 {
        return Err(crate::lua::vm::pop_message(l));
    }
    Ok(())
}
