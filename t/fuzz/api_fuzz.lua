-- API fuzzer for ngx_http_lua_module (ours and, as a control, the C module).
--
-- It finds at run time every function reachable from the `ngx` table, from
-- the modules `require` provides and from the metatables of every object
-- type (sockets, shared dicts, semaphores, iterators, threads ...), and calls
-- them inside pcall with generated arguments: wrong types and counts, extreme
-- numbers, odd strings, tables whose metamethods raise or yield, callbacks
-- that raise or yield, and objects of the wrong type as `self`.  Nothing it
-- does may crash the worker: a Lua error is the only acceptable failure.
--
-- Entry points (see t/810-api-fuzz.t and scripts/fuzz-api.sh):
--   fuzz.run_phase(phase [, opts])   one bounded run in the current phase
--   fuzz.report()                    /report location: logs the totals
-- Options come from `opts`, else from the request's query string
-- (seed, calls, budget, mode), else from defaults.
--
-- Every call is written, before it is made, to a ring of fixed-size records
-- in <prefix>logs/fuzz-trace.<pid> (when fuzz.trace is on) as a Lua line that
-- reproduces it, so a crash can be attributed to the call that caused it.
--
-- Deterministic: the same seed, phase and objects give the same calls.

local M = { stats = {}, stash = {}, pending_timers = 0 }

-- Everything the driver itself needs, captured before any fuzzed call can
-- replace it.
local pcall, xpcall, error, type, select, unpack = pcall, xpcall, error, type, select, unpack
local tostring, tonumber, next, pairs, ipairs = tostring, tonumber, next, pairs, ipairs
local setmetatable, getmetatable, rawget, rawset = setmetatable, getmetatable, rawget, rawset
local string_rep, string_format, string_sub, table_concat = string.rep, string.format, string.sub, table.concat
local table_sort, string_gsub, collectgarbage, newproxy, load = table.sort, string.gsub, collectgarbage, newproxy, load
local os_clock, io_open = os.clock, io.open
local co_create, co_running, co_resume, co_wrap, co_status = coroutine.create, coroutine.running,
    coroutine.resume, coroutine.wrap, coroutine.status
local bit = require "bit"
local bxor, lshift, rshift, band = bit.bxor, bit.lshift, bit.rshift, bit.band
local ngx = ngx
local ngx_log, NOTICE, ngx_now, ngx_update_time = ngx.log, ngx.NOTICE, ngx.now, ngx.update_time
local ngx_sleep, thread_spawn, thread_kill, thread_wait = ngx.sleep, ngx.thread.spawn, ngx.thread.kill, ngx.thread.wait
local get_phase = ngx.get_phase
-- The report's pid and guard dict: fuzzed calls such as `ngx[k] = v` may
-- replace ngx.worker or ngx.shared (as they may in lua-nginx-module).
local worker_pid, shared = ngx.worker.pid, ngx.shared
local has_ffi, ffi = pcall(require, "ffi")

----------------------------------------------------------------------------
-- Deterministic PRNG (xorshift32)
----------------------------------------------------------------------------
local rng = 1
local function seed_rng(s)
    s = tonumber(s) or 1
    rng = bit.tobit((s * 2654435761 + 12345) % 4294967296)
    if rng == 0 then rng = 1 end
end
local function rnd32()
    local x = rng
    x = bxor(x, lshift(x, 13))
    x = bxor(x, rshift(x, 17))
    x = bxor(x, lshift(x, 5))
    rng = x
    return x
end
-- 1..n
local function rand(n)
    return band(rnd32(), 0x7fffffff) % n + 1
