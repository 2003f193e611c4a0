use Test::Nginx::Socket::Lua;

# Inputs that once took a worker down. Each block checks the documented
# outcome (an error or a return value); the runner also fails any block
# whose error.log shows a worker that exited on a signal.

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: option tables whose __index raises: the metamethod's error reaches pcall
--- http_config
    lua_shared_dict d 1m;
--- config
    location /t {
        content_by_lua_block {
            local bad = setmetatable({}, {__index = function(t, k) error("no field " .. k, 0) end})
            local sock = ngx.socket.tcp()
            local calls = {
                {"capture", function() return ngx.location.capture("/x", bad) end},
                {"re.match", function() return ngx.re.match("abc", "b", "jo", bad) end},
                {"re.find", function() return ngx.re.find("abc", "b", "jo", bad) end},
                {"re.split", function() return require("ngx.re").split("a,b", ",", nil, bad) end},
                {"socket.connect", function() return ngx.socket.connect("127.0.0.1", 1, bad) end},
                {"tcpsock:connect", function() return sock:connect("127.0.0.1", 1, bad) end},
                {"receiveuntil", function() return sock:receiveuntil("--", bad) end},
            }
            for _, c in ipairs(calls) do
                local ok, err = pcall(c[2])
                ngx.say(c[1], ": ", ok, " ", err)
            end
        }
    }
    location /x { return 200; }
--- request
GET /t
--- response_body
capture: false no field args
re.match: false no field pos
re.find: false no field pos
re.split: false no field pos
socket.connect: false no field pool_size
tcpsock:connect: false no field pool_size
receiveuntil: false no field inclusive
--- no_error_log
[error]



=== TEST 2: a non-string error value from a metamethod is raised unchanged
--- config
    location /t {
        content_by_lua_block {
            local e = {code = 42}
            local bad = setmetatable({}, {__index = function() error(e) end})
            local ok, err = pcall(ngx.re.match, "abc", "b", "", bad)
            ngx.say(ok, " ", err == e, " ", type(err) == "table" and err.code)
            -- __newindex on ctx.pos runs too, as in lua-nginx-module
            local seen
            local ctx = setmetatable({}, {__newindex = function(t, k, v) seen = k .. "=" .. v end})
            ngx.re.find("abc", "c", "", ctx)
            ngx.say(seen)
        }
    }
--- request
GET /t
--- response_body
false true 42
pos=4
--- no_error_log
[error]



=== TEST 3: a table that contains itself is refused with "stack overflow"; deep nesting still prints
--- config
    location /t {
        content_by_lua_block {
            local t = {} t[1] = t
            ngx.say(select(2, pcall(ngx.say, t)))
            ngx.say(select(2, pcall(ngx.print, {"a", t})))
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            ngx.say(select(2, pcall(sock.send, sock, t)))
            local deep = {"x"}
            for i = 1, 300 do deep = {deep} end
            ngx.say(deep)
        }
    }
--- request
GET /t
--- response_body
stack overflow
stack overflow
stack overflow
x
--- no_error_log
[error]



