use Test::Nginx::Socket::Lua;

# The hot APIs that are Lua over LuaJIT's FFI must stay inside compiled
# traces when called in a loop. Two things take a loop out of machine code
# because of an API: a trace abort for something the compiler does not
# support ("NYI", e.g. a light userdata passed as a C pointer), and a trace
# that ends at a classic Lua C function (what a hot path turned back into
# a C function does: LuaJIT 2.1 does not abort there, it ends the trace,
# stitching or returning to the interpreter for the call).
#
# check_traces(label, f) runs f with the trace events watched and says
# "<label>: compiled" when at least one trace was made and none of them
# aborted on NYI or ended at a C function; otherwise what happened and
# where.

our $HttpConfig = <<'_EOC_';
    lua_shared_dict dogs 1m;
    init_by_lua_block {
        local jutil = require "jit.util"
        local vmdef = require "jit.vmdef"

        local function where(func, pc)
            local fi = jutil.funcinfo(func, pc)
            if fi.addr then
                return string.format("C function %#x", fi.addr)
            end
            if fi.ffid then
                return "fast function " .. (vmdef.ffnames[fi.ffid] or fi.ffid)
            end
            return string.format("%s:%s", fi.source, fi.currentline or fi.linedefined)
        end

        function check_traces(label, f)
            local problems, traces = {}, 0
            local function on_trace(what, tr, func, pc, otr, oex)
                if what == "abort" then
                    local msg = vmdef.traceerr[otr] or tostring(otr)
                    if type(oex) == "function" then
                        oex = where(oex, 0)
                    end
                    -- Loop unrolling and similar limits are the compiler's
                    -- own business; NYI aborts are an API's.
                    if msg:find("NYI", 1, true) then
                        problems[#problems + 1] = "abort: " .. msg:format(tostring(oex))
                            .. " at " .. where(func, pc)
                    end
                elseif what == "stop" then
                    traces = traces + 1
                    -- A trace that ends at a C function: stitched around
                    -- it, or returning to the interpreter for the call.
                    local info = jutil.traceinfo(tr)
                    if info.linktype == "stitch" or jutil.funcinfo(func).addr then
                        problems[#problems + 1] = info.linktype .. ": trace " .. tr
                            .. " ends calling " .. where(func, pc)
                    end
                end
            end
            jit.flush()
            jit.attach(on_trace, "trace")
            local ok, err = pcall(f)
            jit.attach(on_trace)
            if not ok then
                return label .. ": error " .. tostring(err)
            end
            if traces == 0 then
                return label .. ": no trace compiled"
            end
            if #problems > 0 then
                return label .. ": " .. table.concat(problems, "; ")
            end
            return label .. ": compiled"
        end
    }
_EOC_

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: shared dict get/set/incr and the other hot methods stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.dogs
            local sum = 0
            ngx.say(check_traces("set", function()
                for i = 1, 400 do d:set("k" .. (i % 16), i) end
            end))
            ngx.say(check_traces("get", function()
                for i = 1, 400 do sum = sum + d:get("k" .. (i % 16)) end
            end))
            ngx.say(check_traces("incr", function()
                for i = 1, 400 do d:incr("hits", 1, 0) end
            end))
            ngx.say(check_traces("add, replace, safe_set, delete", function()
                for i = 1, 400 do
                    local k = "a" .. (i % 4)
                    d:add(k, "v")
                    d:replace(k, "w")
                    d:safe_set("s" .. (i % 8), "value")
                    d:delete(k)
                end
            end))
            ngx.say(check_traces("get_stale", function()
                for i = 1, 400 do local v, flags, stale = d:get_stale("k" .. (i % 16)) end
            end))
            ngx.say(sum, " ", d:get("hits"))
        }
    }
--- request
GET /t
--- response_body
set: compiled
get: compiled
incr: compiled
add, replace, safe_set, delete: compiled
get_stale: compiled
157000 400
--- no_error_log
[error]



=== TEST 2: cosocket receive (lines, sizes) and send of strings stay compiled
--- http_config eval: $::HttpConfig
--- config
    location = /lines {
        content_by_lua_block {
            ngx.print(string.rep("a line of text\r\n", 500), string.rep("x", 4000))
        }
    }
    location = /sink {
        content_by_lua_block {
            local n = 0
            for k in pairs(ngx.req.get_headers(1000)) do n = n + 1 end
            ngx.say("headers ", n)
        }
    }
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /lines HTTP/1.0\r\nHost: x\r\n\r\n"))
            -- The status line waits for the response; the rest is there
            -- by the time the loops run (one write on loopback).
            assert(sock:receive("*l"))
            repeat local l = assert(sock:receive("*l")) until l == ""
            ngx.sleep(0.05)
            local n = 0
            ngx.say(check_traces("receive *l", function()
                for i = 1, 400 do
                    n = n + #assert(sock:receive("*l"))
                end
            end))
            ngx.say(check_traces("receive size", function()
                for i = 1, 400 do
                    n = n + #assert(sock:receive(10))
                end
            end))
            sock:close()
            ngx.say(n)

            sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /sink HTTP/1.0\r\nHost: x\r\n"))
            ngx.say(check_traces("send", function()
                for i = 1, 400 do
                    assert(sock:send("X-Pad-" .. i .. ": v\r\n"))
                end
            end))
            assert(sock:send("\r\n"))
            repeat local l = assert(sock:receive("*l")) until l == ""
            ngx.say(sock:receive("*l"))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
receive *l: compiled
receive size: compiled
9600
send: compiled
headers 401
--- no_error_log
[error]
