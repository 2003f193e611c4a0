use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: without lua_check_client_abort the sleeping request runs to its end after the client left
--- config
    location /t {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "woke up after the client left")
            ngx.say("too late")
        }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- ignore_response
--- wait: 0.4
--- error_log
woke up after the client left
--- no_error_log
[error]
[alert]



=== TEST 2: with lua_check_client_abort and no handler the request ends with 499 and its sleep is cancelled
--- config
    lua_check_client_abort on;
    location /t {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "should not wake up")
        }
        log_by_lua_block { ngx.log(ngx.WARN, "final status: ", ngx.status) }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- ignore_response
--- wait: 0.4
--- error_log
final status: 499
client prematurely closed connection
--- no_error_log
should not wake up
[alert]



=== TEST 3: ngx.on_abort runs its handler as a light thread
--- config
    lua_check_client_abort on;
    location /t {
        content_by_lua_block {
            local ok, err = ngx.on_abort(function()
                ngx.log(ngx.WARN, "on_abort called")
                ngx.exit(499)
            end)
            if not ok then ngx.log(ngx.ERR, "on_abort: ", err) end
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "main thread should not wake up")
        }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- ignore_response
--- wait: 0.4
--- error_log
on_abort called
--- no_error_log
main thread should not wake up
[error]



=== TEST 4: ngx.on_abort needs lua_check_client_abort; a second call is refused
--- config
    location /off {
        content_by_lua_block { ngx.say(ngx.on_abort(function() end)) }
    }
    location /on {
        lua_check_client_abort on;
        content_by_lua_block {
            ngx.say(ngx.on_abort(function() end))
            ngx.say(ngx.on_abort(function() end))
        }
    }
--- request eval
["GET /off", "GET /on"]
--- response_body eval
["nillua_check_client_abort is off\n", "1\nnilduplicate call\n"]
--- no_error_log
[error]



=== TEST 5: thousands of concurrent sleeping requests each get their own result
--- config
    location /t {
        content_by_lua_block {
            -- 2000 light threads stand in for concurrent requests sharing the worker's timers
            local threads = {}
            for i = 1, 2000 do
                threads[i] = ngx.thread.spawn(function() ngx.sleep(0.05 + (i % 7) * 0.01) return i end)
            end
            local sum = 0
            for i = 1, 2000 do
                local ok, v = ngx.thread.wait(threads[i])
                sum = sum + v
            end
            ngx.say(sum, " ", ngx.timer.pending_count())
        }
    }
--- request
GET /t
--- response_body
2001000 0
--- no_error_log
[error]



=== TEST 6: an on_abort handler leaves the request's subrequests running; its ngx.exit cannot end them
--- config
    location /slow {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.print("slow body")
        }
    }
    location /t {
        lua_check_client_abort on;
        rewrite_by_lua_block {
            ngx.on_abort(function()
                ngx.log(ngx.WARN, "client left")
                ngx.exit(0)
            end)
            local res = ngx.location.capture("/slow")
            ngx.log(ngx.WARN, "capture finished: ", res.status, " ", res.body)
        }
        content_by_lua_block { ngx.say("unreached by the client") }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- ignore_response
--- wait: 0.5
--- error_log eval
[
"client left",
qr/lua user thread aborted: runtime error: rewrite_by_lua\(nginx\.conf:\d+\):4: attempt to abort with pending subrequests/,
"capture finished: 200 slow body",
]



=== TEST 7: a write nginx sends at once (postpone_output 1) after the client left returns the write's error
--- config
    location /t {
        postpone_output 1;
        content_by_lua_block {
            ngx.sleep(0.2)
            local ok, err = ngx.say("hello")
            if not ok then
                ngx.log(ngx.WARN, "say failed: ", err)
                return
            end
            ngx.log(ngx.WARN, "say succeeded")
        }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- ignore_response
--- wait: 0.3
--- error_log
say failed: nginx output filter error
--- no_error_log
say succeeded
[error]
[alert]



=== TEST 8: a small write nginx keeps back (postpone_output) after the client left succeeds, as nothing is written yet
--- config
    location /t {
        content_by_lua_block {
            ngx.sleep(0.2)
            local ok, err = ngx.say("hello")
            ngx.log(ngx.WARN, "say returned ", ok, " ", err)
        }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- ignore_response
--- wait: 0.3
--- error_log
say returned 1 nil
--- no_error_log
[error]
[alert]
