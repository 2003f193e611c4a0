-- ngx.req.get_method, set_method, http_version, is_internal and start_time in Lua over
-- the FFI functions of api/req_ffi.rs. A negative result (no request, a
-- phase without one) goes to the classic function, tail-called so that
-- its error names the caller's line; a fast path returns from the face
-- itself, so that a trace that starts here ends at its own return (see
-- var.lua).
--
-- Run once at VM creation with the classic functions.

local classic_get_method, classic_set_method, classic_http_version, classic_is_internal, classic_start_time = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_str = ffi.string
local pcall, type = pcall, type
local req = ngx.req

for name, decl in pairs({
    ngx_http_lua_rs_scratch = "unsigned char *ngx_http_lua_rs_scratch(void);",
    ngx_http_lua_rs_req_get_method = "int ngx_http_lua_rs_req_get_method(void);",
    ngx_http_lua_rs_req_set_method = "int ngx_http_lua_rs_req_set_method(int m);",
    ngx_http_lua_rs_req_http_version = "int ngx_http_lua_rs_req_http_version(void);",
    ngx_http_lua_rs_req_is_internal = "int ngx_http_lua_rs_req_is_internal(void);",
    ngx_http_lua_rs_req_start_time = "double ngx_http_lua_rs_req_start_time(void);",
}) do
    -- Declared only when nobody did already.
    if not pcall(function() return C[name] end) then
        ffi.cdef(decl)
    end
end

local get_method, set_method = C.ngx_http_lua_rs_req_get_method, C.ngx_http_lua_rs_req_set_method
local http_version = C.ngx_http_lua_rs_req_http_version
local is_internal, start_time = C.ngx_http_lua_rs_req_is_internal, C.ngx_http_lua_rs_req_start_time
local buf = C.ngx_http_lua_rs_scratch()

-- nginx's version numbers as lua-nginx-module gives them; others are nil.
local versions = { [9] = 0.9, [1000] = 1.0, [1001] = 1.1, [2000] = 2.0, [3000] = 3.0 }

function req.get_method()
    local n = get_method()
    if n >= 0 then
        local m = ffi_str(buf, n)
        return m
    end
    return classic_get_method()
end

-- Extra arguments are ignored and a missing one is "bad method number",
-- as with lua-resty-core (the classic function takes exactly one).
function req.set_method(m)
    if type(m) == "number" and m % 1 == 0 and set_method(m) == 0 then
        return
    end
    return classic_set_method(m)
end

function req.http_version()
    local v = http_version()
    if v >= 0 then
        local num = versions[v]
        return num
    end
    return classic_http_version()
end

function req.is_internal()
    local i = is_internal()
    if i >= 0 then
        return i == 1
    end
    return classic_is_internal()
end

function req.start_time()
    local t = start_time()
    if t >= 0 then
        return t
    end
    return classic_start_time()
end
