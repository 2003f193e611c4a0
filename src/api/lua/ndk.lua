-- ndk.set_var.<directive>(value): runs another module's set-var directive
-- (set-misc's set_escape_uri, set_md5...) through the functions of
-- src/api/ndk.rs, with lua-resty-core's texts. A directive is looked up
-- once per access and the call goes through LuaJIT's FFI.

local setmetatable, type, tostring, error = setmetatable, type, tostring, error

local C, ffi_str, get_request, value, func_p

local function prepare()
    local ffi = require "ffi"
    local base = require "resty.core.base"
    ffi.cdef [[
    int ngx_http_lua_ffi_ndk_lookup_directive(const unsigned char *var_data,
        size_t var_len, void **func);
    int ngx_http_lua_ffi_ndk_set_var_get(ngx_http_request_t *r, void *func,
        const unsigned char *arg_data, size_t arg_len,
        ngx_http_lua_ffi_str_t *value);
    ]]
    C, ffi_str, get_request = ffi.C, ffi.string, base.get_request
    value = ffi.new("ngx_http_lua_ffi_str_t[1]")
    func_p = ffi.new("void *[1]")
end

local function directive(_, name)
    if not C then
        prepare()
    end
    if type(name) ~= "string" then
        name = tostring(name)
    end
    if C.ngx_http_lua_ffi_ndk_lookup_directive(name, #name, func_p) ~= 0 then
        error('ndk.set_var: directive "' .. name
              .. '" not found or does not use ndk_set_var_value', 2)
    end
    local func = func_p[0]
    return function(arg)
        local r = get_request()
        if not r then
            error("no request found")
        end
        if type(arg) ~= "string" then
            arg = tostring(arg)
        end
        local rc = C.ngx_http_lua_ffi_ndk_set_var_get(r, func, arg, #arg, value)
        if rc ~= 0 then
            error("calling directive " .. name .. " failed with code " .. rc, 2)
        end
        return ffi_str(value[0].data, value[0].len)
    end
end

ndk = ndk or {}
ndk.set_var = setmetatable({}, {
    __index = directive,
    __newindex = function() error("not allowed", 2) end,
})
