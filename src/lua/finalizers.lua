-- Wraps the ways Lua code sets finalizers, run once in every VM with two C
-- functions: `arm`, which turns on the protected object creation of
-- lua/alloc.rs, and `report`, which logs a finalizer's error.
--
-- LuaJIT 2.1-20230119 (Debian's) re-raises a finalizer's error where the
-- collection step ran. When that step runs at a trace exit the error is
-- thrown from LuaJIT's exit handler, whose frame the unwinder cannot walk:
-- the error skips the Lua code's pcall, and the worker crashes (the C
-- module: "lua atpanic: Lua VM crashed"; ours: signal 11). LuaJIT fixed it
-- in 2023 by reporting such errors instead of raising them. Here a Lua
-- finalizer runs inside a pcall of ours and its error is logged, which is
-- that fixed behaviour on every LuaJIT.
--
-- Covered: `ffi.gc` with a Lua function, `ffi.metatype` with a Lua `__gc`,
-- a `__gc` assigned to the metatable `newproxy(true)` made, and a `__gc`
-- the metatable given to `debug.setmetatable` for a userdata holds. Not
-- covered: a `__gc` stored with `rawset` or over an existing one, or added
-- to a userdata's metatable after `debug.setmetatable`; `arm` keeps those
-- as safe as before for our API (their errors are raised as LuaJIT does).

local arm, report = ...
local type, rawget, rawset, pcall, next, require = type, rawget, rawset, pcall, next, require
local setmetatable, getmetatable = setmetatable, getmetatable
local newproxy, debug_setmetatable = newproxy, debug.setmetatable

-- The wrappers made here, so that a wrapper is not wrapped again.
local wrappers = setmetatable({}, { __mode = "k" })

local function protect(f)
    if wrappers[f] then
        return f
    end
    local function finalizer(o)
        local ok, err = pcall(f, o)
        if not ok then
            report(type(err) == "string" and err or nil)
        end
    end
    wrappers[finalizer] = true
    return finalizer
end

-- The metatable of the metatables `newproxy(true)` makes: a `__gc` set on
-- them (the first time: a key already there is set without asking) is
-- stored protected.
local watch = {
    __newindex = function(mt, k, v)
        if k == "__gc" and type(v) == "function" then
            v = protect(v)
        end
        rawset(mt, k, v)
    end,
}

_G.newproxy = function(base)
    arm()
    local p = newproxy(base)
    if base == true then
        setmetatable(getmetatable(p), watch)
    end
    return p
end

debug.setmetatable = function(v, mt)
    if type(v) == "userdata" then
        arm()
        if type(mt) == "table" then
            local f = rawget(mt, "__gc")
            if type(f) == "function" then
                rawset(mt, "__gc", protect(f))
            end
        end
    end
    local r = debug_setmetatable(v, mt)
    return r
end

local ok, ffi = pcall(require, "ffi")
if ok then
    local gc, metatype = ffi.gc, ffi.metatype
    ffi.gc = function(cd, f)
        if type(f) == "function" then
            f = protect(f)
        end
        local r = gc(cd, f)
        return r
    end
    ffi.metatype = function(ct, mt)
        if type(mt) == "table" and type(rawget(mt, "__gc")) == "function" then
            -- A copy: the caller's table keeps its own function.
            local copy = {}
            for k, v in next, mt do
                copy[k] = v
            end
            copy.__gc = protect(rawget(mt, "__gc"))
            mt = copy
        end
        local r = metatype(ct, mt)
        return r
    end
end
