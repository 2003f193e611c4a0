-- The hot cosocket methods (receive, send, setkeepalive) in Lua over the
-- FFI functions of api/socket_ffi.rs, so that LuaJIT keeps the loops of
-- HTTP and redis clients compiled instead of leaving the trace for a C
-- function on every call. (connect and settimeout stay classic C methods:
-- they are mostly called outside compiled code, where an FFI call costs
-- more than a C function's, and their vararg wrappers would never be
-- compiled on their own.) The plain case runs here; anything else (a wrong phase, a closed or
-- busy socket, other argument types) goes to the classic method, by a tail
-- call so that its error messages name the caller's call as before.
--
-- Called once at VM creation with the methods table of ngx.socket.tcp
-- objects, the metatable of the socket userdata at [1], and the C function
-- that parks the running thread on an operation that started waiting (given
-- the socket userdata the fast path used: it trusts it, so that function
-- must stay a local of this chunk).

local methods, ud_mt, wait = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_new, ffi_str = ffi.new, ffi.string
local concat, pcall = table.concat, pcall
local has_nkeys, nkeys = pcall(require, "table.nkeys")
local type, rawget, getmetatable, select, tonumber =
      type, rawget, getmetatable, select, tonumber

ffi.cdef [[
int ngx_http_lua_rs_ffi_socket_tcp_receive(void *ud, int kind, size_t size,
    const unsigned char **buf, size_t *len, const unsigned char **err,
    size_t *err_len);
int ngx_http_lua_rs_ffi_socket_tcp_send(void *ud, const unsigned char *data,
    size_t data_len, size_t *len, const unsigned char **err,
    size_t *err_len);
int ngx_http_lua_rs_ffi_socket_tcp_setkeepalive(void *ud, double timeout,
    double size, size_t *len, const unsigned char **err, size_t *err_len);
]]

local ffi_receive = C.ngx_http_lua_rs_ffi_socket_tcp_receive
local ffi_send = C.ngx_http_lua_rs_ffi_socket_tcp_send
local ffi_setkeepalive = C.ngx_http_lua_rs_ffi_socket_tcp_setkeepalive
local classic_receive, classic_send = methods.receive, methods.send
local classic_setkeepalive = methods.setkeepalive

local FFI_OK, FFI_ERROR, FFI_AGAIN, FFI_DECLINED = 0, -1, -2, -5

-- Out-parameters reused by every call of this VM (no call yields while
-- they hold a result).
local buf = ffi_new("const unsigned char *[1]")
local len = ffi_new("size_t[1]")
local err = ffi_new("const unsigned char *[1]")
local err_len = ffi_new("size_t[1]")

-- The socket userdata of `self`, when it is one of ours (a table made with
-- the objects' metatable may hold anything at [1]).
local function socket_ud(self)
    if type(self) == "table" then
        local ud = rawget(self, 1)
        if type(ud) == "userdata" and getmetatable(ud) == ud_mt then
            return ud
        end
    end
    return nil
end

-- The results of a receive that neither waits nor declined.
local function results(rc)
    if rc == FFI_OK then
        local v = ffi_str(buf[0], len[0])
        return v
    end
    if rc == FFI_ERROR then
        return nil, ffi_str(err[0], err_len[0])
    end
    return nil, ffi_str(err[0], err_len[0]), ffi_str(buf[0], len[0])
end

function methods.receive(self, ...)
    local n = select("#", ...)
    local ud = socket_ud(self)
    if ud and n <= 1 then
        local pat = ...
        local kind, size
        if n == 0 or pat == "*l" then
            kind, size = 0, 0
        elseif type(pat) == "number" then
            -- lua_tointeger's truncation; 0 and negative sizes, NaN and
            -- huge ones are the classic method's.
            if pat >= 1 and pat < 2147483648 then
                kind, size = 1, pat
            end
        elseif pat == "*a" then
            kind, size = 2, 0
        end
        if kind then
            local rc = ffi_receive(ud, kind, size, buf, len, err, err_len)
            if rc == FFI_AGAIN then
                return wait(ud)
            end
            if rc ~= FFI_DECLINED then
                return results(rc)
            end
        end
    end
    return classic_receive(self, ...)
end

function methods.send(self, ...)
    local n = select("#", ...)
    local ud = socket_ud(self)
    if ud and n == 1 then
        local data = ...
        -- An array of strings and numbers (as lua-resty-redis sends) goes
        -- as one string. Only an array: as many keys as its length (other
        -- keys, or holes, are the classic method's errors), and concat
        -- fails on anything but strings and numbers (nested tables are
        -- flattened, other values refused, by the classic method).
        if type(data) == "table" and has_nkeys and nkeys(data) == #data then
            local ok, s = pcall(concat, data)
            if ok then
                data = s
            end
        end
        if type(data) == "string" then
            local rc = ffi_send(ud, data, #data, len, err, err_len)
            if rc == FFI_OK then
                local v = tonumber(len[0])
                return v
            end
            if rc == FFI_AGAIN then
                return wait(ud)
            end
            if rc == FFI_ERROR then
                return nil, ffi_str(err[0], err_len[0])
            end
        end
    end
    return classic_send(self, ...)
end

function methods.setkeepalive(self, ...)
    local n = select("#", ...)
    local ud = socket_ud(self)
    if ud and n <= 2 then
        -- nil, or numbers the classic method takes as they are (NaN and
        -- out of range ones are its own).
        local timeout, size = ...
        if timeout == nil then
            timeout = -1
        elseif type(timeout) ~= "number" or not (timeout >= 0) then
            timeout = nil
        end
        if size == nil then
            size = -1
        elseif type(size) ~= "number" or not (size >= 1) then
            size = nil
        end
        if timeout and size then
            local rc = ffi_setkeepalive(ud, timeout, size, len, err, err_len)
            if rc == FFI_OK then
                return 1
            end
            if rc == FFI_ERROR then
                return nil, ffi_str(err[0], err_len[0])
            end
        end
    end
    return classic_setkeepalive(self, ...)
end