end
local function pick(t)
    return t[rand(#t)]
end
local function chance(p) -- p in [0,1]
    return band(rnd32(), 0xffff) < p * 65536
end

----------------------------------------------------------------------------
-- Process facts without going through the API being fuzzed
----------------------------------------------------------------------------
local function self_pid()
    local f = io_open("/proc/self/stat", "r")
    if not f then return 0 end
    local pid = f:read("*n")
    f:close()
    return pid or 0
end

local PREFIX = (function()
    local ok, p = pcall(function() return ngx.config.prefix() end)
    if ok and type(p) == "string" then return p end
    return "/tmp/"
end)()

----------------------------------------------------------------------------
-- Trace ring: the last calls, out of the process before they are made
----------------------------------------------------------------------------
local REC, SLOTS = 512, 4096
local trace_f, trace_seq, trace_pid = nil, 0, nil

local function trace_open()
    local pid = self_pid()
    if trace_f and trace_pid == pid then return end
    -- forked worker: its own file
    trace_pid = pid
    local path = PREFIX .. "logs/fuzz-trace." .. pid
    trace_f = io_open(path, "r+") or io_open(path, "w+")
    if trace_f then trace_f:setvbuf("no") end
end

local function trace(line)
    if not M.trace or not trace_f then return end
    trace_seq = trace_seq + 1
    local rec = string_format("%010d %s", trace_seq, line)
    rec = string_gsub(rec, "\n", "\\n")
    if #rec > REC - 1 then rec = string_sub(rec, 1, REC - 4) .. "..." end
    rec = rec .. string_rep(" ", REC - 1 - #rec) .. "\n"
    trace_f:seek("set", (trace_seq % SLOTS) * REC)
    trace_f:write(rec)
end

----------------------------------------------------------------------------
-- Settings of the run that is going on
----------------------------------------------------------------------------
local S -- the current run state

-- Targets never called, with why.  The functions whose documented effect
-- ends the request or the handler (they would end the run early) are called
-- only in "terminal" mode (location /fuzz/terminal), where that is expected.
local TERMINAL = {
    ["ngx.exit"] = "ends the request / handler by design",
    ["ngx.exec"] = "internal redirect, ends the handler by design",
    ["ngx.redirect"] = "ends the request by design",
    ["ngx.req.set_uri"] = "with jump=true it ends the rewrite handler by design (fuzzed with jump=false otherwise)",
}
local DENY = {
    ["ngx.process.signal_master"] = "C module: signals the nginx master (would stop the server under test)",
    ["ngx.process.signal_graceful_exit"] = "asks the master to stop nginx gracefully, by design",
    ["ngx.pipe.spawn"] = "C module: spawns arbitrary processes",
    ["ngx.process.enable_privileged_agent"] = "C module: forks a privileged agent",
}
M.TERMINAL, M.DENY = TERMINAL, DENY

-- Functions that connect: every string argument is replaced by a loopback
-- host, so no fuzzed string can become a remote address.
local CONNECTING = { connect = true, setpeername = true, set_current_peer = true }

-- Functions that may suspend the Lua thread (used only to set the class
-- "yield inside a C callback" aside with the skip entry "inner_yield").
local MAY_YIELD = { sleep = true, connect = true, receive = true, receiveany = true, send = true,
    wait = true, capture = true, capture_multi = true, read_body = true, flush = true, sslhandshake = true,
    until_iter = true, yield = true, setkeepalive = true, wrap = true, resume = true, post = true }

-- "ngx.socket.tcp" -> "tcp", "tcp:connect" -> "connect"
local function short(name)
    return name:match("[%.:]([%w_]+)$") or name
end

----------------------------------------------------------------------------
-- Value pool.  Every generator returns value, repr (Lua source that
-- rebuilds the value, for reproductions) and a short kind name.
----------------------------------------------------------------------------
local LONG = string_rep("A", 70000)
local HUGE_LEN = 1024 * 1024

local STRINGS = {
    { "", '""' }, { "a", '"a"' }, { "0", '"0"' }, { "1", '"1"' }, { "-1", '"-1"' }, { "1.5", '"1.5"' },
    { "nan", '"nan"' }, { "inf", '"inf"' }, { "1e400", '"1e400"' }, { "0x7fffffff", '"0x7fffffff"' },
    { "\0", '"\\0"' }, { "a\0b", '"a\\0b"' }, { "\r\n", '"\\r\\n"' }, { "\n", '"\\n"' },
    { "x\r\nX-Injected: 1", '"x\\r\\nX-Injected: 1"' }, { " ", '" "' }, { "%", '"%"' },
    { "%zz", '"%zz"' }, { "%00", '"%00"' }, { "%s%n%p", '"%s%n%p"' }, { "\255\254\253", '"\\255\\254\\253"' },
    { "(", '"("' }, { ")", '")"' }, { "[", '"["' }, { "\\", '"\\\\"' }, { "(?<x>a)(b)?", '"(?<x>a)(b)?"' },
    { "(a)|(b)", '"(a)|(b)"' }, { "a*", '"a*"' }, { "(.)", '"(.)"' }, { "(.*)*$", '"(.*)*$"' },
    { "(?<n>.)(?<n>.)", '"(?<n>.)(?<n>.)"' }, { "$0", '"$0"' }, { "${1}", '"${1}"' }, { "$", '"$"' },
    { "${", '"${"' }, { "$9999", '"$9999"' }, { "$x", '"$x"' }, { "jo", '"jo"' }, { "i", '"i"' },
    { "ijmsxuUdDaoJ", '"ijmsxuUdDaoJ"' }, { "d", '"d"' }, { "@", '"@"' }, { "J", '"J"' }, { "*l", '"*l"' },
    { "*a", '"*a"' }, { "*b", '"*b"' }, { "*L", '"*L"' }, { "--", '"--"' }, { "\r\n\r\n", '"\\r\\n\\r\\n"' },
    { "/", '"/"' }, { "/echo", '"/echo"' }, { "/static.txt", '"/static.txt"' }, { "/nonexistent", '"/nonexistent"' },
    { "//..//../", '"//..//../"' }, { "/echo?a=1&b", '"/echo?a=1&b"' }, { "http://127.0.0.1/", '"http://127.0.0.1/"' },
    { "a=1&b=2&a=3&c", '"a=1&b=2&a=3&c"' }, { "a=%ZZ&=&&=x", '"a=%ZZ&=&&=x"' },
    { "GET", '"GET"' }, { "POST", '"POST"' }, { "X-Fuzz", '"X-Fuzz"' }, { "Content-Type", '"Content-Type"' },
    { "Content-Length", '"Content-Length"' }, { "Set-Cookie", '"Set-Cookie"' }, { "Location", '"Location"' },
    { "Transfer-Encoding", '"Transfer-Encoding"' }, { "Host", '"Host"' }, { "Cookie", '"Cookie"' },
    { "content_type", '"content_type"' }, { "uri", '"uri"' }, { "args", '"args"' }, { "fuzz_var", '"fuzz_var"' },
    { "arg_a", '"arg_a"' }, { "http_host", '"http_host"' }, { "limit_rate", '"limit_rate"' },
    { "request_body", '"request_body"' }, { "status", '"status"' }, { "ctx", '"ctx"' }, { "key", '"key"' },
    { "list", '"list"' }, { "127.0.0.1", '"127.0.0.1"' }, { "localhost", '"localhost"' },
    { "unix:", '"unix:"' }, { "unix:/nonexistent/fuzz.sock", '"unix:/nonexistent/fuzz.sock"' },
    { "tcp", '"tcp"' }, { "keepalive", '"keepalive"' }, { "sndbuf", '"sndbuf"' }, { "reuseaddr", '"reuseaddr"' },
    { "tcp-nodelay", '"tcp-nodelay"' }, { "é", '"\\195\\169"' }, { "\127", '"\\127"' },
}

local NUMBERS = {
    { 0, "0" }, { 1, "1" }, { -1, "-1" }, { 2, "2" }, { 3, "3" }, { 7, "7" }, { 10, "10" }, { 100, "100" },
    { 200, "200" }, { 204, "204" }, { 302, "302" }, { 404, "404" }, { 444, "444" }, { 499, "499" },
    { 500, "500" }, { 599, "599" }, { 1000, "1000" }, { 65535, "65535" }, { 65536, "65536" }, { 0.5, "0.5" },
    { -0.5, "-0.5" }, { 1e-9, "1e-9" }, { 0.001, "0.001" }, { -0.0, "-0.0" }, { 2 ^ 31 - 1, "2^31-1" },
    { 2 ^ 31, "2^31" }, { -2 ^ 31, "-2^31" }, { -2 ^ 31 - 1, "-2^31-1" }, { 2 ^ 32, "2^32" },
    { 2 ^ 32 + 1, "2^32+1" }, { 2 ^ 53, "2^53" }, { 2 ^ 53 + 2, "2^53+2" }, { -2 ^ 53, "-2^53" },
    { 2 ^ 63, "2^63" }, { -2 ^ 63, "-2^63" }, { 2 ^ 64, "2^64" }, { 1e308, "1e308" }, { -1e308, "-1e308" },
    { 5e-324, "5e-324" }, { math.huge, "math.huge" }, { -math.huge, "-math.huge" }, { 0 / 0, "0/0" },
    { math.pi, "math.pi" }, { 12345678.9, "12345678.9" },
}

local METAMETHODS = { "__index", "__newindex", "__tostring", "__len", "__eq", "__lt", "__le", "__concat",
    "__call", "__unm", "__add", "__metatable" }

local OPT_KEYS = { "pos", "method", "body", "args", "ctx", "vars", "copy_all_vars", "share_all_vars",
    "always_forward_body", "pool", "pool_size", "backlog", "timeout", "inclusive", "jit", "headers",
    "ssl_verify", "server_name", "send_status_req", "reused_session" }

local gen_value -- forward

local function raiser(what)
    return function() error("fuzz: raised by " .. what) end
end

local function yielder(ret)
    return function() ngx_sleep(0) return ret end
end

-- A table whose metamethod `mm` raises, or yields when `y`.
local function special_table(mm, y)
    local mt = {}
    if mm == "__metatable" then
        mt.__metatable = false
    elseif y then
        mt[mm] = yielder(mm == "__tostring" and "yielded" or nil)
    else
        mt[mm] = raiser(mm)
    end
    local t = setmetatable({}, mt)
    local how = y and 'function() ngx.sleep(0) end' or 'function() error("x") end'
    return t, string_format("setmetatable({}, {%s = %s})", mm, how), (y and "tbl_yield:" or "tbl_raise:") .. mm
end

local function all_raising()
    local mt = {}
    for _, mm in ipairs(METAMETHODS) do
        if mm ~= "__metatable" then mt[mm] = raiser(mm) end
    end
    return setmetatable({}, mt), "setmetatable({}, <every metamethod raising>)", "tbl_all_raise"
end

local function primitive()
    local r = rand(10)
    if r <= 4 then
        local s = pick(STRINGS)
        return s[1], s[2], "str"
    elseif r <= 7 then
        local n = pick(NUMBERS)
        return n[1], n[2], "num"
    elseif r == 8 then
        local i = rand(2001) - 1001
        return i, tostring(i), "int"
    elseif r == 9 then
        return true, "true", "bool"
    else
        return false, "false", "bool"
    end
end

-- A table shaped like an options table, with values of any type.
local function options_table(depth)
    local t, parts = {}, {}
    for _ = 1, rand(4) do
        local k = pick(OPT_KEYS)
        local v, vr = gen_value(depth + 1)
        t[k] = v
        parts[#parts + 1] = k .. " = " .. vr
    end
    return t, "{" .. table_concat(parts, ", ") .. "}"
end

local function callbacks()
    local r = rand(14)
    if r == 1 then return function() end, "function() end", "fn"
    elseif r == 2 then return raiser("callback"), 'function() error("x") end', "fn_raise"
    elseif r == 3 then return function() error({}) end, "function() error({}) end", "fn_raise_tbl"
    elseif r == 4 then
        return function() error(setmetatable({}, { __tostring = raiser("errobj") })) end,
            "function() error(setmetatable({}, {__tostring = function() error('x') end})) end", "fn_raise_obj"
    elseif r == 5 then return function(...) return ... end, "function(...) return ... end", "fn_echo"
    elseif r == 6 then return function() return 1, 2, 3 end, "function() return 1, 2, 3 end", "fn_multi"
    elseif r == 7 then return function() return LONG end, 'function() return ("A"):rep(70000) end', "fn_long"
    elseif r == 8 then
        return function() return (special_table("__tostring")) end,
            "function() return setmetatable({}, {__tostring = function() error('x') end}) end", "fn_ret_raising"
    elseif r == 9 then return yielder("y"), 'function() ngx.sleep(0) return "y" end', "fn_yield"
    elseif r == 10 then return function() ngx_sleep(0.001) end, "function() ngx.sleep(0.001) end", "fn_sleep"
    elseif r == 11 then return function(...) coroutine.yield(...) end, "function(...) coroutine.yield(...) end", "fn_coyield"
    elseif r == 12 then return function(m) return m and m[0] or "" end, 'function(m) return m and m[0] or "" end', "fn_m0"
    elseif r == 13 then return function() return {} end, "function() return {} end", "fn_ret_tbl"
    else
        -- a callback that calls a random API target (never a terminal one)
        local tgt = pick(S.targets)
        local a, ar = primitive()
        if CONNECTING[short(tgt.name)] or tgt.name == "ngx.req.set_uri" then a, ar = 1, "1" end
        -- a timer callback that waits (a fuzzed ngx.sleep(2^31)...) would
        -- keep an exiting worker alive, with the C module too: short waits
        if MAY_YIELD[short(tgt.name)] then a, ar = 0.001, "0.001" end
        return function() return tgt.fn(a) end, string_format("function() return %s(%s) end", tgt.name, ar), "fn_api"
    end
end

local function object_value()
    local kinds = S.obj_kinds
    if #kinds == 0 then return nil end
    local k = pick(kinds)
    local o = pick(S.objs[k])
    return o.v, o.repr, "obj:" .. k
end

-- Chimeras: an object's internal slot under another object type's
-- metatable, all built with plain Lua (getmetatable/setmetatable/rawget).
local function chimera()
    local kinds = S.obj_kinds
    if #kinds == 0 then return nil end
    local a = pick(S.objs[pick(kinds)])
    local b = pick(S.objs[pick(kinds)])
    local mt = type(b.v) == "table" and getmetatable(b.v)
    if type(mt) ~= "table" then return nil end
    local inner = type(a.v) == "table" and rawget(a.v, 1) or a.v
    local r = rand(4)
    local t
    if r == 1 then t = { inner } elseif r == 2 then t = { ngx.null } elseif r == 3 then t = {} else t = { "x", 1 } end
    local rr = ({ "{rawget(A, 1)}", "{ngx.null}", "{}", '{"x", 1}' })[r]
    return setmetatable(t, mt), string_format("setmetatable(%s, getmetatable(B)) -- A=%s B=%s", rr, a.repr, b.repr), "chimera"
end

local function deep_table(n)
    local t = {}
    local cur = t
    for _ = 1, n do
        local nt = {}
        cur[1] = nt
        cur = nt
    end
    return t
end

local gen_any

-- Generated values, minus the kinds listed as "kind:NAME" (or the family
-- "kind:tbl_raise") in logs/fuzz-skip.txt, so that known crash classes can
-- be set aside while the fuzzer looks for others.
gen_value = function(depth)
    for _ = 1, 8 do
        local v, r, k = gen_any(depth or 0)
        k = k or "?"
        if not (S.skip["kind:" .. k] or S.skip["kind:" .. (k:match("^[^:]+") or k)]) then
            return v, r, k
        end
    end
    return primitive()
end

gen_any = function(depth)
    local r = rand(100)
    if r <= 40 or depth > 2 then
        return primitive()
    elseif r <= 43 then
        return nil, "nil", "nil"
    elseif r <= 45 then
        return LONG, 'string.rep("A", 70000)', "str_long"
    elseif r == 46 then
        if chance(0.2) then return string_rep("B", HUGE_LEN), 'string.rep("B", 2^20)', "str_huge" end
        return string_rep("\0", 300), 'string.rep("\\0", 300)', "str_nuls"
    elseif r <= 52 then
        return special_table(pick(METAMETHODS), chance(0.25))
    elseif r == 53 then
        local v, vr = all_raising()
        return v, vr, "tbl_all_raise"
    elseif r <= 56 then
        local t = {}
        t[1] = t
        t.a = t
        return t, "(function() local t = {} t[1] = t t.a = t return t end)()", "tbl_self"
    elseif r == 57 then
        local n = chance(0.3) and 100000 or 300
        return deep_table(n), "<nested table, depth " .. n .. ">", "tbl_deep"
    elseif r <= 62 then
        local t, tr = options_table(depth)
        return t, tr, "tbl_opts"
    elseif r <= 66 then
        local parts, t = {}, {}
        for i = 1, rand(5) do
            local v, vr = gen_value(depth + 1)
            t[i] = v
            parts[i] = vr
        end
        return t, "{" .. table_concat(parts, ", ") .. "}", "tbl_list"
    elseif r == 67 then
        local t = { [true] = 1, [1.5] = "x", a = { 1, { 2 } }, [{}] = 3, b = true, c = ngx.null }
        return t, "{[true]=1, [1.5]='x', a={1,{2}}, [{}]=3, b=true, c=ngx.null}", "tbl_keys"
    elseif r <= 69 then
        local a, ar = gen_value(depth + 1)
        local t = { { "/", a }, { ar and "/echo" }, "x", {} }
        return t, "{ {'/', " .. ar .. "}, {'/echo'}, 'x', {} }", "tbl_reqs"
    elseif r <= 79 then
        return callbacks()
    elseif r == 80 then
        local co = co_create(function() end)
        if chance(0.5) then co_resume(co) end
        return co, "coroutine.create(function() end)", "co"
    elseif r == 81 then
        return co_running(), "coroutine.running()", "co_running"
    elseif r == 82 then
        return ngx.null, "ngx.null", "null"
    elseif r == 83 then
        local p = newproxy(true)
        getmetatable(p).__index = raiser("proxy")
        getmetatable(p).__tostring = raiser("proxy")
        return p, "newproxy(true) with raising __index/__tostring", "udata"
    elseif r == 84 and has_ffi then
        if chance(0.5) then return ffi.new("char[?]", 8), 'ffi.new("char[?]", 8)', "cdata" end
        return ffi.cast("void *", 0), 'ffi.cast("void *", 0)', "cdata_null"
    elseif r <= 96 then
        local v, vr, k = object_value()
        if v ~= nil then return v, vr, k end
        return primitive()
    else
        local v, vr, k = chimera()
        if v ~= nil then return v, vr, k end
        return primitive()
    end
end

----------------------------------------------------------------------------
-- Targets
----------------------------------------------------------------------------
local function add_target(list, seen, name, fn, self_kind)
    if type(fn) ~= "function" then return end
    local key = tostring(fn) .. "|" .. (self_kind or "")
    if seen[key] then return end
    seen[key] = true
    if DENY[name] then return end
    if S and S.skip[name] then return end
    if S and S.only then
        -- "only:PREFIX" skip entries: fuzz just those targets
        local keep = false
        for prefix in pairs(S.only) do
            if name:sub(1, #prefix) == prefix then keep = true break end
        end
        if not keep then return end
    end
    list[#list + 1] = { name = name, fn = fn, self_kind = self_kind }
end

local function walk(list, seen, tbl, name, depth, visited)
    if visited[tbl] or depth > 3 then return end
    visited[tbl] = true
    local keys = {}
    for k in next, tbl do
        if type(k) == "string" then keys[#keys + 1] = k end
    end
    table_sort(keys) -- deterministic order
    for _, k in ipairs(keys) do
        local v = rawget(tbl, k)
        local full = name .. "." .. k
        if type(v) == "function" then
            add_target(list, seen, full, v)
        elseif type(v) == "table" and k ~= "shared" and k ~= "_G" and k ~= "loaded" then
            walk(list, seen, v, full, depth + 1, visited)
        end
    end
    local ok, mt = pcall(getmetatable, tbl)
    if ok and type(mt) == "table" then
        for _, mm in ipairs({ "__index", "__newindex", "__call", "__tostring", "__len", "__gc" }) do
            local f = rawget(mt, mm)
            if type(f) == "function" then add_target(list, seen, name .. ".<mt>." .. mm, f) end
        end
    end
end

local MODULES = { "ngx.re", "ngx.semaphore", "ngx.base64", "ngx.resp", "ngx.balancer", "ngx.ssl",
    "ngx.ssl.session", "ngx.ssl.clienthello", "ngx.ssl.proxysslcert", "ngx.ssl.proxysslverify", "ngx.ocsp",
    "ngx.errlog", "ngx.process", "ngx.pipe", "ngx.req",
    "resty.core", "resty.core.base", "resty.core.regex", "resty.core.var", "resty.core.ctx", "resty.core.time",
    "resty.core.hash", "resty.core.uri", "resty.core.misc", "resty.core.request", "resty.core.response",
    "resty.core.exit", "resty.core.worker", "resty.core.phase", "resty.core.ndk", "resty.core.socket",
    "resty.core.utils", "resty.core.shdict", "resty.core.base64", "resty.core.coroutine" }

-- Builtins whose callbacks call a fuzzed API function: yields and errors
-- inside C callbacks (table.sort, string.gsub, metamethods, finalizers...).
local function builtin_wrappers(list, seen)
    local function with_cb(name, f)
        add_target(list, seen, "<" .. name .. ">", f)
    end
    local function inner(...)
        -- the API call the wrapper makes from inside the builtin callback
        local tgt = S.cb_target
        if tgt then return tgt.fn(...) end
    end
    with_cb("table.sort cmp calls api", function(...)
        local args = { ... }
        local t = { 3, 1, 2, 5, 4 }
        table_sort(t, function(a, b) inner(unpack(args)) return a < b end)
    end)
    with_cb("string.gsub repl calls api", function(...)
        local args = { ... }
        return string_gsub("abc", ".", function() inner(unpack(args)) end)
    end)
    with_cb("__index calls api", function(...)
        local args = { ... }
        local t = setmetatable({}, { __index = function() return inner(unpack(args)) end })
        return t.x
    end)
    with_cb("tostring __tostring calls api", function(...)
        local args = { ... }
        return tostring(setmetatable({}, { __tostring = function() inner(unpack(args)) return "s" end }))
    end)
    with_cb("load reader calls api", function(...)
        local args = { ... }
        local done = false
        return load(function()
            if done then return nil end
            done = true
            inner(unpack(args))
            return "return 1"
        end)
    end)
    with_cb("xpcall handler calls api", function(...)
        local args = { ... }
        return xpcall(error, function() return inner(unpack(args)) end)
    end)
    with_cb("coroutine.wrap calls api", function(...)
        local f = co_wrap(inner)
        return f(...)
    end)
    with_cb("__gc calls api", function(...)
        local args = { ... }
        local p = newproxy(true)
        getmetatable(p).__gc = function() inner(unpack(args)) end
        p = nil
        collectgarbage()
    end)
    with_cb("__eq calls api", function(...)
        local args = { ... }
        local mt = { __eq = function() inner(unpack(args)) return true end }
        local a, b = setmetatable({}, mt), setmetatable({}, mt)
        return a == b
    end)
end

-- Object kinds: constructors, run in pcall; what they make depends on the
-- phase (most need a request or a yieldable context).
local function make_objects()
    local objs = {}
    local function add(kind, v, repr)
        if v == nil then return end
        local l = objs[kind]
        if not l then l = {} objs[kind] = l end
        l[#l + 1] = { v = v, repr = repr }
    end
    local function try(kind, repr, f, ...)
        local ok, v = pcall(f, ...)
        if ok then add(kind, v, repr) end
        return ok and v
    end
    local shared = rawget(ngx, "shared") or {}
    local names = {}
    for name in next, shared do
        if type(name) == "string" and name ~= "fuzz_guard" then names[#names + 1] = name end
    end
    table_sort(names)
    for _, name in ipairs(names) do add("dict", shared[name], "ngx.shared." .. name) end
    try("tcp", "ngx.socket.tcp()", ngx.socket.tcp)
    if ngx.socket.stream then try("tcp", "ngx.socket.stream()", ngx.socket.stream) end
    try("udp", "ngx.socket.udp()", ngx.socket.udp)
    local port = S.port
    if port and S.yieldable then
        local sock = try("tcp", "<tcp socket connected to 127.0.0.1:" .. port .. ">", ngx.socket.tcp)
        if sock then
            pcall(sock.settimeout, sock, 300)
            local ok = pcall(sock.connect, sock, "127.0.0.1", port)
            if ok then
                pcall(sock.send, sock, "GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                local ok2, it = pcall(sock.receiveuntil, sock, "\r\n\r\n")
                if ok2 and type(it) == "function" then add("until_iter", it, "sock:receiveuntil('\\r\\n\\r\\n')") end
            end
        end
        local u = try("udp", "<udp socket, peer 127.0.0.1:" .. port .. ">", ngx.socket.udp)
        if u then pcall(u.setpeername, u, "127.0.0.1", port) end
    end
    local okt, t = pcall(ngx.socket.tcp)
    if okt and t then
        local ok2, it = pcall(t.receiveuntil, t, "--")
        if ok2 and type(it) == "function" then add("until_iter", it, "ngx.socket.tcp():receiveuntil('--')") end
    end
    if S.request then
        try("reqsock", "ngx.req.socket()", ngx.req.socket)
        pcall(function() add("ctx", ngx.ctx, "ngx.ctx") end)
    end
    local oksema, sema = pcall(require, "ngx.semaphore")
    if oksema and type(sema) == "table" then
        try("sema", "require('ngx.semaphore').new(0)", sema.new, 0)
        try("sema", "require('ngx.semaphore').new(2)", sema.new, 2)
    end
    local okit, it = pcall(ngx.re.gmatch, "a1b2c3", "([a-z])(\\d)")
    if okit and type(it) == "function" then add("gmatch_iter", it, 'ngx.re.gmatch("a1b2c3", "([a-z])(\\\\d)")') end
    if S.yieldable then
        try("thread", "ngx.thread.spawn(function() ngx.sleep(0.01) end)", thread_spawn, function() ngx_sleep(0.01) end)
        try("thread", "ngx.thread.spawn(function() end)", thread_spawn, function() end)
    end
    try("co", "coroutine.create(function() ngx.sleep(0) end)", co_create, function() ngx_sleep(0) end)
    -- objects made in earlier runs (other requests, phases, timers)
    for kind, l in pairs(S.phase == "sweep" and {} or M.stash) do
        for _, o in ipairs(l) do add(kind, o.v, o.repr .. " --[[from an earlier " .. o.phase .. " run]]") end
    end
    return objs
end

local function stash_objects(objs)
    for kind, l in pairs(objs) do
        local st = M.stash[kind] or {}
        M.stash[kind] = st
        for _, o in ipairs(l) do
            if not string.find(o.repr, "earlier", 1, true) and #st < 4 then
                st[#st + 1] = { v = o.v, repr = o.repr, phase = S.phase }
            end
        end
    end
end

local function build_targets(objs)
    local list, seen = {}, {}
    walk(list, seen, ngx, "ngx", 0, {})
    walk(list, seen, coroutine, "coroutine", 2, {})
    if type(rawget(_G, "ndk")) == "table" then walk(list, seen, ndk, "ndk", 1, {}) end
    for _, mod in ipairs(MODULES) do
        local ok, m = pcall(require, mod)
        if ok and type(m) == "table" then walk(list, seen, m, mod, 1, {}) end
    end
    -- property accessors of ngx, ngx.var, ngx.header, ngx.arg
    add_target(list, seen, "<ngx[k] = v>", function(k, v) ngx[k] = v end)
    add_target(list, seen, "<ngx.var[k]>", function(k) return ngx.var[k] end)
    add_target(list, seen, "<ngx.var[k] = v>", function(k, v) ngx.var[k] = v end)
    add_target(list, seen, "<ngx.header[k]>", function(k) return ngx.header[k] end)
    add_target(list, seen, "<ngx.header[k] = v>", function(k, v) ngx.header[k] = v end)
    add_target(list, seen, "<ngx.arg[k]>", function(k) return ngx.arg[k] end)
    add_target(list, seen, "<ngx.arg[k] = v>", function(k, v) ngx.arg[k] = v end)
    add_target(list, seen, "<ngx.status>", function() return ngx.status end)
    add_target(list, seen, "<ngx.ctx>", function() return ngx.ctx end)
    add_target(list, seen, "<ngx.headers_sent>", function() return ngx.headers_sent end)
    add_target(list, seen, "<ngx.is_subrequest>", function() return ngx.is_subrequest end)
    add_target(list, seen, "<ndk.set_var[k](...)>", function(k, ...) return ndk.set_var[k](...) end)
    for _, tbl in ipairs({ "var", "header", "arg" }) do
        local ok, mt = pcall(function() return getmetatable(ngx[tbl]) end)
        if ok and type(mt) == "table" then
            for _, mm in ipairs({ "__index", "__newindex", "__call" }) do
                add_target(list, seen, "ngx." .. tbl .. ".<mt>." .. mm, rawget(mt, mm))
            end
        end
    end
    -- methods of every object type, and the metatables of their inner slots
    local kinds = {}
    for kind in pairs(objs) do kinds[#kinds + 1] = kind end
    table_sort(kinds)
    for _, kind in ipairs(kinds) do
        for _, o in ipairs(objs[kind]) do
            local v = o.v
            if type(v) == "function" then
                add_target(list, seen, kind, v)
            end
            local mt = getmetatable(v)
            if type(mt) == "table" then
                local idx = rawget(mt, "__index")
                if type(idx) == "table" then
                    local names = {}
                    for k in next, idx do if type(k) == "string" then names[#names + 1] = k end end
                    table_sort(names)
                    for _, k in ipairs(names) do add_target(list, seen, kind .. ":" .. k, rawget(idx, k), kind) end
                end
                for _, mm in ipairs({ "__index", "__newindex", "__gc", "__tostring", "__call", "__len", "__eq" }) do
                    local f = rawget(mt, mm)
                    if type(f) == "function" then add_target(list, seen, kind .. ".<mt>." .. mm, f, kind) end
                end
            end
            if type(v) == "table" then
                local inner = rawget(v, 1)
                local imt = (type(inner) == "userdata") and getmetatable(inner)
                if type(imt) == "table" then
                    for _, mm in ipairs({ "__gc", "__index", "__tostring", "__call" }) do
                        local f = rawget(imt, mm)
                        if type(f) == "function" then add_target(list, seen, kind .. "[1].<mt>." .. mm, f, kind .. "[1]") end
                    end
                end
            end
        end
    end
    return list
end

----------------------------------------------------------------------------
-- One call
----------------------------------------------------------------------------
local LOOPBACK = { { "127.0.0.1", '"127.0.0.1"' }, { "unix:/nonexistent/fuzz.sock", '"unix:/nonexistent/fuzz.sock"' },
    { "unix:", '"unix:"' }, { "localhost", '"localhost"' }, { "127.0.0.1\0x", '"127.0.0.1\\0x"' }, { "::1", '"::1"' } }

local function proper_self(kind)
    local base = kind:gsub("%[1%]$", "")
    local l = S.objs[base]
    if not l or #l == 0 then return nil end
    local o = pick(l)
    if base ~= kind then
        local inner = type(o.v) == "table" and rawget(o.v, 1)
        return inner, "rawget(" .. o.repr .. ", 1)"
    end
    return o.v, o.repr
end

-- Keeps a call inside the rules of the run: loopback hosts only, no jump
-- outside terminal mode, no periodic timer faster than 0.1 s.
local function sanitize(tgt, args, reprs, n, terminal_ok)
    local sn = short(tgt.name)
    if CONNECTING[sn] then
        for i = 1, n do
            if type(args[i]) == "string" then
                local h = pick(LOOPBACK)
                args[i], reprs[i] = h[1], h[2]
            end
        end
    end
    if not terminal_ok and tgt.name == "ngx.req.set_uri" and n >= 2 then
        args[2], reprs[2] = false, "false"
    end
    if tgt.name == "ngx.timer.every" and type(args[1]) == "number" and not (args[1] >= 0.1) then
        -- a fast periodic timer would only load the worker for ever
        args[1], reprs[1] = 0.1, "0.1"
    end
end

-- Traces the call (before making it), then makes it in pcall.
local function do_call(tgt, args, reprs, n, note)
    S.calls = S.calls + 1
    S.last = tgt.name
    if M.trace then
        trace(string_format("phase=%s seed=%s call=%d%s %s(%s)", S.phase, S.seed, S.calls, note, tgt.name,
            table_concat(reprs, ", ", 1, #reprs)))
    end
    local ok = pcall(tgt.fn, unpack(args, 1, n))
    if not ok then S.errors = S.errors + 1 end
end

-- Argument shapes of the main functions (by short name), so that half of
-- their calls get past the first argument checks and reach deeper code:
-- each letter is a generator of TYPED below.
local HINTS = {
    match = "S R O C", find = "S R O C", gmatch = "S R O", sub = "S R F O", gsub = "S R F O", split = "S R O C N",
    say = "A A A", print = "A A A", log = "N A A",
    set = "K V E N", safe_set = "K V E N", add = "K V E N", safe_add = "K V E N", replace = "K V E N",
    get = "K", get_stale = "K", delete = "K", ttl = "K", llen = "K", lpop = "K", rpop = "K",
    incr = "K N N E", lpush = "K V", rpush = "K V", expire = "K E", flush_expired = "N", get_keys = "N",
    capture = "U P", capture_multi = "Q", connect = "H T P", send = "D", receive = "W", receiveany = "N",
    receiveuntil = "S P", settimeout = "N", settimeouts = "N N N", setoption = "S A", setkeepalive = "N N",
    sslhandshake = "A S B B", bind = "H", setpeername = "H T", at = "N F A A", every = "N F A",
    spawn = "F A A", wait = "Y", kill = "Y", sleep = "Z", escape_uri = "S N", unescape_uri = "S",
    encode_args = "G", decode_args = "S N", encode_base64 = "S B", decode_base64 = "S", md5 = "S",
    md5_bin = "S", sha1_bin = "S", hmac_sha1 = "S S", crc32_short = "S", crc32_long = "S",
    quote_sql_str = "S", set_header = "M A", clear_header = "M", set_uri = "U B", set_uri_args = "G",
    set_method = "N", set_body_data = "D", set_body_file = "S B", append_body = "D", init_body = "N",
    get_uri_args = "N B", get_post_args = "N", get_headers = "N B", new = "N", post = "N",
    set_current_peer = "H T", set_more_tries = "N", set_timeouts = "N N N", http_time = "N",
    cookie_time = "N", parse_http_time = "S", add_header = "M A", on_abort = "F", gmatch_iter = "A",
    until_iter = "N",
}
local URIS = { "/echo", "/static.txt", "/", "/nonexistent", "/echo?x=1&y", "/echo#f", "//", "/%00" }
local TYPED = {
    S = function() local s = pick(STRINGS) return s[1], s[2], "str" end,
    R = function() local s = pick({ "a", "(.)", "(?<n>a)|(b)", "[", "\\d+", "^", "(a)(b)?(c)*", "" })
        return s, string_format("%q", s), "re" end,
    O = function() local s = pick({ "", "jo", "i", "x", "s", "m", "u", "U", "d", "a", "D", "J", "o", "j", "ijmsxuUdDaoJ", "@" })
        return s, string_format("%q", s), "reopt" end,
    C = function() if chance(0.5) then return { pos = rand(8) - 2 }, "{pos = ...}", "ctx" end return gen_value(1) end,
    F = function() if chance(0.7) then return callbacks() end return gen_value(1) end,
    N = function() local x = pick(NUMBERS) return x[1], x[2], "num" end,
    Z = function() local x = pick({ 0, 0.001, 0.01, -1, 0 / 0 }) return x, tostring(x), "num" end,
    K = function() local s = pick({ "k", "", "list", "key", "a\0b", "k2" }) return s, string_format("%q", s), "key" end,
    V = function() if chance(0.7) then return primitive() end return gen_value(1) end,
    E = function() local x = pick({ 0, 0.001, 1, -1, 1e9, 0 / 0 }) return x, tostring(x), "num" end,
    U = function() local s = pick(URIS) return s, string_format("%q", s), "uri" end,
    P = function() return options_table(1) end,
    Q = function()
        local u = pick(URIS)
        local o, orp = options_table(1)
        return { { u, o }, { "/echo" } }, string_format("{{%q, %s}, {'/echo'}}", u, orp), "reqs"
    end,
    H = function() local h = pick(LOOPBACK) return h[1], h[2], "host" end,
    T = function() local x = pick({ S.port or 80, 0, 65535, 65536, -1, 1 }) return x, tostring(x), "port" end,
    D = function()
        if chance(0.3) then return { "a", { "b", 1 } }, '{"a", {"b", 1}}', "tbl" end
        local s = pick(STRINGS) return s[1], s[2], "str"
    end,
    W = function()
        local w = pick({ "*l", "*a", 1, 0, -1, 1e9, "*x", 10 })
        return w, type(w) == "string" and string_format("%q", w) or tostring(w), "pattern"
    end,
    B = function() local b = chance(0.5) return b, tostring(b), "bool" end,
    M = function() local s = pick({ "X-Fuzz", "Content-Type", "Host", "Cookie", "Set-Cookie", "Location",
            "Content-Length", "Transfer-Encoding", "Cache-Control", "", "x\r\ny" })
        return s, string_format("%q", s), "hname" end,
    G = function() return { a = 1, b = { "x", "y" }, c = true, [""] = "e" }, "{a = 1, b = {'x', 'y'}, c = true, [''] = 'e'}", "args" end,
    Y = function()
        local l = S.objs.thread or S.objs.co
        if l then local o = pick(l) return o.v, o.repr, "thread" end
        return gen_value(1)
    end,
    A = function() return gen_value(1) end,
}

local function one_call(tgt, terminal_ok)
    local n = rand(7) - 1
    local args, reprs = {}, {}
    local first = 1
    if tgt.self_kind and (chance(0.75) or S.skip["wrong_self"]) then
        local v, r = proper_self(tgt.self_kind)
        if v ~= nil then
            args[1], reprs[1] = v, r
            first = 2
            if n < 1 then n = 1 end
        end
    end
    local hint = HINTS[short(tgt.name)]
    if hint and chance(0.5) then
        local i = first
        for letter in hint:gmatch("%S") do
            local v, r, k = TYPED[letter]()
            k = k or "?"
            if S.skip["kind:" .. k] or S.skip["kind:" .. (k:match("^[^:]+") or k)] then v, r = primitive() end
            args[i], reprs[i] = v, r or "nil"
            i = i + 1
        end
        n = i - 1
        if chance(0.3) then n = first - 1 + rand(n - first + 1) end -- fewer
    else
        for i = first, n do
            local v, r = gen_value(0)
            args[i], reprs[i] = v, r or "nil"
        end
    end
    if tgt.name:sub(1, 1) == "<" and tgt.name:find("calls api", 1, true) then
        S.cb_target = pick(S.targets)
        if S.skip["inner_yield"] then
            -- set aside the known class "yield inside a C callback"
            for _ = 1, 20 do
                if not MAY_YIELD[short(S.cb_target.name)] then break end
                S.cb_target = pick(S.targets)
            end
        end
        local sk = S.cb_target.self_kind
        if sk and (chance(0.75) or S.skip["wrong_self"]) then
            local v, r = proper_self(sk)
            if v ~= nil then
                args[1], reprs[1] = v, r
                if n < 1 then n = 1 end
            end
        end
        reprs[#reprs + 1] = "--[[inner api: " .. S.cb_target.name .. "]]"
        sanitize(S.cb_target, args, reprs, n, terminal_ok)
    end
    sanitize(tgt, args, reprs, n, terminal_ok)
    do_call(tgt, args, reprs, n, "")
end

----------------------------------------------------------------------------
-- Runs
----------------------------------------------------------------------------
local YIELDABLE = { content = true, rewrite = true, access = true, timer = true, server_rewrite = true,
    terminal = true, sweep = true }
local REQUEST = { content = true, rewrite = true, access = true, set = true, header_filter = true,
    body_filter = true, log = true, server_rewrite = true, terminal = true, balancer = true, sweep = true }

-- Skip entries (one per line, # comments): a target name, "kind:NAME" for a
-- generated value kind (or family), "wrong_self", "inner_yield", or
-- "only:PREFIX" to fuzz only the targets whose name starts with PREFIX.  Read from
-- <prefix>logs/fuzz-skip.txt (scripts/fuzz-api.sh) and from M.skip_file.
local function read_skip()
    local skip = {}
    for _, path in ipairs({ PREFIX .. "logs/fuzz-skip.txt", M.skip_file or false }) do
        local f = path and io_open(path, "r")
        if f then
            for line in f:lines() do
                line = line:gsub("%s+$", "")
                if line ~= "" and line:sub(1, 1) ~= "#" then skip[line] = true end
            end
            f:close()
        end
    end
    return skip
end

local function new_state(phase, opts)
    local st = {
        phase = phase, seed = tonumber(opts.seed) or 1, max_calls = tonumber(opts.calls) or 2000,
        budget = tonumber(opts.budget) or 1, calls = 0, errors = 0, hangs = 0,
        yieldable = YIELDABLE[phase] or false, request = REQUEST[phase] or false,
        port = tonumber(opts.port), skip = read_skip(), call_timeout = tonumber(opts.call_timeout) or 0.25,
        mode = opts.mode or "main",
    }
    for entry in pairs(st.skip) do
        local prefix = entry:match("^only:(.+)$")
        if prefix then
            st.only = st.only or {}
            st.only[prefix] = true
        end
    end
    return st
end

local function query_opts()
    local o = {}
    pcall(function()
        local args = ngx.req.get_uri_args()
        for _, k in ipairs({ "seed", "calls", "budget", "mode", "call_timeout", "class", "start" }) do
            if type(args[k]) == "string" then o[k] = args[k] end
        end
        o.port = ngx.var.server_port
    end)
    return o
end

-- Skip entry "debug_hook": JIT off and a count hook that logs a Lua
-- traceback when one call has been running for more than 5 s (to find
-- where a busy worker spins).
local function install_debug_hook()
    if M.hooked then return end
    M.hooked = true
    pcall(function() require("jit").off() end)
    local last_calls, since = -1, os.time()
    debug.sethook(function()
        if not S then return end
        if S.calls ~= last_calls then
            last_calls, since = S.calls, os.time()
        elseif os.time() - since > 5 then
            since = os.time() + 3600
            pcall(ngx_log, ngx.ALERT, "api_fuzz: call ", S.calls, " (", S.last, ") still running: ",
                debug.traceback("", 2))
        end
    end, "", 100000)
end

local function setup(phase, opts)
    S = new_state(phase, opts)
    if S.skip["debug_hook"] then install_debug_hook() end
    if opts.vary_by_pid then
        -- a respawned worker must not repeat the run that killed its
        -- predecessor; the seed actually used is in the trace and the log
        S.seed = S.seed * 100000 + self_pid() % 100000
    end
    seed_rng(S.seed * 7919 + #phase)
    if M.trace then trace_open() end
    S.objs = make_objects()
    S.obj_kinds = {}
    for k in pairs(S.objs) do S.obj_kinds[#S.obj_kinds + 1] = k end
    table_sort(S.obj_kinds)
    S.targets = build_targets(S.objs)
    local wrappers = {}
    builtin_wrappers(wrappers, {})
    S.wrappers = wrappers
    S.terminals = {}
    for _, t in ipairs(S.targets) do
        if TERMINAL[t.name] then S.terminals[#S.terminals + 1] = t end
    end
    local plain = {}
    for _, t in ipairs(S.targets) do
        -- set_uri stays, with jump forced off by sanitize()
        if not TERMINAL[t.name] or t.name == "ngx.req.set_uri" then plain[#plain + 1] = t end
    end
    S.targets = plain
    stash_objects(S.objs)
end

local function next_target()
    if #S.wrappers > 0 and chance(0.04) then return pick(S.wrappers) end
    return pick(S.targets)
end

-- Wall-clock seconds, also where the API is refused (init).
local function wall()
    if pcall(ngx_update_time) then
        local ok, t = pcall(ngx_now)
        if ok then return t end
    end
    return os.time()
end

-- Plain loop for phases that cannot yield: bounded by calls, CPU time and
-- wall-clock time (on a loaded machine the second can be far longer).
local function loop_direct(budget)
    local cpu_end, wall_end = os_clock() + budget, wall() + budget * 2
    while S.calls < S.max_calls do
        if S.calls % 16 == 0 and (os_clock() > cpu_end or wall() > wall_end) then break end
        one_call(next_target())
    end
end

-- Yieldable phases: the loop runs in a light thread, and the entry thread
-- kills and replaces it when one call waits longer than call_timeout (a
-- sleep of math.huge is legitimate; only the worker's survival matters).
local function random_step()
    one_call(next_target())
    return true
end

local function loop_supervised(deadline, step)
    step = step or random_step
    local progress = { calls = -1, at = 0 }
    local done = false
    local function body()
        while S.calls < S.max_calls and ngx_now() < deadline do
            progress.calls, progress.at = S.calls, ngx_now()
            if not step() then break end
        end
        done = true
    end
    while not done and S.calls < S.max_calls and ngx_now() < deadline do
        local ok, th = pcall(thread_spawn, body)
        if not ok or not th then break end
        while not done do
            ngx_sleep(0.02)
            ngx_update_time()
            if not done and ngx_now() - progress.at > S.call_timeout and progress.calls == S.calls - 1 then
                -- ngx.thread.kill reports a refusal in its results (nil and
                -- "pending subrequests", ...), not by raising: only a thread
                -- that really went counts, else the next round would run a
                -- second body beside the one still waiting.
                local ok, killed, why = pcall(thread_kill, th)
                if ok and killed == 1 then
                    S.hangs = S.hangs + 1
                    S.hang_names = S.hang_names or {}
                    S.hang_names[S.last] = (S.hang_names[S.last] or 0) + 1
                    break
                end
                -- it ended on its own (a call ended the thread): next round
                if ok and (why == "already terminated" or why == "already waited or killed") then break end
            end
            if ngx_now() > deadline + 5 then break end -- a call that cannot be killed
        end
        if done then pcall(thread_wait, th) end
    end
end

local function record(started)
    local st = M.stats[S.phase] or { runs = 0, calls = 0, errors = 0, hangs = 0 }
    M.stats[S.phase] = st
    st.runs = st.runs + 1
    st.calls = st.calls + S.calls
    st.errors = st.errors + S.errors
    st.hangs = st.hangs + S.hangs
    local hung = {}
    for name, n in pairs(S.hang_names or {}) do hung[#hung + 1] = name .. "x" .. n end
    table_sort(hung)
    local line = string_format("api_fuzz: phase=%s seed=%s calls=%d errors=%d hangs=%d targets=%d objects=%s cpu=%.2fs%s",
        S.phase, S.seed, S.calls, S.errors, S.hangs, #S.targets, table_concat(S.obj_kinds, ","), os_clock() - started,
        #hung > 0 and " killed after waiting: " .. table_concat(hung, " ") or "")
    pcall(ngx_log, NOTICE, line)
    return line
end

-- One bounded run in the current phase.
function M.run_phase(phase, opts)
    opts = opts or query_opts()
    local started = os_clock()
    setup(phase, opts)
    if S.yieldable then
        ngx_update_time()
        loop_supervised(ngx_now() + S.budget)
    else
        loop_direct(S.budget)
    end
    return record(started)
end

-- Terminal mode: a few ordinary calls, then one call of a function that
-- ends the request or handler by design, with generated arguments.
function M.run_terminal(opts)
    opts = opts or query_opts()
    local started = os_clock()
    setup("terminal", opts)
    M.stats.terminal = M.stats.terminal or { runs = 0, calls = 0, errors = 0, hangs = 0 }
    local st = M.stats.terminal
    st.runs, st.calls = st.runs + 1, st.calls + 1
    pcall(ngx_log, NOTICE, string_format("api_fuzz: phase=terminal seed=%s started", S.seed))
    for _ = 1, rand(20) do one_call(next_target()) end
    if #S.terminals > 0 then one_call(pick(S.terminals), true) end
    return record(started)
end

-- Sweep mode: every target, in name order, gets one value of a crash class
-- at each argument position 1..4 (after a proper self for methods), the
-- other positions filled with plain strings or numbers.  Unlike the random
-- runs this enumerates which functions a class reaches; the trace records
-- "sweep=<target index>" so a crash says where to resume (start=index+1).
local SWEEP = {
    raise_index = function() return special_table("__index") end,
    raise_newindex = function() return special_table("__newindex") end,
    raise_tostring = function() return special_table("__tostring") end,
    raise_len = function() return special_table("__len") end,
    raise_eq = function() return special_table("__eq") end,
    yield_index = function() return special_table("__index", true) end,
    yield_tostring = function() return special_table("__tostring", true) end,
    self_ref = function()
        local t = {}
        t[1], t.a = t, t
        return t, "(function() local t = {} t[1] = t t.a = t return t end)()"
    end,
    deep = function()
        M.deep = M.deep or deep_table(100000)
        return M.deep, "<nested table, depth 100000>"
    end,
    yield_cb = function() return yielder("y"), 'function() ngx.sleep(0) return "y" end' end,
    raise_cb = function() return raiser("cb"), 'function() error("x") end' end,
    co_yield_cb = function() return function(...) coroutine.yield(...) end, "function(...) coroutine.yield(...) end" end,
    huge_str = function()
        M.huge = M.huge or string_rep("B", HUGE_LEN)
        return M.huge, 'string.rep("B", 2^20)'
    end,
    nan = function() return 0 / 0, "0/0" end,
    neg_huge = function() return -math.huge, "-math.huge" end,
    null = function() return ngx.null, "ngx.null" end,
    udata = function() return io.stdout, "io.stdout" end,
}
local FILLERS = { { "/echo", '"/echo"' }, { "", '""' }, { 1, "1" } }

function M.run_sweep(opts)
    opts = opts or query_opts()
    local started = os_clock()
    setup("sweep", opts)
    local class = opts.class or "raise_index"
    local targets = {}
    for _, t in ipairs(S.targets) do targets[#targets + 1] = t end
    for _, t in ipairs(S.wrappers) do targets[#targets + 1] = t end
    table_sort(targets, function(a, b) return a.name < b.name end)
    local kinds = S.obj_kinds
    -- the work list: (target index, self, position, filler)
    local idx, pos, fill, selfi = tonumber(opts.start) or 1, 0, 1, 1
    local function step()
        local tgt = targets[idx]
        if not tgt then return false end
        local selves = { false }
        if tgt.self_kind then
            if class == "wrong_self" then
                selves = {}
                for _, k in ipairs(kinds) do
                    if k ~= tgt.self_kind then selves[#selves + 1] = S.objs[k][1] end
                end
            else
                local v, r = proper_self(tgt.self_kind)
                selves = { v ~= nil and { v = v, repr = r } or false }
            end
        end
        local positions = (class == "wrong_self" or class:sub(1, 3) == "gc_") and 1 or 4
        pos = pos + 1
        if pos > positions then pos, fill = 1, fill + 1 end
        if fill > #FILLERS then fill, selfi = 1, selfi + 1 end
        if selfi > #selves then
            idx, pos, fill, selfi = idx + 1, 0, 1, 1
            return true
        end
        local args, reprs, first = {}, {}, 1
        local me = selves[selfi]
        if me then
            args[1], reprs[1], first = me.v, me.repr, 2
        end
        local n = first - 1 + (class == "wrong_self" and 2 or 4)
        for i = first, n do args[i], reprs[i] = FILLERS[fill][1], FILLERS[fill][2] end
        if class:sub(1, 3) == "gc_" then
            -- plain arguments; the class is in the call wrapper below
            n = first - 1 + 2
        elseif class ~= "wrong_self" then
            local make = SWEEP[class]
            if not make then return false end
            local p = first - 1 + pos
            args[p], reprs[p] = make()
            n = p
        end
        if tgt.name:find("calls api", 1, true) then
            -- wrappers: the inner API is the next target in name order
            local j = idx % #targets + 1
            while targets[j].name:sub(1, 1) == "<" do j = j % #targets + 1 end
            S.cb_target = targets[j]
            reprs[#reprs + 1] = "--[[inner api: " .. S.cb_target.name .. "]]"
        end
        sanitize(tgt, args, reprs, n, false)
        local call = tgt
        if class == "gc_raise" or class == "gc_yield" then
            -- garbage whose finalizers raise (or yield), so that a GC step
            -- inside the function runs them there
            local fin = class == "gc_raise" and raiser("__gc") or yielder()
            local f = tgt.fn
            call = { name = tgt.name, fn = function(...)
                for _ = 1, 20 do
                    for _ = 1, 100 do
                        local p = newproxy(true)
                        getmetatable(p).__gc = fin
                    end
                    pcall(f, ...)
                end
                -- finalize what is left here, in Lua, so that only a GC
                -- step inside f can run a finalizer in a Rust frame
                for _ = 1, 200 do
                    if pcall(collectgarbage) then break end
                end
            end }
            reprs[#reprs + 1] = "--[[20 x (100 newproxy with a " .. class .. " finalizer, then the call)]]"
        end
        do_call(call, args, reprs, n, string_format(" sweep=%d class=%s", idx, class))
        return true
    end
    ngx_update_time()
    S.max_calls = 1e9
    loop_supervised(ngx_now() + S.budget, step)
    record(started)
    -- in error.log too: the sweep may have called ngx.eof, after which
    -- ngx.say raises
    local next_line = string_format("next=%s of %d", idx <= #targets and idx or "done", #targets)
    pcall(ngx_log, NOTICE, "api_fuzz sweep: class=", class, " ", next_line)
    pcall(ngx.say, next_line)
end

-- Timers: a run in an ngx.timer.at callback.  The run state is one per
-- worker, so the caller waits for the timer's run to end before another
-- run may start (wait_timers).
function M.start_timer(opts)
    M.pending_timers = M.pending_timers + 1
    local ok, err = ngx.timer.at(0, function(premature)
        if not premature then
            local ok, err = pcall(M.run_phase, "timer", opts)
            if not ok then ngx_log(ngx.ERR, "api_fuzz: timer run failed: ", err) end
        end
        M.pending_timers = M.pending_timers - 1
    end)
    if not ok then
        M.pending_timers = M.pending_timers - 1
        ngx_log(ngx.ERR, "api_fuzz: cannot create the timer: ", err)
    end
end

-- Waits (at most `limit` seconds) for the timer runs to end.
function M.wait_timers(limit)
    local waited = 0
    while M.pending_timers > 0 and waited < limit do
        ngx_sleep(0.05)
        waited = waited + 0.05
    end
    return M.pending_timers == 0
end

-- Totals per phase; the worker's pid compared with the first fuzzed one
-- (kept in the fuzz_guard dict, which the fuzzer never touches).
function M.report()
    M.wait_timers(10)
    local guard = shared.fuzz_guard
    local pid = worker_pid()
    local first = guard and guard:get("pid")
    local phases, total = {}, 0
    for phase, st in pairs(M.stats) do
        phases[#phases + 1] = string_format("%s=%d", phase, st.calls)
        total = total + st.calls
    end
    table_sort(phases)
    local line = string_format("api_fuzz report: pid %s (first fuzzed pid %s): %s; calls total=%d %s; timers pending=%d",
        pid, tostring(first), first == pid and "pid unchanged" or "PID CHANGED", total, table_concat(phases, " "),
        M.pending_timers)
    ngx_log(NOTICE, line)
    ngx.say(line)
end

-- Remembers this worker's pid the first time a request-phase run starts.
function M.guard_pid()
    local guard = shared.fuzz_guard
    if guard then guard:add("pid", worker_pid()) end
end

M.trace = true
return M