=== TEST 4: ngx.log and print run __tostring under protection
--- config
    location /t {
        content_by_lua_block {
            local raising = setmetatable({}, {__tostring = function() error("tostring failed", 0) end})
            local fine = setmetatable({}, {__tostring = function() return "custom object" end})
            ngx.say(select(2, pcall(ngx.log, ngx.WARN, raising)))
            ngx.say(select(2, pcall(print, raising)))
            ngx.log(ngx.WARN, "logged: ", fine)
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body
tostring failed
tostring failed
done
--- error_log
logged: custom object



=== TEST 5: socket methods given another object type as self
--- http_config
    lua_shared_dict d 1m;
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local udp = ngx.socket.udp()
            local sema = require("ngx.semaphore").new()
            local dict = ngx.shared.d
            -- a check that passes first: the VM then knows the socket
            -- metatable (lua::udata_with) when the foreign objects come
            sock:settimeout(1000)
            -- each with a valid argument count, so that `self` is what fails
            local args = { connect = {"127.0.0.1", 80}, bind = {"127.0.0.1"}, send = {"x"},
                           settimeout = {1} }
            for _, m in ipairs({"connect", "bind", "close", "send", "receive", "setkeepalive",
                                "getreusedtimes", "settimeout", "sslhandshake"}) do
                local ok, err = pcall(sock[m], dict, unpack(args[m] or {}))
                ngx.say(m, "(dict): ", ok, " ", err)
            end
            ngx.say("udp send(dict): ", select(2, pcall(udp.send, dict, "x")))
            ngx.say("dict get(sock): ", select(2, pcall(dict.get, sock, "k")))
            ngx.say("dict set(sema): ", select(2, pcall(dict.set, sema, "k", 1)))
            -- the socket's userdata metatable: its __gc on foreign values
            local gc = getmetatable(rawget(sock, 1)).__gc
            gc(dict) gc(sema) gc(newproxy(true)) gc(1)
            ngx.say("gc survived; dict still works: ", dict:set("k", 1), " ", dict:get("k"))
        }
    }
--- request
GET /t
--- response_body
connect(dict): false bad socket
bind(dict): false bad socket
close(dict): false bad socket
send(dict): false bad socket
receive(dict): false bad socket
setkeepalive(dict): false bad socket
getreusedtimes(dict): false bad socket
settimeout(dict): false bad socket
sslhandshake(dict): false bad socket
udp send(dict): bad socket
dict get(sock): bad "zone" argument
dict set(sema): bad "zone" argument
gc survived; dict still works: true 1
--- no_error_log
[error]



=== TEST 6: ngx.re.gsub and sub call a replacement function that waits
--- config
    location /t {
        content_by_lua_block {
            local n = 0
            local out, count = ngx.re.gsub("a1b22c333", "[0-9]+", function(m)
                ngx.sleep(0.001)
                n = n + 1
                return "<" .. m[0] .. ">"
            end)
            ngx.say(out, " ", count, " ", n)
            ngx.say(ngx.re.sub("x=1,y=2", [[(\w)=(\d)]], function(m)
                ngx.sleep(0)
                return m[2] .. ":" .. m[1]
            end))
            -- the function may itself run ngx.re
            ngx.say(ngx.re.gsub("ab", "[a-z]", function(m)
                return ngx.re.sub(m[0], "[a-z]", "[$0]")
            end))
            ngx.say(pcall(ngx.re.gsub, "abc", "b", function() return {} end))
        }
    }
--- request
GET /t
--- response_body
a<1>b<22>c<333> 3 3
1:x,y=21
[a][b]2
falseattempt to use a table value as the replacement of 'gsub'
--- no_error_log
[error]



=== TEST 7: waiting inside a callback that C code calls fails cleanly, the request goes on
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(table.sort, {3, 2, 1}, function(a, b) ngx.sleep(0.001) return a < b end)
            ngx.say("sort: ", ok, " ", err)
            ok, err = pcall(string.gsub, "abc", "b", function() ngx.sleep(0.001) return "x" end)
            ngx.say("string.gsub: ", ok, " ", err)
            ok, err = pcall(string.gsub, "abc", "b", function()
                local sock = ngx.socket.tcp()
                return tostring(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            end)
            ngx.say("connect in gsub: ", ok, " ", err)
            ngx.sleep(0.002)
            ngx.say("still running")
        }
    }
--- request
GET /t
--- response_body
sort: false attempt to yield across C-call boundary
string.gsub: false attempt to yield across C-call boundary
connect in gsub: false attempt to yield across C-call boundary
still running
--- no_error_log
[error]




=== TEST 8: the ngx table's metamethods called with odd keys and arguments
--- config
    location /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(function() ngx[nil] = 1 end)))
            ngx.say(select(2, pcall(function() ngx[0/0] = 1 end)))
            ngx.say(select(2, pcall(getmetatable(ngx).__newindex)))
            ngx[1] = "one"
            ngx.say(rawget(ngx, 1), " ", rawget(ngx, "1"))
            ngx.say(getmetatable(ngx).__index())
        }
    }
