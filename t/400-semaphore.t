use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: new, count, post and wait without waiting
--- config
    location = /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            local s = semaphore.new()
            ngx.say("default: ", s:count())
            s = semaphore.new(3)
            ngx.say("new(3): ", s:count())
            ngx.say("post: ", s:post(2), " ", s:count())
            ngx.say("post(): ", s:post(), " ", s:count())
            ngx.say("wait: ", s:wait(0), " ", s:count())
            ngx.say("string: ", semaphore.new("2"):count())
            -- lua-resty-core's `tonumber(n) or 0`: the module itself as n
            ngx.say("method call: ", semaphore:new(2):count(), " ", semaphore.new({}):count())
            local e = semaphore.new(0)
            local ok, err = e:wait(0)
            ngx.say("empty: ", ok, " ", err, " ", e:count())
            ngx.say("same module: ", require("ngx.semaphore") == semaphore)
            ngx.say("type: ", type(s), " ", tostring(s):match("^semaphore: ") ~= nil)
        }
    }
--- request
GET /t
--- response_body
default: 0
new(3): 3
post: true 5
post(): true 6
wait: true 5
string: 2
method call: 0 0
empty: nil timeout 0
same module: true
type: userdata true
--- no_error_log
[error]



=== TEST 2: a wait that runs out returns false, "timeout" after the timeout
--- config
    location = /t {
        content_by_lua_block {
            local s = require("ngx.semaphore").new(0)
            local ok, err = s:wait(0.1)
            ngx.say(ok, " ", err, " ", s:count())
            ngx.say(tonumber(ngx.var.request_time) >= 0.09)
            -- the queue is empty again: resources are taken at once
            s:post(1)
            ngx.say(s:wait(0.1), " ", s:count())
        }
    }
--- request
GET /t
--- response_body
false timeout 0
true
true 0
--- no_error_log
[error]



=== TEST 3: waits inside user coroutines suspend the request and come back
--- config
    location = /t {
        content_by_lua_block {
            local s = require("ngx.semaphore").new(1)
            local f = coroutine.wrap(function()
                local ok, err = s:wait(0.01)
                coroutine.yield("first: " .. tostring(ok) .. " " .. tostring(err))
                ok, err = s:wait(0.01)
                return "second: " .. tostring(ok) .. " " .. tostring(err)
            end)
            ngx.say(f())
            ngx.say(f())
            local co = coroutine.create(function() return s:wait(0.02) end)
            ngx.say("resume: ", coroutine.resume(co))
            ngx.say(coroutine.status(co), " ", s:count())
            ngx.say("pcall: ", pcall(s.wait, s, 0.01))
        }
    }
--- request
GET /t
--- response_body
first: true nil
second: false timeout
resume: truefalsetimeout
dead 0
pcall: truefalsetimeout
--- no_error_log
[error]



=== TEST 4: a waiting request is woken by a post from another request (subrequest)
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new() }
    }
--- config
    location = /post {
        internal;
        content_by_lua_block {
            local T = package.loaded.semtest
            ngx.sleep(0.05)
            T.count_before = T.sema:count()
            T.sema:post(1)
            T.count_after = T.sema:count()
        }
    }
    location = /t {
        mirror /post;
        content_by_lua_block {
            local T = package.loaded.semtest
            local ok, err = T.sema:wait(2)
            ngx.say(ok, " ", err)
            ngx.say("poster saw ", T.count_before, " then ", T.count_after)
            ngx.say("now ", T.sema:count())
            ngx.say(tonumber(ngx.var.request_time) < 1)
        }
    }
--- request
GET /t
--- response_body
true nil
poster saw -1 then 0
now 0
true
--- no_error_log
[error]



=== TEST 5: a waiting request is woken by a post from a request on another connection
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new() }
    }
--- config
    location = /post {
        content_by_lua_block {
            ngx.sleep(0.05)
            package.loaded.semtest.sema:post(1)
            ngx.say("posted")
        }
    }
    location = /proxy {
        internal;
        proxy_pass http://127.0.0.1:$server_port/post;
    }
    location = /t {
        mirror /proxy;
        content_by_lua_block {
            local s = package.loaded.semtest.sema
            ngx.say(s:wait(2))
            ngx.say(s:count())
        }
    }
--- request
GET /t
--- response_body
truenil
0
--- no_error_log
[error]



=== TEST 6: waiters are woken in FIFO order, no more than there are resources
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new(), order = {} }
        function sem_waiter(name)
            local T = package.loaded.semtest
            local ok, err = T.sema:wait(1)
            T.order[#T.order + 1] = name .. ":" .. tostring(ok)
        end
    }
