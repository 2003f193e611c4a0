-- ngx.shared.DICT's hot methods in Lua over the FFI functions of
-- api/shdict_ffi.rs, so that LuaJIT compiles them into the caller's traces
-- instead of leaving the trace for a C function on every call. Argument
-- checks, return values and error texts are lua-nginx-module's (with
-- lua-resty-core, which its users get by default).
--
-- Called once at VM creation with the dictionaries' metatable.

local declare, mt = ...
local methods = mt.__index

local ffi = require "ffi"
local C = ffi.C
local ffi_new, ffi_str = ffi.new, ffi.string
local type, tostring, tonumber, error, getmetatable, rawget =
      type, tostring, tonumber, error, getmetatable, rawget

declare("ngx_http_lua_ffi_shdict_get", [[
int ngx_http_lua_ffi_shdict_get(void *zone, const unsigned char *key,
    size_t key_len, int *value_type, unsigned char **str_value_buf,
    size_t *str_value_len, double *num_value, int *user_flags,
    int get_stale, int *is_stale, char **errmsg);]])
declare("ngx_http_lua_ffi_shdict_store", [[
int ngx_http_lua_ffi_shdict_store(void *zone, int op,
    const unsigned char *key, size_t key_len, int value_type,
    const unsigned char *str_value_buf, size_t str_value_len,
    double num_value, long exptime, int user_flags, char **errmsg,
    int *forcible);]])
declare("ngx_http_lua_ffi_shdict_incr", [[
int ngx_http_lua_ffi_shdict_incr(void *zone, const unsigned char *key,
    size_t key_len, double *value, char **err, int has_init,
    double init, long init_ttl, int *forcible);]])
declare("ngx_http_lua_ffi_shdict_flush_all", [[
int ngx_http_lua_ffi_shdict_flush_all(void *zone);]])
declare("ngx_http_lua_ffi_shdict_get_ttl", [[
long ngx_http_lua_ffi_shdict_get_ttl(void *zone, const unsigned char *key,
    size_t key_len);]])
declare("ngx_http_lua_ffi_shdict_set_expire", [[
int ngx_http_lua_ffi_shdict_set_expire(void *zone, const unsigned char *key,
    size_t key_len, long exptime);]])
declare("ngx_http_lua_ffi_shdict_capacity", [[
size_t ngx_http_lua_ffi_shdict_capacity(void *zone);]])
declare("ngx_http_lua_ffi_shdict_udata_to_zone", [[
void *ngx_http_lua_ffi_shdict_udata_to_zone(void *zone_udata);]])
declare("ngx_http_lua_ffi_shdict_free_space", [[
size_t ngx_http_lua_ffi_shdict_free_space(void *zone);]])
declare("free", "void free(void *ptr);")

local shdict_get = C.ngx_http_lua_ffi_shdict_get
local shdict_store = C.ngx_http_lua_ffi_shdict_store
local shdict_incr = C.ngx_http_lua_ffi_shdict_incr
local FFI_DECLINED = -5

-- Out-parameters and the string buffer, reused by every call of this VM
-- (calls never overlap: none of them yields).
local BUF_SIZE = 4096
local buf = ffi_new("unsigned char[?]", BUF_SIZE)
local value_type = ffi_new("int[1]")
local user_flags = ffi_new("int[1]")
local num_value = ffi_new("double[1]")
local is_stale = ffi_new("int[1]")
local forcible = ffi_new("int[1]")
local str_value_buf = ffi_new("unsigned char *[1]")
local value_len = ffi_new("size_t[1]")
local errmsg = ffi_new("char *[1]")

-- The zone pointers as cdata, by the light userdata at [1] of each
-- dictionary: LuaJIT's compiler cannot pass a light userdata to a C
-- pointer argument (it aborts the trace), but it passes a cdata.
local zone_ptrs = {}

-- The zone of a dictionary table. Only tables with the dictionaries'
-- metatable hold a zone at [1]: any other `self` is refused before its
-- contents reach C.
local function check_zone(self)
    if type(self) ~= "table" or getmetatable(self) ~= mt then
        error("bad \"zone\" argument", 3)
    end
    local ud = rawget(self, 1)
    local zone = zone_ptrs[ud]
    if zone == nil then
        -- First use of this [1]: only a zone of the running cycle is
        -- taken (a table made with our metatable may hold anything).
        if type(ud) ~= "userdata" then
            error("bad \"zone\" argument", 3)
        end
        zone = C.ngx_http_lua_ffi_shdict_udata_to_zone(ud)
        if zone == nil then
            error("bad \"zone\" argument", 3)
        end
        zone_ptrs[ud] = zone
    end
    return zone
end

-- The key as lua-nginx-module takes it, or nil and the error to return.
local function check_key(key)
    if key == nil then
        return nil, "nil key"
    end
    if type(key) ~= "string" then
        key = tostring(key)
    end
    local n = #key
    if n == 0 then
        return nil, "empty key"
    end
    if n > 65535 then
        return nil, "key too long"
    end
    return key
end