--- request
GET /t
--- response_body_like
^content_by_lua\(nginx.conf:\d+\):2: table index is nil
content_by_lua\(nginx.conf:\d+\):3: table index is NaN
bad argument #1 to '__newindex' \(table expected\)
one nil
nil
--- no_error_log
[error]



=== TEST 9: waits where no yield is possible: a metamethod run under protection; very deep tables
--- config
    location /t {
        content_by_lua_block {
            local ctx = setmetatable({}, {__index = function() ngx.sleep(0.001) end})
            ngx.say(pcall(ngx.re.match, "a", "a", "", ctx))
            local t = {}
            for i = 1, 100000 do t = {t} end
            ngx.say(pcall(ngx.print, t))
            ngx.sleep(0.001)
            ngx.say("alive")
        }
    }
--- request
GET /t
--- response_body
falseattempt to yield across C-call boundary
falsestack overflow
alive



=== TEST 10: a wait inside a finalizer: the finalizer's error is logged and the code that ran the collection goes on
--- config
    location /t {
        content_by_lua_block {
            local p = newproxy(true)
            getmetatable(p).__gc = function() ngx.sleep(0.001) end
            p = nil
            collectgarbage()
            ngx.say("reached")
        }
    }
--- request
GET /t
--- response_body
reached
--- error_log
error in __gc metamethod: attempt to yield across C-call boundary



=== TEST 11: a failing finalizer stored with rawset, run while API code creates objects: the API call raises its error, the worker lives
--- config
    location /t {
        content_by_lua_block {
            -- A __gc stored with rawset is not protected, and LuaJIT raises
            -- its error where the collector ran; compiled loops would run
            -- the collector at trace exits, whose error LuaJIT cannot
            -- unwind (TEST 14), so this block runs interpreted.
            jit.off()
            local errs, oks, bad = 0, 0, 0
            for round = 1, 5 do
                pcall(function()
                    for i = 1, 300 do
                        local p = newproxy(true)
                        rawset(getmetatable(p), "__gc", function() error("finalizer failed") end)
                    end
                end)
                for i = 1, 200 do
                    local ok, res = pcall(ngx.decode_args, "a=1&b=22")
                    if ok then
                        oks = oks + 1
                        if res.b ~= "22" then bad = bad + 1 end
                    elseif tostring(res):find("finalizer failed$") then
                        errs = errs + 1
                    else
                        bad = bad + 1
                    end
                end
            end
            -- Run the finalizers that are left, one failure at a time.
            for i = 1, 10000 do
                if pcall(collectgarbage) then break end
            end
            ngx.say(errs > 0, " ", oks > 0, " ", bad)
        }
    }
    location /after {
        content_by_lua_block {
            local m = ngx.re.match("abc", "(b)")
            ngx.say(m[1], " ", ngx.escape_uri("a b"), " ", ngx.encode_args({x = "y"}))
        }
    }
--- request eval
["GET /t", "GET /after", "GET /after"]
--- response_body eval
["true true 0\n", "b a%20b x=y\n", "b a%20b x=y\n"]
--- no_error_log
[alert]
[crit]



=== TEST 12: finalizers still failing when a reload closes the old worker's Lua VM
--- config
    location /t {
        content_by_lua_block {
            -- Unprotected finalizers (rawset, see TEST 11): any allocation
            -- may now raise a finalizer's error, in Lua code too: every
            -- closure exists before the first proxy, and each step is
            -- retried under pcall.
            jit.off()
            local state = {}
            local function fail() error("late finalizer") end
            local function make()
                for i = 1, 1000000 do
                    local p = newproxy(true)
                    rawset(getmetatable(p), "__gc", fail)
                end
            end
            local function read_pid()
                local f = assert(io.open(ngx.config.prefix() .. "logs/nginx.pid"))
                state.cmd = "kill -HUP " .. f:read("*l")
                f:close()
            end
            local function sleep() ngx.sleep(0.5) end
            local function finish() ngx.say("stopped: ", state.stopped) end
            -- Stop at the first failure: the collector is then in the
            -- middle of running finalizers, and the rest fail at exit.
            state.stopped = not pcall(make)
            while not pcall(read_pid) do end
            pcall(os.execute, state.cmd)
            while not pcall(sleep) do end
            while not pcall(finish) do end
        }
    }
    location /after {
        content_by_lua_block { ngx.say("new worker") }
    }
