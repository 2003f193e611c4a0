-- ngx.status, ngx.ctx, ngx.headers_sent and ngx.is_subrequest in Lua over the FFI
-- functions of api/ngx_fields_ffi.rs, so that code using them in loops
-- stays in compiled traces. The request's ctx table lives in the registry
-- (its reference comes from the FFI function), so a read is a table
-- lookup, and `ngx.ctx = t` puts t in that slot. The first use in a
-- request makes the table here too when a plain empty one is what it gets
-- (not in handshake code, nor on a connection whose handshake code made a
-- table to read through to). Everything else, and every error, goes to
-- the classic __index/__newindex, which raise lua-nginx-module's texts; so
-- do handshake code's writes (its table is the connection's too).
--
-- Run once at VM creation with the classic __index and __newindex.

local declare, classic_index, classic_newindex = ...

local ffi = require "ffi"
local C = ffi.C
local type = type
local registry = debug.getregistry()

declare({
    ngx_http_lua_rs_get_status = "int ngx_http_lua_rs_get_status(void);",
    ngx_http_lua_rs_set_status = "int ngx_http_lua_rs_set_status(int status);",
    ngx_http_lua_rs_ctx_ref = "int ngx_http_lua_rs_ctx_ref(int for_set);",
    ngx_http_lua_rs_ctx_adopt = "int ngx_http_lua_rs_ctx_adopt(int ref);",
    ngx_http_lua_rs_headers_sent = "int ngx_http_lua_rs_headers_sent(void);",
    ngx_http_lua_rs_is_subrequest = "int ngx_http_lua_rs_is_subrequest(void);",
})

local get_status, set_status, ctx_ref = C.ngx_http_lua_rs_get_status, C.ngx_http_lua_rs_set_status,
                                         C.ngx_http_lua_rs_ctx_ref
local headers_sent, is_subrequest = C.ngx_http_lua_rs_headers_sent, C.ngx_http_lua_rs_is_subrequest
local ctx_adopt = C.ngx_http_lua_rs_ctx_adopt
local new_tab = require "table.new"

-- luaL_ref and luaL_unref on the registry, in Lua: lua-resty-core's
-- ref_in_table keeps luaL_ref's free list (slot 0) and numbers, so that the
-- C side's luaL_unref at the request's end and every other reference of
-- the VM stay in step.
local ref_in_table = require("resty.core.base").ref_in_table

local function registry_unref(ref)
    registry[ref] = registry[0]
    registry[0] = ref
end

-- The request's first ngx.ctx, as the classic function makes it.
local function new_ctx()
    local ctx = new_tab(0, 4)
    local ref = ref_in_table(registry, ctx)
    if ctx_adopt(ref) == 0 then
        return ctx
    end
    registry_unref(ref)
    return nil
end

-- A fast path returns from the face itself, not by a tail call: a trace
-- that starts at a face's entry must end at its own return (see var.lua).
-- The classic functions are tail-called: their errors then name the
-- caller's line, as when they were the metamethods themselves.
local function index(t, k)
    if k == "ctx" then
        local ref = ctx_ref(0)
        if ref > 0 then
            local ctx = registry[ref]
            return ctx
        end
        if ref == 0 then
            local ctx = new_ctx()
            if ctx then
                return ctx
            end
        end
    elseif k == "status" then
        local st = get_status()
        if st >= 0 then
            return st
        end
    elseif k == "headers_sent" then
        local sent = headers_sent()
        if sent >= 0 then
            return sent == 1
        end
    elseif k == "is_subrequest" then
        local sub = is_subrequest()
        if sub >= 0 then
            return sub == 1
        end
    end
    return classic_index(t, k)
end

local function newindex(t, k, v)
    if k == "status" then
        -- Whole numbers in range only: the classic function reads other
        -- values (and raises) as it always did.
        if type(v) == "number" and v >= 100 and v <= 999 and v % 1 == 0 and set_status(v) == 0 then
            return
        end
    elseif k == "ctx" and type(v) == "table" then
        -- The request's table is replaced in its registry slot.
        local ref = ctx_ref(1)
        if ref > 0 then
            registry[ref] = v
            return
        end
    end
    return classic_newindex(t, k, v)
end

local mt = getmetatable(ngx)
mt.__index = index
mt.__newindex = newindex
