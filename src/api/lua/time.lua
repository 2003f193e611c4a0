-- ngx.now, time, today, localtime, utctime, update_time, http_time,
-- cookie_time and parse_http_time in Lua over the FFI functions of
-- api/time_ffi.rs, so that LuaJIT keeps loops that read the time compiled
-- instead of leaving the trace for a C function on every call. Arguments
-- and errors are lua-resty-core's (which is what users of lua-nginx-module
-- get, lua-resty-core being loaded by default).
--
-- Run once at VM creation, after the ngx table is in place.

local declare = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_new, ffi_str = ffi.new, ffi.string
local type, tonumber, error = type, tonumber, error
local ngx = ngx

declare("ngx_http_lua_ffi_now", "double ngx_http_lua_ffi_now(void);")
declare("ngx_http_lua_ffi_time", "long ngx_http_lua_ffi_time(void);")
declare("ngx_http_lua_ffi_update_time", "void ngx_http_lua_ffi_update_time(void);")
declare("ngx_http_lua_ffi_today", "void ngx_http_lua_ffi_today(unsigned char *buf);")
declare("ngx_http_lua_ffi_localtime", "void ngx_http_lua_ffi_localtime(unsigned char *buf);")
declare("ngx_http_lua_ffi_utctime", "void ngx_http_lua_ffi_utctime(unsigned char *buf);")
declare("ngx_http_lua_ffi_cookie_time",
        "int ngx_http_lua_ffi_cookie_time(unsigned char *buf, long t);")
declare("ngx_http_lua_ffi_http_time", "void ngx_http_lua_ffi_http_time(unsigned char *buf, long t);")
declare("ngx_http_lua_ffi_parse_http_time", [[
void ngx_http_lua_ffi_parse_http_time(const unsigned char *str, size_t len,
    long *time);]])

local now, time, update_time = C.ngx_http_lua_ffi_now, C.ngx_http_lua_ffi_time,
                               C.ngx_http_lua_ffi_update_time
local today, localtime, utctime = C.ngx_http_lua_ffi_today, C.ngx_http_lua_ffi_localtime,
                                  C.ngx_http_lua_ffi_utctime
local cookie_time, http_time, parse_http_time = C.ngx_http_lua_ffi_cookie_time,
                                                C.ngx_http_lua_ffi_http_time,
                                                C.ngx_http_lua_ffi_parse_http_time

-- Room for the longest text these functions write (a cookie date); the
-- calls never overlap, none of them yields.
local buf = ffi_new("unsigned char[64]")
local secs = ffi_new("long[1]")

function ngx.now()
    local v = tonumber(now())
    return v
end

function ngx.time()
    local v = tonumber(time())
    return v
end

function ngx.update_time()
    update_time()
end

function ngx.today()
    today(buf)
    local v = ffi_str(buf, 10)
    return v
end

function ngx.localtime()
    localtime(buf)
    local v = ffi_str(buf, 19)
    return v
end

function ngx.utctime()
    utctime(buf)
    local v = ffi_str(buf, 19)
    return v
end

function ngx.http_time(sec)
    if type(sec) ~= "number" then
        error("number argument only", 2)
    end
    http_time(buf, sec)
    local v = ffi_str(buf, 29)
    return v
end

function ngx.cookie_time(sec)
    if type(sec) ~= "number" then
        error("number argument only", 2)
    end
    local v = ffi_str(buf, cookie_time(buf, sec))
    return v
end

function ngx.parse_http_time(s)
    if type(s) ~= "string" then
        error("string argument only", 2)
    end
    parse_http_time(s, #s, secs)
    local t = secs[0]
    if t == -1 then
        return nil
    end
    local v = tonumber(t)
    return v
end
