use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: connect, send, receive a line and a sized chunk, close
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            local ok, err = sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1)
            if not ok then ngx.say("connect: ", err) return end
            ngx.say("connected: ", ok)
            local bytes, err = sock:send({"hello ", {"wor", "ld"}, "\r\n"})
            ngx.say("sent: ", bytes)
            local line, err = sock:receive()
            ngx.say("line: ", line)
            local line, err = sock:receive("*l")
            ngx.say("line2: ", line)
            local data, err = sock:receive(5)
            ngx.say("five: ", data)
            local data, err, partial = sock:receive(100)
            ngx.say("rest: ", data, " ", err, " [", partial, "]")
            ngx.say("close: ", sock:close())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query eval
"hello world\r\n"
--- tcp_reply eval
"first\r\nsec\rond\nabcdefgh"
--- request
GET /t
--- response_body
connected: 1
sent: 13
line: first
line2: second
five: abcde
rest: nil closed [fgh]
close: 1
--- no_error_log
[error]



=== TEST 2: receive *a reads until the server closes
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("x"))
            local data, err = sock:receive("*a")
            ngx.say(#data, " ", err, " ", data:sub(1, 3), " ", data:sub(-3))
            ngx.say(sock:receive())
            ngx.say(sock:receive())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"abc" . ("x" x 20000) . "xyz"
--- request
GET /t
--- response_body
20006 nil abc xyz
nilclosed
nilclosed
--- error_log
attempt to receive data on a closed socket



=== TEST 3: connection refused
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local ok, err = sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_2)
            ngx.say(ok, " ", err)
            ngx.say(sock:send("x"))
        }
    }
--- request
GET /t
--- response_body
nil connection refused
nilclosed
--- error_log
connect() failed (111: Connection refused)



=== TEST 4: read timeout against a server that never answers, then the socket still works
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(100)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("q"))
            local data, err, partial = sock:receive()
            ngx.say(data, " ", err, " [", partial, "]")
            local data, err = sock:receive(3)
            ngx.say(data, " ", err)
            sock:close()
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- tcp_reply: ab
--- request
GET /t
--- response_body
nil timeout [ab]
nil timeout
--- error_log
lua tcp socket read timed out



=== TEST 5: settimeouts: send/read defaults from directives, read timeout from settimeouts
--- config
    lua_socket_read_timeout 30s;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(1000, 1000, 50)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:receive(10))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- request
GET /t
--- response_body
niltimeout
--- error_log
lua tcp socket read timed out



=== TEST 6: lua_socket_read_timeout directive and lua_socket_log_errors off
--- config
    lua_socket_read_timeout 60ms;
    lua_socket_log_errors off;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:receive(10))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- request
GET /t
--- response_body
niltimeout
--- no_error_log
lua tcp socket read timed out
[error]



=== TEST 7: receiveuntil without and with inclusive, then receive the rest
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("q"))
            local r1 = sock:receiveuntil("--abc")
            local r2 = sock:receiveuntil("\r\n", {inclusive = true})
            ngx.say("[", r1(), "]")
            ngx.say("[", r2(), "]")
            ngx.say("[", r1(), "]")
            local data, err, partial = r1()
            ngx.say(data, " ", err, " [", partial, "]")
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"hello--abc--abworld\r\nfoo--abc-tail"
--- request
GET /t
--- response_body eval
"[hello]\n[--abworld\r\n]\n[foo]\nnil closed [-tail]\n"
--- no_error_log
[error]



=== TEST 8: receiveuntil iterator with a size argument streams chunks
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("q"))
            local reader = sock:receiveuntil("\r\n--boundary")
            while true do
                local data, err, partial = reader(4)
                if not data then
                    ngx.say("end: ", err)
                    break
                end
                ngx.say("chunk: [", data, "]")
            end
            ngx.say("after: ", sock:receive("*a"))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
"abcdefghij\r\n--boundary-rest"
--- request
GET /t
--- response_body
chunk: [abcd]
chunk: [efgh]
chunk: [ij]
end: nil
after: -rest
--- no_error_log
[error]



=== TEST 9: receiveany returns what is there, up to max
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("q"))
            local data = sock:receiveany(3)
            ngx.say(data)
            ngx.say(sock:receiveany(100))
            ngx.say(sock:receiveany(100))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: hello
--- request
GET /t
--- response_body
hel
lo
nilclosed
--- no_error_log
[error]



=== TEST 10: unix domain socket (an nginx server block)
--- http_config
    server {
        listen unix:$TEST_NGINX_SERVER_ROOT/logs/nginx.sock;
        location /foo { return 200 "unix ok\n"; }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local ok, err = sock:connect("unix:$TEST_NGINX_SERVER_ROOT/logs/nginx.sock")
            if not ok then ngx.say("failed: ", err) return end
            assert(sock:send("GET /foo HTTP/1.0\r\nHost: x\r\n\r\n"))
            local status = sock:receive()
            ngx.say(status)
            local body = sock:receiveuntil("\r\n\r\n")
            body()
            ngx.say(sock:receive("*a"))
            ok, err = sock:connect("unix:$TEST_NGINX_SERVER_ROOT/logs/nope.sock")
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
HTTP/1.1 200 OK
unix ok

nil no such file or directory
--- error_log
nope.sock failed



=== TEST 11: API disabled in log_by_lua, and bad arguments
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(pcall(sock.connect, nil))
            ngx.say(sock:connect("127.0.0.1", 70000))
            ngx.say(pcall(sock.receive, sock, {}))
            ngx.say(sock:receive())
            ngx.say(sock:close())
            ngx.say(type(sock), " ", ngx.socket.stream == ngx.socket.tcp)
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.socket.tcp)
            ngx.log(ngx.WARN, "log: ", err)
        }
    }
