use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: a receive that fails ends the read half only: send still works, close() returns 1
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local data, err, partial = sock:receive()
            ngx.say("receive: ", data, " ", err, " [", partial, "]")
            ngx.say("again: ", sock:receive(2))
            ngx.say("send: ", sock:send("sent after the FIN"))
            ngx.sleep(0.05)  -- lets the peer read it before the request ends
            ngx.say("close: ", sock:close())
            ngx.say("close again: ", sock:close())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 1
--- tcp_query_len: 18
--- tcp_query: sent after the FIN
--- request
GET /t
--- response_body
receive: nil closed []
again: nilclosed
send: 18
close: 1
close again: nilclosed
--- error_log
attempt to receive data on a closed socket



=== TEST 2: the read that meets the end of the data reports it without an error log line
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("go"))
            ngx.say("all: ", sock:receive("*a"))
            local data, err, partial = sock:receive(1)
            ngx.say("one: ", data, " ", err, " [", partial, "]")
            ngx.say("close: ", sock:close())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: payload
--- request
GET /t
--- response_body
all: payload
one: nil closed []
close: 1
--- no_error_log
[error]



=== TEST 3: the partial line returned on close has its carriage returns dropped
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("go"))
            ngx.say("line: ", sock:receive())
            local data, err, partial = sock:receive("*l")
            ngx.say(data, " ", err, " [", partial, "]")
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"first\r\nse\rco\rnd"
--- request
GET /t
--- response_body
line: first
nil closed [second]
--- no_error_log
[error]



=== TEST 4: receiveuntil holds back bytes that may start the pattern: a receive() in between reads past them
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("go"))
            local reader = sock:receiveuntil("::end")
            for i = 1, 6 do
                local data, err, partial = reader(3)
                ngx.say("piece: ", data, " ", err, " ", partial)
                local b, err, partial = sock:receive(1)
                if not b then
                    ngx.say("byte: ", b, " ", err, " [", partial, "]")
                    break
                end
                ngx.say("byte: ", b)
            end
            ngx.say("close: ", sock:close())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: ab:::end!x
--- request
GET /t
--- response_body
piece: ab: nil nil
byte: e
piece: ::n nil nil
byte: d
piece: nil closed !x
byte: nil closed [nil]
close: 1
--- error_log
attempt to receive data on a closed socket



=== TEST 5: a size-limited receiveuntil ends each run of pieces with nil, nil, nil
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("go"))
            local reader = sock:receiveuntil("--")
            for i = 1, 8 do
                local data, err, partial = reader(3)
                ngx.say(i, ": ", data, " ", err, " ", partial)
                if err then break end
            end
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: 12345--6----7
--- request
GET /t
--- response_body
1: 123 nil nil
2: 45 nil nil
3: nil nil nil
4: 6 nil nil
5: nil nil nil
6:  nil nil
7: nil nil nil
8: nil closed 7
--- no_error_log
[error]



=== TEST 6: a send that times out ends the write half only: receiving still works, close() returns 1
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(2000, 100, 2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:setoption("sndbuf", 8192))
            assert(sock:send("x"))
            ngx.say("line: ", sock:receive())  -- the peer stops reading now
            ngx.say("big: ", sock:send(string.rep("x", 16 * 1024 * 1024)))
            ngx.say("small: ", sock:send("more"))
            ngx.say("line: ", sock:receive())
            ngx.say("close: ", sock:close())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query_len: 1
--- tcp_reply eval
"got it\nstill here\n"
--- tcp_no_close
--- request
GET /t
--- response_body
line: got it
big: niltimeout
small: nilclosed
line: still here
close: 1
--- error_log
lua tcp socket write timed out
attempt to send data on a closed socket



=== TEST 7: the read timeout counts from the last bytes received, not from the start of the read
--- config
    location /drip {
        content_by_lua_block {
            ngx.header["Content-Length"] = 6
            for i = 1, 6 do
                ngx.print(i)
                ngx.flush(true)
                ngx.sleep(0.06)
            end
        }
    }
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(200)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /drip HTTP/1.0\r\nHost: x\r\n\r\n"))
            local head = sock:receiveuntil("\r\n\r\n")
            assert(head())
            local t0 = ngx.now()
            ngx.say(sock:receive("*a"))
            ngx.update_time()
            ngx.say(ngx.now() - t0 > 0.25)
        }
    }
--- request
GET /t
--- response_body
123456
true
--- no_error_log
[error]
