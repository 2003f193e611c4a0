use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: nested coroutine.wrap iterators that sleep (the streaming-reader pattern)
--- config
    location /t {
        content_by_lua_block {
            local function chunks(n)
                return coroutine.wrap(function()
                    for i = 1, n do
                        ngx.sleep(0.001)
                        coroutine.yield("c" .. i)
                    end
                end)
            end
            local outer = coroutine.wrap(function()
                for c in chunks(3) do
                    local inner = coroutine.wrap(function() ngx.sleep(0.001) coroutine.yield(c .. "!") end)
                    coroutine.yield(inner())
                end
            end)
            local got = {}
            for v in outer do got[#got + 1] = v end
            ngx.say(table.concat(got, " "))
        }
    }
--- request
GET /t
--- response_body
c1! c2! c3!
--- no_error_log
[error]



=== TEST 2: resume/yield values, status and running keep plain Lua semantics
--- config
    location /t {
        content_by_lua_block {
            local co
            co = coroutine.create(function(a, b)
                ngx.say("status inside: ", coroutine.status(co), " ", coroutine.running() == co)
                local c = coroutine.yield(a + b)
                ngx.sleep(0.001)
                return c * 2
            end)
            ngx.say(coroutine.resume(co, 1, 2))
            ngx.say(coroutine.status(co))
            ngx.say(coroutine.resume(co, 10))
            ngx.say(coroutine.status(co))
            ngx.say(coroutine.resume(co))
        }
    }
--- request
GET /t
--- response_body
status inside: running true
true3
suspended
true20
dead
falsecannot resume dead coroutine
--- no_error_log
[error]



=== TEST 3: errors inside coroutines
--- config
    location /t {
        content_by_lua_block {
            local co = coroutine.create(function() ngx.sleep(0.001) error("inner failure") end)
            local ok, err = coroutine.resume(co)
            ngx.say(ok, " ", err:match("inner failure$"))
            local f = coroutine.wrap(function() error({code = 7}) end)
            local ok2, e = pcall(f)
            ngx.say(ok2, " ", type(e), " ", e.code)
            local g = coroutine.wrap(function() error("wrapped failure") end)
            local ok3, e3 = pcall(g)
            ngx.say(ok3, " ", select(2, e3:gsub(":%d+:", "")) )
        }
    }
--- request
GET /t
--- response_body
false inner failure
false table 7
false 1
--- no_error_log
[error]



=== TEST 4: a plain yield in the entry thread gives other work a turn and resumes
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(0, function() ngx.log(ngx.WARN, "timer ran") end)
            coroutine.yield()
            ngx.say("resumed")
        }
    }
--- request
GET /t
--- response_body
resumed
--- error_log
timer ran



=== TEST 5: coroutines in init_by_lua behave as in plain Lua
--- http_config
    init_by_lua_block {
        local co = coroutine.wrap(function() coroutine.yield(1) coroutine.yield(2) end)
        init_values = co() .. "," .. co()
    }
--- config
    location /t {
        content_by_lua_block { ngx.say(init_values) }
    }
--- request
GET /t
--- response_body
1,2