--- request
GET /t
--- response_body_like
false.*expecting 2, 3, or 4 arguments \(including the object\), but seen 1
nilbad port number: 70000
truenilclosed
nilclosed
nilclosed
table true
--- error_log
log: API disabled in the context of log_by_lua*



=== TEST 12: no resolver configured
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local ok, err = sock:connect("some.host.invalid", 80)
            ngx.say(ok, " ", err)
            ngx.say(sock:send("x"))
        }
    }
--- request
GET /t
--- response_body
nil no resolver defined to resolve "some.host.invalid"
nilclosed



=== TEST 13: ngx.socket.connect shortcut
--- config
    location /t {
        content_by_lua_block {
            local sock, err = ngx.socket.connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1)
            assert(sock:send("hi"))
            ngx.say(sock:receive("*a"))
            ngx.say(ngx.socket.connect("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: yo
--- request
GET /t
--- response_body
yo
nilconnection refused



=== TEST 14: waits inside coroutine.wrap (a body reader iterator)
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("q"))
            local reader = coroutine.wrap(function()
                while true do
                    local data, err, partial = sock:receive(4)
                    if not data then
                        if partial ~= "" then coroutine.yield(partial) end
                        return
                    end
                    coroutine.yield(data)
                end
            end)
            local parts = {}
            for chunk in reader do parts[#parts + 1] = chunk end
            ngx.say(table.concat(parts, "|"))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: abcdefghij
--- request
GET /t
--- response_body
abcd|efgh|ij
--- no_error_log
[error]



=== TEST 15: rewrite and access phases can connect too
--- config
    location /t {
        set $got "";
        rewrite_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("q"))
            ngx.var.got = sock:receive("*a")
        }
        content_by_lua_block { ngx.say("got ", ngx.var.got) }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: fromrewrite
--- request
GET /t
--- response_body
got fromrewrite
--- no_error_log
[error]



=== TEST 16: setoption, bind to a local address, a tiny lua_socket_buffer_size
--- config
    lua_socket_buffer_size 3;
    location /addr { return 200 "from $remote_addr\nline two\n"; }
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            for _, m in ipairs({ "getoption", "setoption" }) do
                local ok, err = pcall(sock[m], sock, "sndbuf", 1)
                ngx.say(m, " before connect: ", ok, " ", err:match("socket is never created nor connected$"))
            end
            ngx.say(sock:bind("127.0.0.2"))
            ngx.say(sock:bind("not an ip"))
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            ngx.say(sock:setoption("tcp-nodelay", true))
            ngx.say(sock:setoption("keepalive", 1))
            ngx.say(sock:setoption("bogus", 1))
            ngx.say(sock:setoption("keepalive"))
            ngx.say(sock:getoption("keepalive"), " ", sock:getoption("rcvbuf") > 0)
            ngx.say(sock:getoption(nil))
            assert(sock:send("GET /addr HTTP/1.0\r\nHost: x\r\n\r\n"))
            assert(sock:receiveuntil("\r\n\r\n")())
            ngx.say(sock:receive())
            ngx.say(sock:receive())
            sock:close()
            ngx.say(sock:getoption("sndbuf"))
        }
    }
--- request
GET /t
--- response_body
getoption before connect: false socket is never created nor connected
setoption before connect: false socket is never created nor connected
true
nilbad address
true
true
nilunsupported option bogus
nilmissing the "value" argument
1 true
nilmissing the "option" argument
from 127.0.0.2
line two
nilclosed
--- no_error_log
[error]



=== TEST 17: large sends wait for the socket to drain; a send timeout against a peer that stops reading
--- config
    location /sink {
        client_max_body_size 10m;
        client_body_buffer_size 10m;
        content_by_lua_block { ngx.say("sunk ", ngx.var.content_length) }
    }
    location /t {
        content_by_lua_block {
            local big = string.rep("x", 4 * 1024 * 1024)
            local sock = ngx.socket.tcp()
            sock:settimeout(5000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            ngx.say(sock:send({ "POST /sink HTTP/1.0\r\nHost: x\r\nContent-Length: ", #big, "\r\n\r\n" }))
            ngx.say(sock:send(big))
            ngx.say(sock:receive())
            sock:close()

            local stuck = ngx.socket.tcp()
            stuck:settimeouts(1000, 100, 1000)
            assert(stuck:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(stuck:setoption("sndbuf", 8192))
            ngx.say(stuck:send(string.rep(big, 4)))
            stuck:close()
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_no_close
--- request
GET /t
--- response_body
57
4194304
HTTP/1.1 200 OK
niltimeout
--- error_log
lua tcp socket write timed out