--- config
    location = /w1 { internal; content_by_lua_block { sem_waiter("w1") } }
    location = /w2 { internal; content_by_lua_block { sem_waiter("w2") } }
    location = /w3 { internal; content_by_lua_block { sem_waiter("w3") } }
    location = /t {
        mirror /w1;
        mirror /w2;
        mirror /w3;
        content_by_lua_block {
            local T = package.loaded.semtest
            local s, order = T.sema, T.order
            for k in pairs(order) do order[k] = nil end
            ngx.sleep(0.02)
            ngx.say("waiting: ", s:count())
            s:post(1)
            -- a post wakes nobody before the poster yields
            ngx.say("after post: ", s:count(), " woken: ", #order)
            ngx.sleep(0.01)
            ngx.say(table.concat(order, " "))
            -- a newcomer may not overtake the queue
            s:post(1)
            ngx.say("newcomer: ", s:wait(0))
            ngx.sleep(0.01)
            ngx.say(table.concat(order, " "))
            s:post(5)
            ngx.sleep(0.01)
            ngx.say(table.concat(order, " "))
            ngx.say("left: ", s:count())
            ngx.say("drain: ", s:wait(0), s:wait(0), s:wait(0), s:wait(0), " ", s:count())
        }
    }
--- request
GET /t
--- response_body
waiting: -3
after post: -2 woken: 0
w1:true
newcomer: niltimeout
w1:true w2:true
w1:true w2:true w3:true
left: 4
drain: truetruetruetrue 0
--- no_error_log
[error]



=== TEST 7: post from log_by_lua wakes a waiter in another request
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new() }
    }
--- config
    location = /logpost {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local s = package.loaded.semtest.sema
            local ok, err = s:wait(1)
            ngx.log(ngx.WARN, "wait in log: ", ok, " ", err)
            s:post(1)
        }
    }
    location = /proxy {
        internal;
        proxy_pass http://127.0.0.1:$server_port/logpost;
    }
    location = /t {
        mirror /proxy;
        content_by_lua_block {
            local s = package.loaded.semtest.sema
            ngx.say(s:wait(2))
            ngx.say(s:count())
        }
    }
--- request
GET /t
--- response_body
truenil
0
--- error_log
wait in log: nil API disabled in the context of log_by_lua*
--- no_error_log
[error]



=== TEST 8: post in init_by_lua, init_worker_by_lua and set_by_lua; wait is refused there
--- http_config
    init_by_lua_block {
        local s = require("ngx.semaphore").new(1)
        s:post(2)
        package.loaded.semtest = { sema = s, init = s:count() }
    }
    init_worker_by_lua_block {
        local T = package.loaded.semtest
        T.sema:post(1)
        local ok, err = pcall(T.sema.wait, T.sema, 1)
        T.worker = tostring(ok) .. " " .. tostring(err)
    }
--- config
    location = /t {
        set_by_lua_block $set {
            local s = require("ngx.semaphore").new(0)
            s:post(4)
            local ok, err = s:wait(1)
            return tostring(ok) .. " " .. tostring(err) .. " " .. s:count()
        }
        content_by_lua_block {
            local T = package.loaded.semtest
            ngx.say("init: ", T.init)
            ngx.say("init_worker: ", T.worker)
            ngx.say("set: ", ngx.var.set)
        }
    }
--- request
GET /t
--- response_body
init: 3
init_worker: false no request found
set: nil API disabled in the context of set_by_lua* 4
--- no_error_log
[error]



=== TEST 9: bad arguments
--- config
    location = /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            local s = semaphore.new()
            local function try(f, ...)
                local ok, err = pcall(f, ...)
                ngx.say(ok, " ", (tostring(err):gsub("^content_by_lua%(nginx%.conf:%d+%):%d+: ", "")))
            end
            try(semaphore.new, -1)
            try(function() return semaphore.new({}):count() end)
            try(function() local ok = s:wait() return ok end)
            try(function() local ok = s:wait("soon") return ok end)
            try(function() local ok = s:wait(-1) return ok end)
            try(function() local ok = s.wait(s, {}) return ok end)
            try(function() local ok = s:post(0) return ok end)
            try(function() local ok = s:post(true) return ok end)
            try(s.wait, {}, 1)
            try(s.post, "x")
            try(s.count)
            ngx.say("still usable: ", s:post(1), " ", s:count())
        }
    }
--- request
GET /t
--- response_body
false no negative number
true 0
false bad argument #1 to 'wait' (number expected, got nil)
false bad argument #1 to 'wait' (number expected, got string)
false no negative number
false bad argument #2 to 'wait' (number expected, got table)
false no negative number
false bad argument #1 to 'post' (number expected, got boolean)
false not a semaphore instance
false not a semaphore instance
false not a semaphore instance
still usable: true 1
--- no_error_log
[error]



=== TEST 10: a waiter whose request is terminated leaves the queue, its resource stays
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new() }
    }
