use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: udp send and receive against a local responder
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(1000)
            local ok, err = udp:setpeername("127.0.0.1", $TEST_NGINX_RAND_PORT_1)
            ngx.say("peer: ", ok, " ", err)
            ngx.say("sent: ", udp:send({"hel", "lo"}))
            local data, err = udp:receive()
            ngx.say("got: ", data, " ", err)
            ngx.say(udp:close())
            ngx.say(udp:send("x"))
        }
    }
--- udp_listen: $TEST_NGINX_RAND_PORT_1
--- udp_query: hello
--- udp_reply: world!
--- request
GET /t
--- response_body
peer: 1 nil
sent: 1
got: world! nil
1
nilclosed
--- error_log
attempt to send data on a closed socket



=== TEST 2: udp receive with a size, and a timeout
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(100)
            assert(udp:setpeername("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(udp:send("q"))
            ngx.say(udp:receive(4))
            ngx.say(udp:receive())
        }
    }
--- udp_listen: $TEST_NGINX_RAND_PORT_1
--- udp_reply: 123456789
--- request
GET /t
--- response_body
1234
niltimeout
--- error_log
lua udp socket read timed out



=== TEST 3: udp over a unix datagram socket, and an unknown host without a resolver
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            local ok, err = udp:setpeername("unix:$TEST_NGINX_SERVER_ROOT/logs/udp.sock")
            ngx.say(ok, " ", err)
            ngx.say(udp:setpeername("no.such.name.invalid", 53))
            ngx.say(udp:receive())
        }
    }
--- udp_listen: $TEST_NGINX_SERVER_ROOT/logs/udp.sock
--- udp_reply: x
--- request
GET /t
--- response_body
1 nil
nilno resolver defined to resolve "no.such.name.invalid"
nilclosed



=== TEST 4: udp in a disallowed phase
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local ok, err = pcall(ngx.socket.udp)
            ngx.log(ngx.WARN, "udp: ", err)
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log
udp: API disabled in the context of log_by_lua*



=== TEST 5: resolver timeout for tcp connect
--- config
    resolver 127.0.0.1:$TEST_NGINX_RAND_PORT_3 ipv6=off;
    resolver_timeout 200ms;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local ok, err = sock:connect("some.name.test", 80)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
nil some.name.test could not be resolved (110: Operation timed out)



=== TEST 6: udp to a port nobody listens on: the ICMP error shows in receive
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(500)
            assert(udp:setpeername("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
            ngx.say(udp:send("ping"))
            ngx.say(udp:receive())
        }
    }
--- request
GET /t
--- response_body
1
nilconnection refused



=== TEST 7: a unix datagram socket gets a name of its own, so replies reach it
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(1000)
            assert(udp:setpeername("unix:$TEST_NGINX_SERVER_ROOT/logs/dgram.sock"))
            assert(udp:setpeername("unix:$TEST_NGINX_SERVER_ROOT/logs/dgram.sock"))
            assert(udp:send("ping"))
            ngx.say(udp:receive(100))
            udp:close()
        }
    }
--- udp_listen: $TEST_NGINX_SERVER_ROOT/logs/dgram.sock
--- udp_query: ping
--- udp_reply: pong
--- request
GET /t
--- response_body
pong
--- error_log
datagram unix domain socket autobind
lua udp socket read timeout: 1000
lua udp socket receive buffer size: 100
lua udp socket reconnect without shutting down
lua reuse socket upstream ctx
--- no_error_log
[error]



=== TEST 8: a light thread killed while it waits in udp receive: its wait and timer are gone, it is dead to coroutine.resume, a datagram arriving later waits for the next receive, and the worker still exits at once
--- http_config
    exit_worker_by_lua_block { ngx.log(ngx.NOTICE, "worker exits cleanly") }
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            -- a timer left behind would hold the exiting worker for a minute
            udp:settimeout(60000)
            assert(udp:setpeername("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local th = ngx.thread.spawn(function()
                local data, err = udp:receive()
                ngx.log(ngx.ERR, "the killed thread resumed: ", data, " ", err)
            end)
            ngx.sleep(0.01)
            ngx.say("kill: ", ngx.thread.kill(th))
            ngx.say("kill again: ", select(2, ngx.thread.kill(th)))
            ngx.say("status: ", coroutine.status(th))
            ngx.say("resume: ", coroutine.resume(th))
            -- the reply comes while nobody receives: its read event must
            -- wake no one
            assert(udp:send("q"))
            ngx.sleep(0.05)
            udp:settimeout(1000)
            ngx.say("next receive: ", udp:receive())
            udp:close()
        }
    }
--- udp_listen: $TEST_NGINX_RAND_PORT_1
--- udp_query: q
--- udp_reply: pong
--- request
GET /t
--- response_body
kill: 1
kill again: already waited or killed
status: dead
resume: falsecannot resume dead coroutine
next receive: pong
--- no_error_log
the killed thread resumed
[alert]
--- shutdown_error_log
worker exits cleanly



=== TEST 9: a timer cannot resume a request's thread waiting in udp receive: the thread gets its own reply and the request ends
--- config
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(2000)
            assert(udp:setpeername("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(udp:send("q"))
            local th = ngx.thread.spawn(function()
                return udp:receive()
            end)
            local ok, err = ngx.timer.at(0, function()
                local st = coroutine.status(th)
                local ok, err = coroutine.resume(th)
                ngx.log(ngx.WARN, "timer sees ", st, "; resume: ", ok, " ", err)
            end)
            ngx.say("timer: ", ok, " ", err)
            ngx.say("wait: ", ngx.thread.wait(th))
        }
    }
--- udp_listen: $TEST_NGINX_RAND_PORT_1
--- udp_query: q
--- udp_reply: pong
--- udp_reply_delay: 0.2
--- request
GET /t
--- response_body
timer: 1 nil
wait: truepong
--- error_log
timer sees running; resume: false cannot resume running coroutine
--- no_error_log
[alert]
