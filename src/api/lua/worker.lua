-- ngx.worker.pid, id, count and exiting in Lua over the FFI functions of
-- api/worker_ffi.rs, so that code calling them in loops stays in compiled
-- traces. (ngx.worker.pids, which builds a table, stays a C function.)
--
-- Run once at VM creation, after the ngx table is in place.

local declare = ...

local ffi = require "ffi"
local C = ffi.C
local worker = ngx.worker

declare({
    ngx_http_lua_ffi_worker_pid = "int ngx_http_lua_ffi_worker_pid(void);",
    ngx_http_lua_ffi_worker_id = "int ngx_http_lua_ffi_worker_id(void);",
    ngx_http_lua_ffi_worker_count = "int ngx_http_lua_ffi_worker_count(void);",
    ngx_http_lua_ffi_worker_exiting = "int ngx_http_lua_ffi_worker_exiting(void);",
})

local pid, id, count, exiting = C.ngx_http_lua_ffi_worker_pid, C.ngx_http_lua_ffi_worker_id,
                                C.ngx_http_lua_ffi_worker_count,
                                C.ngx_http_lua_ffi_worker_exiting

function worker.pid()
    return pid()
end

function worker.id()
    local n = id()
    if n < 0 then
        return nil
    end
    return n
end

function worker.count()
    return count()
end

function worker.exiting()
    return exiting() ~= 0
end
