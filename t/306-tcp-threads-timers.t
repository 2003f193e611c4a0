use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: full duplex: a light thread waits in receive while the entry thread sends
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            local reader = ngx.thread.spawn(function()
                local out = {}
                for i = 1, 3 do
                    out[i] = assert(sock:receive())
                end
                return table.concat(out, " ")
            end)
            -- the reader is waiting now: a second reader is refused
            ngx.say(sock:receive())
            for i = 1, 3 do
                assert(sock:send("PING\r\n"))
                ngx.sleep(0.01)
            end
            ngx.say(ngx.thread.wait(reader))
            ngx.say(sock:close())
        }
    }
--- request
GET /t
--- response_body
nilsocket busy reading
true+PONG +PONG +PONG
1
--- no_error_log
[error]



=== TEST 2: a cosocket in a timer callback
--- config
    location /t {
        content_by_lua_block {
            local function handler(premature, key)
                local sock = ngx.socket.tcp()
                sock:settimeout(1000)
                local ok, err = sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT)
                if not ok then ngx.log(ngx.ERR, "timer connect: ", err) return end
                assert(sock:send("SET " .. key .. " fromtimer\r\n"))
                local res = assert(sock:receive())
                ngx.log(ngx.WARN, "timer set: ", res)
                assert(sock:setkeepalive())
            end
            local key = "ngx_lua_timer_" .. ngx.worker.pid()
            assert(ngx.timer.at(0, handler, key))
            ngx.sleep(0.2)
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            assert(sock:send("GET " .. key .. "\r\nDEL " .. key .. "\r\n"))
            sock:receive()
            ngx.say(sock:receive())
            sock:close()
        }
    }
--- request
GET /t
--- response_body
fromtimer
--- error_log
timer set: +OK
--- no_error_log
[error]



=== TEST 3: a socket waiting in a killed light thread, and a request that ends while its thread waits
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(5000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local t = ngx.thread.spawn(function() return sock:receive() end)
            ngx.sleep(0.01)
            ngx.say("kill: ", ngx.thread.kill(t))
            -- the read was cancelled: the socket can read again
            sock:settimeout(50)
            ngx.say(sock:receive())
            -- this thread is still waiting when the entry thread exits
            ngx.thread.spawn(function() return sock:receive() end)
            ngx.exit(200)
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- request
GET /t
--- response_body
kill: 1
niltimeout
--- no_error_log
[alert]



=== TEST 4: sockets collected while connected, in bulk
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            for i = 1, 200 do
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
                if i % 3 == 0 then
                    assert(s:send("GET /back HTTP/1.0\r\nHost: x\r\n\r\n"))
                end
                if i % 20 == 0 then collectgarbage() end
            end
            collectgarbage()
            local f = io.popen("ls /proc/" .. ngx.worker.pid() .. "/fd | wc -l")
            local n = tonumber(f:read("*l"))
            f:close()
            ngx.say(n < 100 and "few fds" or ("fds: " .. n))
        }
    }
--- request
GET /t
--- response_body
few fds
--- no_error_log
[error]
[alert]



=== TEST 5: the client goes away while the request waits on a socket (lua_check_client_abort)
--- config
    lua_check_client_abort on;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            sock:settimeout(5000)
            ngx.log(ngx.WARN, "waiting")
            local data, err = sock:receive()
            ngx.log(ngx.ERR, "should not get here: ", err)
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- request
GET /t
--- timeout: 200ms
--- abort
--- ignore_response
--- wait: 0.2
--- error_log
waiting
--- no_error_log
should not get here
[alert]



=== TEST 6: a light thread killed in tcp receive: dead to coroutine.resume, its read timer gone, a reply arriving later is read by the next receive, and the worker exits at once
--- http_config
    exit_worker_by_lua_block { ngx.log(ngx.NOTICE, "worker exits cleanly") }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            -- a timer left behind would hold the exiting worker for a minute
            sock:settimeout(60000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            local th = ngx.thread.spawn(function()
                local line, err = sock:receive()
                ngx.log(ngx.ERR, "the killed thread resumed: ", line, " ", err)
            end)
            ngx.sleep(0.01)
            ngx.say("kill: ", ngx.thread.kill(th))
            ngx.say("status: ", coroutine.status(th))
            ngx.say("resume: ", coroutine.resume(th))
            -- the reply comes while nobody receives: its read event must
            -- wake no one
            assert(sock:send("PING\r\n"))
            ngx.sleep(0.05)
            sock:settimeout(1000)
            ngx.say("next receive: ", sock:receive())
            assert(sock:setkeepalive())
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["kill: 1\nstatus: dead\nresume: falsecannot resume dead coroutine\nnext receive: +PONG\n",
 "kill: 1\nstatus: dead\nresume: falsecannot resume dead coroutine\nnext receive: +PONG\n"]
--- no_error_log
the killed thread resumed
[alert]
--- shutdown_error_log
worker exits cleanly



=== TEST 7: a timer cannot resume a request's thread waiting in tcp receive: the thread gets its own reply and the request ends
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            local th = ngx.thread.spawn(function()
                return sock:receive()
            end)
            local ok, err = ngx.timer.at(0, function()
                local st = coroutine.status(th)
                local ok, err = coroutine.resume(th)
                ngx.log(ngx.WARN, "timer sees ", st, "; resume: ", ok, " ", err)
            end)
            ngx.say("timer: ", ok, " ", err)
            ngx.sleep(0.05)
            -- only now the reply can come
            assert(sock:send("PING\r\n"))
            ngx.say("wait: ", ngx.thread.wait(th))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
timer: 1 nil
wait: true+PONG
--- error_log
timer sees running; resume: false cannot resume running coroutine
--- no_error_log
[alert]