--- config
    location = /waiter {
        internal;
        content_by_lua_block {
            package.loaded.semtest.sema:wait(5)
            ngx.log(ngx.ERR, "waiter resumed")
        }
    }
    location = /t {
        mirror /waiter;
        content_by_lua_block {
            local s = package.loaded.semtest.sema
            ngx.sleep(0.02)
            ngx.log(ngx.WARN, "queued: ", s:count())
            if ngx.var.arg_post then
                -- the request ends before the wake-up event runs
                s:post(1)
            end
            ngx.exit(ngx.ERROR)
        }
    }
    location = /check {
        content_by_lua_block {
            local s = package.loaded.semtest.sema
            ngx.sleep(0.02)
            ngx.say("count: ", s:count())
            s:post(1)
            ngx.say("take: ", s:wait(0), " ", s:count())
            while s:wait(0) do end
        }
    }
--- request eval
["GET /t", "GET /check", "GET /t?post=1", "GET /check"]
--- error_code eval
["", 200, "", 200]
--- response_body eval
["", "count: 0\ntake: true 0\n", "", "count: 1\ntake: true 1\n"]
--- error_log
queued: -1
--- no_error_log
waiter resumed
[crit]



=== TEST 11: a post after the waiting client went away wakes it without harm
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new() }
    }
--- config
    location = /wait {
        content_by_lua_block {
            local ok, err = package.loaded.semtest.sema:wait(1)
            ngx.log(ngx.WARN, "abandoned waiter: ", ok, " ", err)
            ngx.say("late")
        }
    }
    location = /post {
        content_by_lua_block {
            local s = package.loaded.semtest.sema
            ngx.say("before: ", s:count())
            s:post(1)
            ngx.sleep(0.02)
            ngx.say("after: ", s:count())
        }
    }
--- request eval
["GET /wait", "GET /post"]
--- timeout: 0.2
--- abort
--- response_body eval
["", "before: -1\nafter: 0\n"]
--- error_log
abandoned waiter: true nil
--- no_error_log
[crit]
[alert]



=== TEST 12: waits in rewrite_by_lua and access_by_lua; a rewrite waiter woken by another request goes on to its content
--- http_config
    init_by_lua_block {
        package.loaded.semtest = { sema = require("ngx.semaphore").new() }
    }
--- config
    location = /waiter {
        internal;
        rewrite_by_lua_block {
            local ok, err = package.loaded.semtest.sema:wait(1)
            ngx.log(ngx.WARN, "rewrite waiter: ", ok, " ", err)
        }
        content_by_lua_block {
            ngx.log(ngx.WARN, "waiter content ran")
        }
    }
    location = /t {
        mirror /waiter;
        set $rw "";
        rewrite_by_lua_block {
            local ok, err = require("ngx.semaphore").new():wait(0.01)
            ngx.var.rw = tostring(ok) .. " " .. tostring(err)
        }
        access_by_lua_block {
            local s = require("ngx.semaphore").new()
            local ok, err = s:wait(0.01)
            s:post(1)
            ngx.ctx.ac = tostring(ok) .. " " .. tostring(err) .. ", " .. tostring(s:wait(1))
        }
        content_by_lua_block {
            local s = package.loaded.semtest.sema
            ngx.sleep(0.02)
            ngx.say("rewrite: ", ngx.var.rw)
            ngx.say("access: ", ngx.ctx.ac)
            ngx.say("queued: ", s:count())
            s:post(1)
            ngx.sleep(0.02)
            ngx.say("after: ", s:count())
        }
    }
--- request
GET /t
--- response_body
rewrite: false timeout
access: false timeout, true
queued: -1
after: 0
--- error_log
rewrite waiter: true nil
waiter content ran
--- no_error_log
[error]



=== TEST 13: a timer posts to a request that waits, and a timer waits for a post from the request
--- config
    location /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            local to_request = semaphore.new(0)
            local to_timer = semaphore.new(0)
            ngx.timer.at(0.02, function()
                to_request:post(1)
                local ok, err = to_timer:wait(1)
                ngx.log(ngx.WARN, "timer woke: ", ok, " ", err)
            end)
            local ok, err = to_request:wait(1)
            ngx.say("request wait: ", ok, " ", err)
            to_timer:post(1)
            ngx.sleep(0.05)
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body
request wait: true nil
done
--- error_log
timer woke: true nil
--- no_error_log
[error]



=== TEST 14: a collected semaphore says so in the debug log
--- config
    location /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            do
                local sem = semaphore.new(1)
                sem:post()
            end
            collectgarbage()
            collectgarbage()
            ngx.say("collected")
        }
    }
--- request
GET /t
--- response_body
collected
--- log_level: debug
--- error_log
in lua gc, semaphore



=== TEST 15: a semaphore whose last reference goes (collected) while a thread waits on it still wakes that thread
--- config
    location = /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            local holder = {}
            assert(ngx.timer.at(0.001, function()
                holder.sema:post()
                holder.sema = nil
                collectgarbage()
                collectgarbage()
            end))
            holder.sema = semaphore.new(0)
            local ok, err = holder.sema:wait(2)
            ngx.say(ok, " ", err)
            collectgarbage()
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body
true nil
done
--- no_error_log
[error]
[crit]
