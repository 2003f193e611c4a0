-- ngx.md5, md5_bin, sha1_bin, crc32_short, crc32_long, encode_base64,
-- decode_base64, escape_uri and unescape_uri in Lua over the FFI functions
-- of api/string_ffi.rs, so that LuaJIT keeps loops that hash or encode
-- compiled instead of leaving the trace for a C function on every call.
-- Arguments are taken as lua-resty-core takes them (which is what users of
-- lua-nginx-module get, lua-resty-core being loaded by default): nil and
-- false stand for "", other values go through tostring; extra arguments
-- are ignored; the errors are lua-resty-core's.
--
-- Run once at VM creation, after the ngx table is in place.

local declare = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_new, ffi_str = ffi.new, ffi.string
local type, tostring, tonumber, error = type, tostring, tonumber, error
local floor = math.floor
local ngx = ngx

declare("ngx_http_lua_ffi_md5_bin", [[
void ngx_http_lua_ffi_md5_bin(const unsigned char *src, size_t len,
    unsigned char *dst);]])
declare("ngx_http_lua_ffi_md5", [[
void ngx_http_lua_ffi_md5(const unsigned char *src, size_t len,
    unsigned char *dst);]])
declare("ngx_http_lua_ffi_sha1_bin", [[
int ngx_http_lua_ffi_sha1_bin(const unsigned char *src, size_t len,
    unsigned char *dst);]])
declare("ngx_http_lua_ffi_crc32_short", [[
unsigned int ngx_http_lua_ffi_crc32_short(const unsigned char *src, size_t len);]])
declare("ngx_http_lua_ffi_crc32_long", [[
unsigned int ngx_http_lua_ffi_crc32_long(const unsigned char *src, size_t len);]])
declare("ngx_http_lua_ffi_encode_base64", [[
size_t ngx_http_lua_ffi_encode_base64(const unsigned char *src, size_t len,
    unsigned char *dst, int no_padding);]])
declare("ngx_http_lua_ffi_decode_base64", [[
int ngx_http_lua_ffi_decode_base64(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dlen);]])
declare("ngx_http_lua_ffi_uri_escaped_length", [[
size_t ngx_http_lua_ffi_uri_escaped_length(const unsigned char *src,
    size_t len, int type);]])
declare("ngx_http_lua_ffi_escape_uri", [[
void ngx_http_lua_ffi_escape_uri(const unsigned char *src, size_t len,
    unsigned char *dst, int type);]])
declare("ngx_http_lua_ffi_unescape_uri", [[
size_t ngx_http_lua_ffi_unescape_uri(const unsigned char *src, size_t len,
    unsigned char *dst);]])

local md5_bin, md5, sha1_bin = C.ngx_http_lua_ffi_md5_bin, C.ngx_http_lua_ffi_md5,
                               C.ngx_http_lua_ffi_sha1_bin
local crc32_short, crc32_long = C.ngx_http_lua_ffi_crc32_short, C.ngx_http_lua_ffi_crc32_long
local encode_base64, decode_base64 = C.ngx_http_lua_ffi_encode_base64,
                                     C.ngx_http_lua_ffi_decode_base64
local escaped_length, escape_uri, unescape_uri = C.ngx_http_lua_ffi_uri_escaped_length,
                                                 C.ngx_http_lua_ffi_escape_uri,
                                                 C.ngx_http_lua_ffi_unescape_uri

-- One scratch buffer for the results (the calls never overlap: none of
-- them yields); a larger result gets a buffer of its own, left to the
-- collector, so that one big string does not pin its size for the VM's
-- life.
local BUF_SIZE = 4096
local shared_buf = ffi_new("unsigned char[?]", BUF_SIZE)
local dlen = ffi_new("size_t[1]")

local function buffer(size)
    if size <= BUF_SIZE then
        return shared_buf
    end
    return ffi_new("unsigned char[?]", size)
end

-- lua-resty-core's reading of a string argument.
local function str(s)
    if type(s) == "string" then
        return s
    end
    if not s then
        return ""
    end
    local v = tostring(s)
    return v
end

-- The `size`-byte digest `f` writes for `s`.
local function digest(f, s, size)
    s = str(s)
    f(s, #s, shared_buf)
    local v = ffi_str(shared_buf, size)
    return v
end

function ngx.md5(s)
    return digest(md5, s, 32)
end

function ngx.md5_bin(s)
    return digest(md5_bin, s, 16)
end

function ngx.sha1_bin(s)
    return digest(sha1_bin, s, 20)
end

function ngx.crc32_short(s)
    s = str(s)
    local v = tonumber(crc32_short(s, #s))
    return v
end

function ngx.crc32_long(s)
    s = str(s)
    local v = tonumber(crc32_long(s, #s))
    return v
end

function ngx.encode_base64(s, no_padding)
    s = str(s)
    if no_padding and no_padding ~= true then
        error("bad no_padding: boolean expected, got " .. type(no_padding), 2)
    end
    local slen = #s
    local dst = buffer(floor((slen + 2) / 3) * 4)
    local v = ffi_str(dst, encode_base64(s, slen, dst, no_padding and 1 or 0))
    return v
end

function ngx.decode_base64(s)
    if type(s) ~= "string" then
        error("string argument only", 2)
    end
    local slen = #s
    local dst = buffer(floor((slen + 3) / 4) * 3)
    if decode_base64(s, slen, dst, dlen) == 0 then
        return nil
    end
    local v = ffi_str(dst, dlen[0])
    return v
end

-- The type errors name the caller's caller (level 3), as lua-resty-core's
-- do.
function ngx.escape_uri(s, kind)
    s = str(s)
    if kind == nil then
        kind = 2
    elseif type(kind) ~= "number" then
        error("\"type\" is not a number", 3)
    elseif kind < 0 or kind > 6 then
        error("\"type\" " .. kind .. " out of range", 3)
    end
    local slen = #s
    local len = escaped_length(s, slen, kind)
    if len == slen then
        return s
    end
    local dst = buffer(len)
    escape_uri(s, slen, dst, kind)
    local v = ffi_str(dst, len)
    return v
end

function ngx.unescape_uri(s)
    s = str(s)
    local slen = #s
    local dst = buffer(slen)
    local v = ffi_str(dst, unescape_uri(s, slen, dst))
    return v
end
