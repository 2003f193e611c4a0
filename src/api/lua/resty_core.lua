-- lua-resty-core's modules for libraries written for OpenResty. Our API is
-- built into the module, so most of these only return their version; the
-- public functions lua-resty-core exports either work over our built-in
-- API or raise our "not implemented yet" error: none is nil.
--
-- Run once at VM creation with the helper functions of resty_core.rs.
-- Modules are built on first `require` (package.preload).

local c = ...

local ngx = ngx
local error, type, tostring, select, ipairs, pcall = error, type, tostring, select, ipairs, pcall
local getmetatable, rawset = getmetatable, rawset
local preload, loaded = package.preload, package.loaded

-- The lua-resty-core release that goes with lua-nginx-module 0.10.23.
local VERSION = "0.1.25"

-- `t[name]` raises "<prefix>.<name> is not implemented yet ..." for each
-- name, as src/api/unimplemented.rs's stubs do.
local function not_implemented(t, prefix, names)
    for _, name in ipairs(names) do
        local full = prefix .. "." .. name
        t[name] = function()
            error(full .. " is not implemented yet by this ngx_http_lua_module", 2)
        end
    end
    return t
end

local function version_only(name, key)
    preload[name] = function()
        return { [key or "version"] = VERSION }
    end
end

-- os.getenv in init_by_lua sees the values of `env NAME=value;`
-- directives, which nginx puts in the environment of its workers only, as
-- lua-resty-core's does; its first call for a request puts the plain
-- os.getenv back.
do
    local getenv, conf_env, get_request = os.getenv, c.conf_env, c.get_request
    os.getenv = function(name)
        if get_request() then
            os.getenv = getenv
            return getenv(name)
        end
        if type(name) == "string" then
            local v = conf_env(name)
            if v ~= nil then
                return v
            end
        end
        return getenv(name)
    end
end

-- `require "ngx"` and `require "ndk"` give the globals, as in
-- lua-nginx-module (ndk.set_var: lua/ndk.lua).
loaded.ngx = ngx
loaded.ndk = ndk

-- resty.core.phase adds ngx.get_raw_phase(r): the phase as
-- lua-nginx-module's context bit.
do
    local bits = {
        set = 0x0001, rewrite = 0x0002, access = 0x0004, content = 0x0008,
        log = 0x0010, header_filter = 0x0020, body_filter = 0x0040,
        timer = 0x0080, init_worker = 0x0100, balancer = 0x0200,
        ssl_cert = 0x0400, ssl_session_store = 0x0800,
        ssl_session_fetch = 0x1000, exit_worker = 0x2000,
        ssl_client_hello = 0x4000, server_rewrite = 0x8000,
        proxy_ssl_verify = 0x10000, proxy_ssl_cert = 0x40000,
    }
    rawset(ngx, "get_raw_phase", function()
        local bit = bits[ngx.get_phase()]
        if not bit then
            error("no request context", 2)
        end
        return bit
    end)
end

