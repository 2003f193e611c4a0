use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.timer.at runs the callback later with premature=false and its arguments
--- config
    location /t {
        content_by_lua_block {
            local ok, err = ngx.timer.at(0.05, function(premature, a, b)
                ngx.log(ngx.WARN, "timer fired: premature=", premature, " args=", a, ",", b)
            end, "x", 42)
            ngx.say("created: ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
created: 1 nil
--- wait: 0.2
--- error_log
timer fired: premature=false args=x,42
--- no_error_log
[error]



=== TEST 2: timers fire in order of their delays and may sleep
--- config
    location /t {
        content_by_lua_block {
            for i, d in ipairs({0.15, 0.05, 0.1}) do
                ngx.timer.at(d, function()
                    ngx.sleep(0.01)
                    ngx.log(ngx.WARN, "timer ", i, " done")
                end)
            end
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- wait: 0.3
--- grep_error_log eval: qr/timer \d done/
--- grep_error_log_out
timer 2 done
timer 3 done
timer 1 done



=== TEST 3: request-only API is refused in a timer (output APIs by context, request data as lua-nginx-module's fake request); the log line carries the timer context
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(0, function()
                local ok, err = pcall(ngx.say, "x")
                ngx.log(ngx.WARN, "say in timer: ", err)
                for name, f in pairs({
                    var = function() return ngx.var.uri end,
                    status = function() return ngx.status end,
                    get_headers = function() return ngx.req.get_headers() end,
                    set_header = function() ngx.req.set_header("X", "y") end,
                    get_body_data = function() return ngx.req.get_body_data() end,
                    header = function() ngx.header.x = 1 end,
                }) do
                    ok, err = pcall(f)
                    ngx.log(ngx.WARN, name, " in timer: ", err)
                end
            end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- wait: 0.1
--- error_log eval
[qr/say in timer: API disabled in the context of ngx\.timer, context: ngx\.timer/,
qr/var in timer: .*API disabled in the current context/,
qr/status in timer: .*API disabled in the current context/,
qr/get_headers in timer: .*API disabled in the current context/,
qr/set_header in timer: .*API disabled in the current context/,
qr/get_body_data in timer: .*API disabled in the current context/,
qr/header in timer: .*API disabled in the current context/]



=== TEST 4: an error in one timer does not affect the others
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(0, function() error("timer boom") end)
            ngx.timer.at(0.02, function() ngx.log(ngx.WARN, "second timer fine") end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- wait: 0.1
--- error_log
timer boom
second timer fine



=== TEST 5: running and pending counts come back to zero after a thousand timers
--- config
    location /t {
        content_by_lua_block {
            local done = 0
            for i = 1, 1000 do
                local ok, err = ngx.timer.at(0, function() done = done + 1 end)
                if not ok then ngx.say("failed: ", err) return end
            end
            ngx.say("pending: ", ngx.timer.pending_count())
            ngx.sleep(0.2)
            ngx.say("done: ", done, " pending: ", ngx.timer.pending_count(),
                    " running: ", ngx.timer.running_count())
        }
    }
--- request
GET /t
--- response_body
pending: 1000
done: 1000 pending: 0 running: 0
--- no_error_log
[error]



=== TEST 6: lua_max_pending_timers
--- http_config
    lua_max_pending_timers 3;
--- config
    location /t {
        content_by_lua_block {
            -- earlier repetitions may have left long timers pending
            for i = 1, 5 do
                local ok, err = ngx.timer.at(10, function() end)
                if not ok then
                    ngx.say(err, " with ", ngx.timer.pending_count(), " pending")
                    return
                end
            end
        }
    }
--- request
GET /t
--- response_body
too many pending timers with 3 pending



=== TEST 7: ngx.timer.every repeats
--- config
    location /t {
        content_by_lua_block {
            local n = 0
            ngx.timer.every(0.03, function()
                n = n + 1
                ngx.log(ngx.WARN, "tick")
            end)
            ngx.sleep(0.2)
            ngx.say(n >= 4 and n <= 7 and "ticked" or ("ticks: " .. n))
        }
    }
--- request
GET /t
--- response_body
ticked



=== TEST 8: timers created in init_worker_by_lua run with a timer phase
--- http_config
    init_worker_by_lua_block {
        ngx.timer.at(0, function(premature)
            worker_timer_phase = ngx.get_phase()
        end)
    }
--- config
    location /t {
        content_by_lua_block { ngx.sleep(0.05) ngx.say(worker_timer_phase) }
    }
--- request
GET /t
--- response_body
timer



=== TEST 9: bad arguments
--- config
    location /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(ngx.timer.at, 1, "not a function")))
            ngx.say(select(2, pcall(ngx.timer.every, 0, function() end)))
            -- as lua-nginx-module: a negative delay is a timer due at once
            ngx.say(select(2, pcall(ngx.timer.at, -1, function() end)))
        }
    }
--- request
GET /t
--- response_body_like chop
bad argument #2 to 'at' \(function expected, got string\)
.*delay cannot be zero
1$



=== TEST 10: a timer pending at shutdown runs with premature=true
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(100, function(premature)
                ngx.log(ngx.WARN, "long timer premature: ", premature, " exiting: ", ngx.worker.exiting())
            end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- shutdown_error_log
lua abort pending timers
lua ngx.timer expired
long timer premature: true exiting: true



=== TEST 11: a timer's run is logged at debug level as lua-nginx-module does: expiry, then the close of its fake connection
--- config
    location /t {
        content_by_lua_block {
            assert(ngx.timer.at(0, function() ngx.log(ngx.WARN, "timer body ran") end))
            ngx.say("armed")
        }
    }
--- request
GET /t
--- response_body
armed
--- wait: 0.1
--- error_log
lua ngx.timer expired
timer body ran
http lua close fake http connection
--- no_error_log
[error]



=== TEST 12: a timer that cannot run because lua_max_running_timers are busy is logged with where its function is defined
--- http_config
    lua_max_running_timers 1;
--- config
    location /t {
        content_by_lua_block {
            local function busy() ngx.sleep(0.1) end
            assert(ngx.timer.at(0, busy))
            assert(ngx.timer.at(0.01, function() ngx.log(ngx.WARN, "must not run") end))
            ngx.say("armed")
        }
    }
--- request
GET /t
--- response_body
armed
--- wait: 0.2
--- error_log eval
qr/\[alert\] .*? lua failed to run timer with function defined at =content_by_lua\(nginx\.conf:\d+\):4: 1 lua_max_running_timers are not enough/
--- no_error_log
must not run



=== TEST 13: ngx.ctx in a timer is a table of that timer run, apart from the request's
--- config
    location /t {
        content_by_lua_block {
            ngx.ctx.who = "request"
            local function tick(premature, n)
                ngx.ctx.n = (ngx.ctx.n or 0) + n
                ngx.log(ngx.WARN, "timer ctx: ", ngx.ctx.who, " ", ngx.ctx.n)
            end
            assert(ngx.timer.at(0, tick, 5))
            assert(ngx.timer.at(0, tick, 7))
            ngx.say(ngx.ctx.who)
        }
    }
--- request
GET /t
--- response_body
request
--- wait: 0.1
--- error_log
timer ctx: nil 5
timer ctx: nil 7
--- no_error_log
[error]



=== TEST 14: init_worker_by_lua code has an ngx.ctx table too
--- http_config
    init_worker_by_lua_block {
        ngx.ctx.greeting = "hello from init_worker"
        INIT_WORKER_SAW = ngx.ctx.greeting
    }
--- config
    location /t {
        content_by_lua_block { ngx.say(INIT_WORKER_SAW, " / request: ", ngx.ctx.greeting) }
    }
--- request
GET /t
--- response_body
hello from init_worker / request: nil
--- no_error_log
[error]



=== TEST 15: exit_worker_by_lua may not create timers
--- http_config
    exit_worker_by_lua_block {
        local ok, err = pcall(ngx.timer.at, 0, function() end)
        ngx.log(ngx.WARN, "timer in exit_worker: ", ok, " ", err)
        local ok2, err2 = pcall(ngx.timer.every, 1, function() end)
        ngx.log(ngx.WARN, "every in exit_worker: ", ok2, " ", err2)
    }
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
    }
--- request
GET /t
--- response_body
ok
--- shutdown_error_log
timer in exit_worker: false API disabled in the context of exit_worker_by_lua*
every in exit_worker: false API disabled in the context of exit_worker_by_lua*



=== TEST 16: at shutdown a premature callback may still add a timer due at once (it runs, not premature), not a later one
(repeat_each: both requests' timers are pending at shutdown)
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(100, function(premature)
                local ok, err = ngx.timer.at(0, function(p)
                    ngx.log(ngx.WARN, "zero-delay timer premature: ", p, " exiting: ", ngx.worker.exiting())
                end)
                ngx.log(ngx.WARN, "zero delay: ", ok, " ", err)
                local ok2, err2 = ngx.timer.at(1, function() end)
                ngx.log(ngx.WARN, "one second: ", ok2, " ", err2)
            end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- log_level: debug
--- shutdown_error_log
lua found 2 pending timers to be aborted prematurely
zero delay: 1 nil
one second: nil process exiting
zero-delay timer premature: false exiting: true



=== TEST 17: a timer's log lines name the client and server of the request that created it, through chained timers
--- config
    location /t {
        content_by_lua_block {
            ngx.timer.at(0, function()
                ngx.log(ngx.WARN, "first level")
                ngx.timer.at(0, function()
                    ngx.log(ngx.WARN, "second level")
                end)
            end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- wait: 0.1
--- error_log eval
[
qr/first level, context: ngx\.timer, client: 127\.0\.0\.1, server: \S+:\d+$/,
qr/second level, context: ngx\.timer, client: 127\.0\.0\.1, server: \S+:\d+$/,
]
--- no_error_log
[error]