local function store(self, op, key, value, exptime, flags)
    local zone = check_zone(self)
    if not exptime then
        exptime = 0
    elseif exptime < 0 then
        error('bad "exptime" argument', 2)
    end
    if not flags then
        flags = 0
    end
    local k, err = check_key(key)
    if not k then
        return nil, err
    end
    local typ, str, len, num = type(value), nil, 0, 0
    if typ == "string" then
        typ, str, len = 4, value, #value
    elseif typ == "number" then
        typ, num = 3, value
    elseif value == nil then
        typ = 0
    elseif typ == "boolean" then
        typ, num = 1, value and 1 or 0
    else
        return nil, "bad value type"
    end
    local rc = shdict_store(zone, op, k, #k, typ, str, len, num, exptime * 1000,
                            flags, errmsg, forcible)
    if rc == 0 then
        return true, nil, forcible[0] == 1
    end
    return false, ffi_str(errmsg[0]), forcible[0] == 1
end

function methods.set(self, key, value, exptime, flags)
    return store(self, 0, key, value, exptime, flags)
end

function methods.safe_set(self, key, value, exptime, flags)
    return store(self, 4, key, value, exptime, flags)
end

function methods.add(self, key, value, exptime, flags)
    return store(self, 1, key, value, exptime, flags)
end

function methods.safe_add(self, key, value, exptime, flags)
    return store(self, 5, key, value, exptime, flags)
end

function methods.replace(self, key, value, exptime, flags)
    return store(self, 2, key, value, exptime, flags)
end

function methods.delete(self, key)
    return store(self, 0, key, nil)
end

-- get and get_stale: the value, its flags, and for get_stale whether it
-- had expired.
local function get(self, key, stale)
    local zone = check_zone(self)
    local k, err = check_key(key)
    if not k then
        return nil, err
    end
    str_value_buf[0] = buf
    value_len[0] = BUF_SIZE
    errmsg[0] = nil
    local rc = shdict_get(zone, k, #k, value_type, str_value_buf, value_len,
                          num_value, user_flags, stale, is_stale, errmsg)
    if rc ~= 0 then
        if errmsg[0] ~= nil then
            return nil, ffi_str(errmsg[0])
        end
        error("failed to get the key")
    end
    local typ = value_type[0]
    if typ == 0 then
        return nil
    end
    local val
    if typ == 4 then
        local p = str_value_buf[0]
        val = ffi_str(p, value_len[0])
        if p ~= buf then
            C.free(p)
        end
    elseif typ == 3 then
        val = tonumber(num_value[0])
    else
        val = buf[0] ~= 0
    end
    local flags = tonumber(user_flags[0])
    if stale == 0 then
        if flags ~= 0 then
            return val, flags
        end
        return val
    end
    return val, flags ~= 0 and flags or nil, is_stale[0] == 1
end

function methods.get(self, key)
    return get(self, key, 0)
end

function methods.get_stale(self, key)
    return get(self, key, 1)
end

function methods.incr(self, key, value, init, init_ttl)
    local zone = check_zone(self)
    local k, err = check_key(key)
    if not k then
        return nil, err
    end
    if type(value) ~= "number" then
        value = tonumber(value)
    end
    num_value[0] = value
    if init then
        local typ = type(init)
        if typ ~= "number" then
            init = tonumber(init)
            if not init then
                error("bad init arg: number expected, got " .. typ, 2)
            end
        end
    end
    if init_ttl ~= nil then
        local typ = type(init_ttl)
        if typ ~= "number" then
            init_ttl = tonumber(init_ttl)
            if not init_ttl then
                error("bad init_ttl arg: number expected, got " .. typ, 2)
            end
        end
        if init_ttl < 0 then
            error('bad "init_ttl" argument', 2)
        end
        if not init then
            error('must provide "init" when providing "init_ttl"', 2)
        end
    else
        init_ttl = 0
    end
    local rc = shdict_incr(zone, k, #k, num_value, errmsg, init and 1 or 0,
                           init or 0, init_ttl * 1000, forcible)
    if rc ~= 0 then
        return nil, ffi_str(errmsg[0])
    end
    if not init then
        local v = tonumber(num_value[0])
        return v
    end
    return tonumber(num_value[0]), nil, forcible[0] == 1
end

function methods.ttl(self, key)
    local zone = check_zone(self)
    local k, err = check_key(key)
    if not k then
        return nil, err
    end
    local rc = C.ngx_http_lua_ffi_shdict_get_ttl(zone, k, #k)
    if rc == FFI_DECLINED then
        return nil, "not found"
    end
    return tonumber(rc) / 1000
end

function methods.expire(self, key, exptime)
    local zone = check_zone(self)
    if not exptime then
        error('bad "exptime" argument', 2)
    end
    local k, err = check_key(key)
    if not k then
        return nil, err
    end
    local rc = C.ngx_http_lua_ffi_shdict_set_expire(zone, k, #k, exptime * 1000)
    if rc == FFI_DECLINED then
        return nil, "not found"
    end
    return true
end

function methods.flush_all(self)
    C.ngx_http_lua_ffi_shdict_flush_all(check_zone(self))
end

function methods.capacity(self)
    local v = tonumber(C.ngx_http_lua_ffi_shdict_capacity(check_zone(self)))
    return v
end

function methods.free_space(self)
    local v = tonumber(C.ngx_http_lua_ffi_shdict_free_space(check_zone(self)))
    return v
end