preload["resty.core.base"] = function()
    local ffi = require "ffi"
    local ffi_new = ffi.new

    -- Type names third-party FFI declarations use after requiring base.
    if not pcall(ffi.typeof, "ngx_str_t") then
        ffi.cdef "typedef struct { size_t len; const unsigned char *data; } ngx_str_t;"
    end
    if not pcall(ffi.typeof, "ngx_http_request_t") then
        ffi.cdef "typedef struct ngx_http_request_s ngx_http_request_t;"
    end
    if not pcall(ffi.typeof, "ngx_http_lua_ffi_str_t") then
        ffi.cdef "typedef struct { int len; const unsigned char *data; } ngx_http_lua_ffi_str_t;"
    end

    local base = {
        version = VERSION,
        new_tab = require "table.new",
        clear_tab = require "table.clear",
        get_request = c.get_request,
        FFI_OK = 0,
        FFI_ERROR = -1,
        FFI_AGAIN = -2,
        FFI_BUSY = -3,
        FFI_DONE = -4,
        FFI_DECLINED = -5,
        FFI_NO_REQ_CTX = -100,
        FFI_BAD_CONTEXT = -101,
    }

    -- One shared scratch buffer for FFI calls; larger requests (or
    -- must_alloc) get a buffer of their own.
    local char_array = ffi.typeof("char[?]")
    local shared_size = 4096
    local shared, size_ptr, errmsg_ptr

    function base.get_string_buf(size, must_alloc)
        if must_alloc or size > shared_size then
            return ffi_new(char_array, size)
        end
        if not shared then
            shared = ffi_new(char_array, shared_size)
        end
        return shared
    end

    function base.get_string_buf_size()
        return shared_size
    end

    function base.set_string_buf_size(size)
        if size > 0 then
            shared_size = math.ceil(size)
            shared = nil
        end
    end

    function base.get_size_ptr()
        if not size_ptr then
            size_ptr = ffi_new("size_t[1]")
        end
        return size_ptr
    end

    function base.get_errmsg_ptr()
        if not errmsg_ptr then
            errmsg_ptr = ffi_new("char *[1]")
        end
        return errmsg_ptr
    end

    -- Stores `key` in the array part of `tb` and returns its index; tb[0]
    -- heads a free list of indexes to reuse (each free slot holds the next).
    function base.ref_in_table(tb, key)
        if key == nil then
            return -1
        end
        local ref = tb[0]
        if ref and ref ~= 0 then
            tb[0] = tb[ref]
        else
            ref = #tb + 1
        end
        tb[ref] = key
        return ref
    end

    function base.allows_subsystem(...)
        local ours = ngx.config.subsystem
        for i = 1, select("#", ...) do
            if select(i, ...) == ours then
                return
            end
        end
        error("unsupported subsystem: " .. ours, 2)
    end

    return base
end

do
    local submodules = {
        "var", "worker", "regex", "shdict", "time", "hash", "uri", "exit",
        "base64", "request", "response", "phase", "ndk", "socket",
        "coroutine", "param", "misc", "ctx",
    }
    preload["resty.core"] = function()
        for _, name in ipairs(submodules) do
            require("resty.core." .. name)
        end
        return { version = VERSION }
    end
end

-- Modules whose only job in lua-resty-core is to (re)define ngx.* API
-- functions, which are built in here.
for _, name in ipairs({ "var", "shdict", "hash", "uri", "exit", "base64", "phase",
                        "ndk", "socket", "coroutine", "param" }) do
    version_only("resty.core." .. name)
end
version_only("resty.core.worker", "_VERSION")

-- Over the FFI function of api/time_ffi.rs, so that loops reading the
-- clock stay compiled.
preload["resty.core.time"] = function()
    local ffi = require "ffi"
    local C = ffi.C
    if not pcall(function() return C.ngx_http_lua_ffi_monotonic_msec end) then
        ffi.cdef "long ngx_http_lua_ffi_monotonic_msec(void);"
    end
    local msec, tonumber = C.ngx_http_lua_ffi_monotonic_msec, tonumber
    return {
        version = VERSION,
        monotonic_msec = function()
            return tonumber(msec())
        end,
        monotonic_time = function()
            return tonumber(msec()) / 1000
        end,
    }
end

preload["resty.core.utils"] = function()
    local find, gsub, sub = string.find, string.gsub, string.sub
    return {
        version = VERSION,
        -- Every byte `find` of `str` becomes `replace` (first bytes only).
        str_replace_char = function(str, from, to)
            if not find(str, from, 1, true) then
                return str
            end
            from, to = sub(from, 1, 1), sub(to, 1, 1)
            local pattern = find(from, "^%w") and from or "%" .. from
            return (gsub(str, pattern, { [from] = to }))
        end,
    }
end

