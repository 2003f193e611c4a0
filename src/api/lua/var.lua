-- ngx.var in Lua over the FFI functions of api/var_ffi.rs, so that code
-- reading or writing variables in loops stays in compiled traces.
--
-- The face calls our private functions (ngx_http_lua_rs_*: strings and
-- numbers in, a number out, the value in the scratch buffer, see
-- api/ffi_scratch.rs), which cost far less than lua-nginx-module's
-- ngx_http_lua_ffi_var_get/set where LuaJIT interprets instead of
-- compiling; those stay exported for code written against that ABI.
--
-- Whatever the fast path does not take (errors, values too long for the
-- buffer, names of other types, no request running) goes to the classic
-- C functions: they raise lua-nginx-module's texts. They are tail-called,
-- so that their errors name the caller's line.
--
-- Run once at VM creation with the classic __index and __newindex.

local declare, classic_get, classic_set = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_str = ffi.string
local type, tostring = type, tostring

declare({
    ngx_http_lua_rs_scratch = "unsigned char *ngx_http_lua_rs_scratch(void);",
    ngx_http_lua_rs_var_get = "int ngx_http_lua_rs_var_get(const char *name, size_t len);",
    ngx_http_lua_rs_var_capture = "int ngx_http_lua_rs_var_capture(int n);",
    ngx_http_lua_rs_var_set = [[
int ngx_http_lua_rs_var_set(const char *name, size_t name_len, const char *value,
    size_t value_len);]],
})

local var_get, var_capture, var_set = C.ngx_http_lua_rs_var_get, C.ngx_http_lua_rs_var_capture,
                                      C.ngx_http_lua_rs_var_set
local buf = C.ngx_http_lua_rs_scratch()

local function get(self, name)
    local n
    local t = type(name)
    if t == "string" then
        n = var_get(name, #name)
    elseif t == "number" and name > -2147483648 and name < 2147483648 then
        n = var_capture(name)
    else
        return classic_get(self, name)
    end
    if n >= 0 then
        -- Not a tail call: a trace that starts here (the function is hot)
        -- can end at this function's return, not at a fast function's.
        local v = ffi_str(buf, n)
        return v
    end
    if n == -5 then
        return nil
    end
    return classic_get(self, name)
end

local function set(self, name, value)
    if type(name) == "string" then
        -- lua-resty-core's rule: any value but nil is written as its string.
        if value ~= nil and type(value) ~= "string" then
            value = tostring(value)
        end
        if var_set(name, #name, value, value and #value or 0) == 0 then
            return
        end
    end
    return classic_set(self, name, value)
end

local mt = getmetatable(ngx.var)
mt.__index = get
mt.__newindex = set
