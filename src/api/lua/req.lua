-- ngx.req.get_method, set_method, http_version, is_internal, start_time,
-- set_header and clear_header (of one value), get_headers and get_uri_args
-- in Lua over
-- the FFI functions of api/req_ffi.rs. A negative result (no request, a
-- phase without one) goes to the classic function, tail-called so that
-- its error names the caller's line; a fast path returns from the face
-- itself, so that a trace that starts here ends at its own return (see
-- var.lua).
--
-- Run once at VM creation with the classic functions.

local declare, classic_get_method, classic_set_method, classic_http_version, classic_is_internal, classic_start_time,
      classic_set_header, classic_clear_header, classic_get_headers, classic_get_uri_args = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_str = ffi.string
local pcall, type, tostring, error, select = pcall, type, tostring, error, select
local req = ngx.req

declare({
    ngx_http_lua_rs_scratch = "unsigned char *ngx_http_lua_rs_scratch(void);",
    ngx_http_lua_rs_req_get_method = "int ngx_http_lua_rs_req_get_method(void);",
    ngx_http_lua_rs_req_set_method = "int ngx_http_lua_rs_req_set_method(int m);",
    ngx_http_lua_rs_req_set_header = [[
int ngx_http_lua_rs_req_set_header(const char *key, size_t key_len, const char *value,
    size_t value_len);]],
    ngx_http_lua_rs_req_get_headers = "int ngx_http_lua_rs_req_get_headers(int max, int raw);",
    ngx_http_lua_rs_req_get_uri_args = "int ngx_http_lua_rs_req_get_uri_args(int max);",
    ngx_http_lua_rs_req_http_version = "int ngx_http_lua_rs_req_http_version(void);",
    ngx_http_lua_rs_req_is_internal = "int ngx_http_lua_rs_req_is_internal(void);",
    ngx_http_lua_rs_req_start_time = "double ngx_http_lua_rs_req_start_time(void);",
})

local get_method, set_method = C.ngx_http_lua_rs_req_get_method, C.ngx_http_lua_rs_req_set_method
local http_version, set_header = C.ngx_http_lua_rs_req_http_version, C.ngx_http_lua_rs_req_set_header
local is_internal, start_time = C.ngx_http_lua_rs_req_is_internal, C.ngx_http_lua_rs_req_start_time
local get_headers, get_uri_args = C.ngx_http_lua_rs_req_get_headers, C.ngx_http_lua_rs_req_get_uri_args
local buf = C.ngx_http_lua_rs_scratch()

if not pcall(ffi.typeof, "ngx_http_lua_rs_pair_t") then
    ffi.cdef [[
typedef struct {
    const char *key; size_t key_len; const char *value; size_t value_len;
} ngx_http_lua_rs_pair_t;]]
end
-- The pairs get_headers and get_uri_args write (api/ffi_scratch.rs).
local pairs_in = ffi.cast("const ngx_http_lua_rs_pair_t *", buf)
local TRUNCATED = 0x10000
local new_tab = require "table.new"
local setmetatable, floor = setmetatable, math.floor
local headers_mt = debug.getregistry().ngx_lua_headers_metatable

-- nginx's version numbers as lua-nginx-module gives them; others are nil.
local versions = { [9] = 0.9, [1000] = 1.0, [1001] = 1.1, [2000] = 2.0, [3000] = 3.0 }

-- get_method's answer for a method whose name is its own: KNOWN_METHOD
-- (api/req_ffi.rs) plus its ngx.HTTP_* number, for which the name is one
-- of these constants rather than a string made anew from the buffer.
local KNOWN_METHOD = 0x10000
local method_names = {}
for _, name in ipairs({ "GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS",
                        "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH", "TRACE" }) do
    method_names[KNOWN_METHOD + ngx["HTTP_" .. name]] = name
end

function req.get_method()
    local n = get_method()
    if n >= KNOWN_METHOD then
        local m = method_names[n]
        return m
    end
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

-- set_header and clear_header take their arguments as lua-resty-core's do
-- (it redefines them for users of lua-nginx-module): a missing value
-- clears the header, names and values that are not strings go through
-- tostring (in a table of values too, which it updates). One value, or
-- none, goes over the FFI; a table of values, and errors, go to the
-- classic functions.
local function as_values(value)
    for i = 1, #value do
        local v = value[i]
        if type(v) ~= "string" then
            value[i] = tostring(v)
        end
    end
    return value
end

function req.set_header(name, value)
    if name == nil then
        error("bad 'name' argument: string expected, got nil", 2)
    end
    if type(name) ~= "string" then
        name = tostring(name)
    end
    local t = type(value)
    if t == "table" then
        value = as_values(value)
    else
        if t ~= "string" and value ~= nil then
            value = tostring(value)
        end
        if set_header(name, #name, value, value and #value or 0) == 0 then
            return
        end
    end
    local ok, err = pcall(classic_set_header, name, value)
    if not ok then
        error(err, 2)
    end
end

function req.clear_header(name)
    if type(name) ~= "string" then
        name = tostring(name)
    end
    if set_header(name, #name, nil, 0) == 0 then
        return
    end
    local ok, err = pcall(classic_clear_header, name)
    if not ok then
        error(err, 2)
    end
end

-- The table of the pairs get_headers or get_uri_args put in the scratch
-- buffer, from its answer `n` (their number, plus TRUNCATED when `max` cut
-- them short, which adds "truncated" as a second result): a repeated key
-- gets an array of its values, in order; a pair without a value is true.
local function pairs_table(n, mt)
    local truncated = n >= TRUNCATED
    if truncated then
        n = n - TRUNCATED
    end
    local t = new_tab(0, n)
    for i = 0, n - 1 do
        local p = pairs_in[i]
        local k = ffi_str(p.key, p.key_len)
        local v = true
        if p.value ~= nil then
            v = ffi_str(p.value, p.value_len)
        end
        local old = t[k]
        if old == nil then
            t[k] = v
        elseif type(old) == "table" then
            old[#old + 1] = v
        else
            t[k] = { old, v }
        end
    end
    if mt then
        setmetatable(t, mt)
    end
    if truncated then
        return t, "truncated"
    end
    return t
end

-- The classic functions' reading of `max`: nil is 100, 0 or less is no
-- limit; nil when it is not a number the FFI can take.
local function limit(max)
    if max == nil then
        return 100
    end
    if type(max) ~= "number" or max >= 2147483648 then
        return nil
    end
    if max <= 0 then
        return 0
    end
    return floor(max)
end

function req.get_headers(max, raw)
    local m = limit(max)
    if m then
        local n = get_headers(m, raw and 1 or 0)
        if n >= 0 then
            return pairs_table(n, not raw and headers_mt or nil)
        end
    end
    return classic_get_headers(max, raw)
end

-- The fixed-argument part of get_uri_args: LuaJIT starts no trace in a
-- function with varargs, and this one, tail-called, compiles as a trace of
-- its own even when the caller is not compiled.
local function uri_args(m, max)
    local n = get_uri_args(m)
    if n < 0 then
        return classic_get_uri_args(max)
    end
    return pairs_table(n)
end

-- The classic function takes the table to fill as a second argument and
-- counts its arguments: those calls go to it.
function req.get_uri_args(...)
    local max, tab = ...
    local m = tab == nil and select("#", ...) <= 2 and limit(max)
    if m then
        return uri_args(m, max)
    end
    return classic_get_uri_args(...)
end