-- ngx's magic keys (ngx.ctx, ngx.status ...): registered getters and
-- setters come first; the built-in metamethods handle the rest. Our
-- metatable is wrapped only once something registers.
preload["resty.core.misc"] = function()
    local getters, setters = {}, {}
    local hooked = false

    local function hook()
        if hooked then
            return
        end
        hooked = true
        local mt = getmetatable(ngx)
        local index, newindex = mt.__index, mt.__newindex
        mt.__index = function(t, key)
            local get = getters[key]
            if get then
                return get()
            end
            return index(t, key)
        end
        mt.__newindex = function(t, key, value)
            local set = setters[key]
            if set then
                return set(value)
            end
            return newindex(t, key, value)
        end
    end

    return {
        _VERSION = VERSION,
        register_ngx_magic_key_getter = function(key, func)
            hook()
            getters[key] = func
        end,
        register_ngx_magic_key_setter = function(key, func)
            hook()
            setters[key] = func
        end,
    }
end

preload["resty.core.ctx"] = function()
    local has_ctx = c.has_ctx
    return {
        _VERSION = VERSION,
        -- ngx.ctx; a request without one yet adopts `ctx` when given.
        get_ctx_table = function(ctx)
            if ctx ~= nil and not has_ctx() then
                ngx.ctx = ctx
                return ctx
            end
            return ngx.ctx
        end,
    }
end

