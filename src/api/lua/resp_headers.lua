-- ngx.header.NAME in Lua over the FFI functions of
-- api/resp_headers_ffi.rs, for the usual case of one value: reading it,
-- setting it to a string or a number, removing it with nil. Tables of
-- values, headers with several values read back, keys that are not
-- strings and every error go to the classic __index/__newindex (tail
-- called, so that their errors name the caller's line, as lua-nginx-module's
-- do); a fast path returns from the face itself, so that a trace that
-- starts here ends at its own return (see var.lua).
--
-- Run once at VM creation with the classic __index and __newindex.

local declare, classic_index, classic_newindex = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_str = ffi.string
local type, tostring = type, tostring

declare({
    ngx_http_lua_rs_scratch = "unsigned char *ngx_http_lua_rs_scratch(void);",
    ngx_http_lua_rs_get_resp_header = "int ngx_http_lua_rs_get_resp_header(const char *key, size_t key_len);",
    ngx_http_lua_rs_set_resp_header = [[
int ngx_http_lua_rs_set_resp_header(const char *key, size_t key_len, const char *value,
    size_t value_len);]],
})

local get_header, set_header = C.ngx_http_lua_rs_get_resp_header, C.ngx_http_lua_rs_set_resp_header
local buf = C.ngx_http_lua_rs_scratch()

local function index(t, k)
    if type(k) == "string" then
        local n = get_header(k, #k)
        if n >= 0 then
            local v = ffi_str(buf, n)
            return v
        end
        if n == -5 then
            return nil
        end
    end
    return classic_index(t, k)
end

local function newindex(t, k, v)
    if type(k) == "string" then
        if type(v) == "number" then
            v = tostring(v)
        end
        if (v == nil or type(v) == "string") and set_header(k, #k, v, v and #v or 0) == 0 then
            return
        end
    end
    return classic_newindex(t, k, v)
end

local mt = getmetatable(ngx.header)
mt.__index = index
mt.__newindex = newindex