--- request eval
["GET /t", "GET /after"]
--- response_body eval
["stopped: true\n", "new worker\n"]
--- wait: 0.5
--- no_error_log
[alert]
exited on signal



=== TEST 13: a ctx table whose __newindex runs the same cached regex: match and find return the first match's captures
--- config
    location /t {
        content_by_lua_block {
            local subject = "b" .. string.rep("z", 40)
            local function noisy()
                return setmetatable({}, {__newindex = function(t, k, v)
                    rawset(t, k, v)
                    ngx.re.match(subject, "(a)?(b)(z*)", "o")
                    ngx.re.find(subject, "(a)?(b)(z*)", "o")
                end})
            end
            local ctx = noisy()
            local m = ngx.re.match("xxab", "(a)?(b)(z*)", "o", ctx)
            ngx.say(m[0], " ", m[1], " ", m[2], " [", m[3], "] pos=", ctx.pos)
            ctx = noisy()
            local from, to = ngx.re.find("xxab", "(a)?(b)(z*)", "o", ctx, 1)
            ngx.say(from, " ", to, " pos=", ctx.pos)
        }
    }
--- request
GET /t
--- response_body
ab a b [] pos=5
3 3 pos=5
--- no_error_log
[error]



=== TEST 14: raising finalizers collected in compiled loops: each error is logged, none reaches the code (LuaJIT 2.1-20230119 raised it from its trace exit handler, past the pcall: the worker crashed)
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local ran = { proxy = 0, cdata = 0 }
            local function proxy()
                local p = newproxy(true)
                getmetatable(p).__gc = function() ran.proxy = ran.proxy + 1; error("proxy finalizer") end
            end
            local function cdata()
                ffi.gc(ffi.new("int[1]"), function() ran.cdata = ran.cdata + 1; error("cdata finalizer") end)
            end
            local failures = 0
            for _, make in ipairs({ proxy, cdata }) do
                for round = 1, 30 do
                    local ok = pcall(function()
                        local s = 0
                        for i = 1, 100000 do
                            local t = { i, i + 1 }
                            s = s + t[1]
                            if i % 50 == 0 then make() end
                        end
                    end)
                    if not ok then failures = failures + 1 end
                end
            end
            collectgarbage()
            ngx.say("failures: ", failures, ", ran: ", ran.proxy > 50000, " ", ran.cdata > 50000)
        }
    }
--- request
GET /t
--- response_body
failures: 0, ran: true true
--- error_log
error in __gc metamethod: content_by_lua(nginx.conf:42):6: proxy finalizer
--- no_error_log
[alert]
[crit]



=== TEST 15: ffi.metatype and debug.setmetatable finalizers run protected; the caller's metatable keeps its function; a wrapped finalizer is not wrapped twice
--- config
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            ffi.cdef("typedef struct { int n; } fin_test_t;")
            local ran = { metatype = 0, setmetatable = 0 }
            local function raise() ran.metatype = ran.metatype + 1; error("metatype finalizer") end
            local mt = { __gc = raise }
            local T = ffi.metatype("fin_test_t", mt)
            for i = 1, 2000 do T() end
            local umt = { __gc = function() ran.setmetatable = ran.setmetatable + 1; error("setmetatable finalizer") end }
            debug.setmetatable(newproxy(false), umt)
            local wrapped = rawget(umt, "__gc")
            debug.setmetatable(newproxy(false), umt)
            collectgarbage()
            collectgarbage()
            ngx.say(ran.metatype > 1000, " ", ran.setmetatable, " ", mt.__gc == raise, " ", rawget(umt, "__gc") == wrapped)
        }
    }
--- request
GET /t
--- response_body
true 2 true true
--- error_log
metatype finalizer
--- no_error_log
[alert]
[crit]