-- The built-in functions below are called through pcall so that their
-- errors are raised again at the level lua-resty-core raises its own
-- (the user's call), not with a position inside this file.

preload["resty.core.request"] = function()
    local add = c.req_add_header
    return {
        version = VERSION,
        -- ngx.req.set_header with override, ngx.req's add_header without.
        set_req_header = function(name, value, override)
            if name == nil then
                error("bad 'name' argument: string expected, got nil", 3)
            end
            if not override then
                if value == nil then
                    error("bad 'value' argument: string or table expected, got nil", 3)
                end
                if type(value) == "table" and #value == 0 then
                    error("bad 'value' argument: non-empty table expected", 3)
                end
            end
            local ok, err = pcall(override and ngx.req.set_header or add, tostring(name), value)
            if not ok then
                error(err, 3)
            end
        end,
    }
end

preload["resty.core.response"] = function()
    return {
        version = VERSION,
        -- ngx.header[key] = value, or ngx.resp's add_header (no_override).
        set_resp_header = function(_, key, value, no_override)
            local ok, err
            if no_override then
                if value == nil then
                    error("invalid header value", 3)
                end
                if type(value) == "table" and #value == 0 then
                    return
                end
                ok, err = pcall(require("ngx.resp").add_header, tostring(key), value)
            else
                local header = ngx.header
                ok, err = pcall(getmetatable(header).__newindex, header, key, value)
            end
            if not ok then
                error(err, 2)
            end
        end,
    }
end

preload["resty.core.regex"] = function()
    local base = require "resty.core.base"
    local ffi_copy = require("ffi").copy
    local get_string_buf = base.get_string_buf
    local grow_ratio = 2
    local regex = {
        version = VERSION,
        set_buf_grow_ratio = function(ratio)
            grow_ratio = ratio
        end,
        is_regex_cache_empty = c.regex_cache_empty,
        -- Grows an FFI output buffer (keeping its first `len` bytes) when
        -- `new_len` does not fit.
        check_buf_size = function(buf, buf_size, pos, len, new_len, must_alloc)
            if new_len > buf_size then
                buf_size = buf_size * grow_ratio
                if buf_size < new_len then
                    buf_size = new_len
                end
                local bigger = get_string_buf(buf_size, must_alloc)
                ffi_copy(bigger, buf, len)
                buf, pos = bigger, bigger + len
            end
            return buf, buf_size, pos, new_len
        end,
    }
    -- These work on lua-resty-core's compiled-regex cdata, which our
    -- built-in ngx.re does not use.
    return not_implemented(regex, "resty.core.regex", {
        "collect_captures", "destroy_compiled_regex", "re_match_compile", "re_sub_compile",
    })
end

-- ngx.resp's add_header takes its arguments as lua-resty-core's does: a
-- nil value is an error, an empty table adds nothing, the name goes
-- through tostring.
do
    local resp = package.loaded["ngx.resp"]
    local add = resp.add_header
    resp.add_header = function(key, value)
        if value == nil then
            error("invalid header value", 2)
        end
        if type(value) == "table" and #value == 0 then
            return
        end
        local ok, err = pcall(add, tostring(key), value)
        if not ok then
            error(err, 2)
        end
    end
end

preload["ngx.req"] = function()
    local set_req_header = require("resty.core.request").set_req_header
    return {
        version = VERSION,
        add_header = function(key, value)
            set_req_header(key, value, false)
        end,
    }
end

preload["ngx.process"] = function()
    -- Through the FFI where the symbol is visible (nginx loads modules
    -- with RTLD_GLOBAL), so that a loop calling type() stays compiled.
    local get_type = c.process_type
    local ffi = require "ffi"
    pcall(ffi.cdef, "int ngx_http_lua_ffi_get_process_type(void);")
    local ok, f = pcall(function()
        return ffi.C.ngx_http_lua_ffi_get_process_type
    end)
    if ok then
        get_type = f
    end
    local names = {
        [0] = "single", [1] = "master", [2] = "signaller", [3] = "worker",
        [4] = "helper", [99] = "privileged agent",
    }
    local process = {
        version = VERSION,
        type = function()
            return names[get_type()]
        end,
        get_master_pid = c.master_pid,
        signal_graceful_exit = c.graceful_exit,
    }
    -- The privileged agent process needs OpenResty's nginx patch: on a
    -- stock nginx lua-nginx-module answers as this does.
    function process.enable_privileged_agent(connections)
        if ngx.get_phase() ~= "init" then
            return nil, "API disabled in the current context"
        end
        connections = connections or 512
        if type(connections) ~= "number" or connections < 0 then
            return nil, "bad 'connections' argument: number expected and greater than 0"
        end
        return nil, "missing privileged agent process patch in the nginx core"
    end
    return process
end

preload["ngx.errlog"] = function()
    local raw_log = c.raw_log
    local errlog = {
        version = VERSION,
        get_sys_filter_level = c.sys_filter_level,
        raw_log = function(level, msg)
            if type(level) ~= "number" then
                error("bad argument #1 to 'raw_log' (must be a number)", 2)
            end
            if type(msg) ~= "string" then
                error("bad argument #2 to 'raw_log' (must be a string)", 2)
            end
            if not raw_log(level, msg) then
                error("bad log level", 2)
            end
        end,
    }
    local set_filter, get_msg = c.errlog_set_filter, c.errlog_get_msg
    local new_tab = require "table.new"
    function errlog.set_filter_level(level)
        if not level then
            return nil, [[missing "level" argument]]
        end
        if type(level) ~= "number" then
            -- what the FFI call of lua-resty-core says
            error("bad argument #1 to 'ngx_http_lua_ffi_errlog_set_filter_level' (cannot convert '"
                  .. type(level) .. "' to 'int')", 2)
        end
        return set_filter(level)
    end
    -- Up to `max` (10) of the oldest captured lines, as level, time, text
    -- triples in `logs` (or a new table), ended by a nil.
    function errlog.get_logs(max, logs)
        max = max or 10
        if not logs then
            logs = new_tab(max * 3 + 1, 0)
        end
        local count = 0
        for i = 1, max do
            local level, time, msg = get_msg()
            if level == false then
                return nil, time
            end
            if level == nil then
                logs[count + 1] = nil
                break
            end
            logs[count + 1] = level
            logs[count + 2] = time
            logs[count + 3] = msg
            count = count + 3
            if i == max then
                logs[count + 1] = nil
                break
            end
        end
        return logs
    end
    return errlog
end

-- lua-nginx-module loads resty.core into every VM it creates: libraries
-- find it (and its submodules) in package.loaded from the start.
require("resty.core")