=== TEST 6: unbounded coroutine nesting fails with "C stack overflow" instead of overflowing the worker's stack
--- config
    location /t {
        content_by_lua_block {
            local depth = 0
            local function dive() depth = depth + 1 return coroutine.wrap(dive)() end
            ngx.say(pcall(dive))
            ngx.say(depth > 100)
            local function dive2() return coroutine.resume(coroutine.create(dive2)) end
            local results = {dive2()}
            ngx.say(results[#results])
            -- the counter came back down: ordinary coroutines still work
            local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
            ngx.say(co(1), " ", co(5))
            ngx.say(pcall(coroutine.resume, 42))
        }
    }
--- request
GET /t
--- response_body
falseC stack overflow
true
C stack overflow
2 10
falsebad argument #1 to 'resume' (coroutine expected)
--- no_error_log
[error]



=== TEST 7: resuming a coroutine that cannot be resumed names its status, and a dead wrapped coroutine answers instead of raising
--- config
    location /t {
        content_by_lua_block {
            local outer
            local inner = coroutine.create(function()
                ngx.say("inner: ", coroutine.resume(outer))
            end)
            outer = coroutine.create(function()
                coroutine.resume(inner)
            end)
            coroutine.resume(outer)
            ngx.say("dead: ", coroutine.resume(inner))
            local w = coroutine.wrap(function() return "once" end)
            ngx.say("first: ", w())
            ngx.say("again: ", w())
        }
    }
--- request
GET /t
--- response_body
inner: falsecannot resume normal coroutine
dead: falsecannot resume dead coroutine
first: once
again: falsecannot resume dead coroutine
--- no_error_log
[error]



=== TEST 8: an error through nested coroutine.wrap calls shows every wrapped coroutine in the traceback, innermost first
--- config
    location /t {
        content_by_lua_block {
            local deepest = coroutine.wrap(function()
                error("broken at the bottom")
            end)
            local middle = coroutine.wrap(function()
                deepest()
            end)
            middle()
            ngx.say("not reached")
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
[
qr/lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: broken at the bottom$/,
qr/^coroutine 0:$/,
qr/^\tcontent_by_lua\(nginx\.conf:\d+\):3: in function <content_by_lua\(nginx\.conf:\d+\):2>$/,
qr/^coroutine 1:$/,
qr/^\t\[C\]: in function 'deepest'$/,
qr/^coroutine 2:$/,
qr/^\t\[C\]: in function 'middle'$/,
]
--- no_error_log
coroutine_wrappers



=== TEST 9: in the output filters coroutine.wrap keeps LuaJIT's behaviour: the error gains the caller's position
--- config
    location /t {
        header_filter_by_lua_block {
            local w = coroutine.wrap(function() error("filter trouble") end)
            w()
        }
        return 200 "body\n";
    }
--- request
GET /t
--- ignore_response
--- error_log eval
qr/failed to run header_filter_by_lua\*: header_filter_by_lua\(nginx\.conf:\d+\):3: header_filter_by_lua\(nginx\.conf:\d+\):2: filter trouble/



=== TEST 10: a light thread waiting inside a user coroutine it resumed is "normal", that coroutine "running"
--- config
    location /t {
        content_by_lua_block {
            local thread_co, inner
            ngx.thread.spawn(function()
                thread_co = coroutine.running()
                inner = coroutine.create(function() ngx.sleep(0.02) end)
                coroutine.resume(inner)
            end)
            ngx.say(coroutine.status(thread_co), " ", coroutine.status(inner))
            ngx.sleep(0.05)
            ngx.say(coroutine.status(inner))
        }
    }
--- request
GET /t
--- response_body
normal running
dead



=== TEST 11: the coroutine table has lua-nginx-module's shape: LuaJIT's functions as _name, ours also as __name, no isyieldable
--- config
    location /t {
        content_by_lua_block {
            local keys = {}
            for k in pairs(coroutine) do keys[#keys + 1] = k end
            table.sort(keys)
            ngx.say(table.concat(keys, " "))
            keys = {}
            for k in pairs(ngx.thread) do keys[#keys + 1] = k end
            table.sort(keys)
            ngx.say(table.concat(keys, " "))
            ngx.say(coroutine.__resume == coroutine.resume, " ", coroutine._resume == coroutine.resume)
            -- the raw yield of lua-resty-core's modules returns to the resumer
            local co = coroutine.create(function(a)
                local b = coroutine._yield(a + 1)
                return b * 2
            end)
            ngx.say(select(2, coroutine.resume(co, 1)), " ", select(2, coroutine.resume(co, 5)))
            ngx.say(coroutine._status(co), " ", package.loaded.coroutine == coroutine)
        }
    }
--- request
GET /t
--- response_body
__create __resume __status __wrap __yield _create _resume _status _wrap _yield create resume running status wrap yield
kill spawn wait
true false
2 10
dead true
--- no_error_log
[error]



=== TEST 12: thread.exdata (and the global exdata its loading defines) gives the running request, in every coroutine of it and in the filters
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local exdata = require "thread.exdata"
            local function addr(p) return tonumber(ffi.cast("uintptr_t", p)) end
            local main = addr(exdata())
            ngx.ctx.main = main
            local in_co = coroutine.wrap(function() return addr(exdata()) end)()
            local t = ngx.thread.spawn(function() ngx.sleep(0) return addr(exdata()) end)
            local _, in_thread = ngx.thread.wait(t)
            ngx.say(main ~= 0, " ", in_co == main, " ", in_thread == main, " ", rawget(_G, "exdata") == exdata)
        }
        header_filter_by_lua_block {
            local ffi = require "ffi"
            local p = tonumber(ffi.cast("uintptr_t", require("thread.exdata")()))
            ngx.header["X-Same"] = tostring(p == ngx.ctx.main)
        }
    }
--- request
GET /t
--- response_headers
X-Same: true
--- response_body
true true true true
--- no_error_log
[error]
