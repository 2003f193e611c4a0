use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: send accepts only strings and numbers inside tables
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            for _, v in ipairs({ {"a", true}, {"a", ngx.null}, {"a", {1, {2}}, "b"} }) do
                local ok, err = pcall(sock.send, sock, v)
                ngx.say(ok, " ", err)
            end
            ngx.say(pcall(sock.send, sock, {"a", nil, "b"}))
            ngx.say(sock:send(false))
            local ok, err = pcall(function() local r = sock:send({[0] = "x"}) return r end)
            ngx.say(err:match("bad argument.*"))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
false bad argument #2 to '?' (bad data type boolean found)
false bad argument #2 to '?' (bad data type userdata found)
true 4
falsebad argument #2 to '?' (bad data type nil found)
5
bad argument #1 to 'send' (non-array table found)
--- no_error_log
[error]



=== TEST 2: a closed socket says so before its arguments are looked at
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(pcall(sock.receive, sock, {}))
            ngx.say(pcall(sock.receiveany, sock, -1))
            ngx.say(pcall(sock.send, sock, function() end))
            ngx.say(sock:getreusedtimes())
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            ngx.say(pcall(sock.receive, sock, nil))
            ngx.say(pcall(sock.receive, sock, "*x"))
            ngx.say(pcall(sock.receive, sock, "abc"))
            ngx.say(pcall(sock.receiveany, sock, "0"))
            local ok, err = pcall(function() local r = sock:receiveany(0.5) return r end)
            ngx.say(err:match("bad argument.*"))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
truenilclosed
truenilclosed
truenilclosed
nilclosed
falsebad argument #2 to '?' (bad pattern argument)
falsebad argument #2 to '?' (bad pattern argument)
falsebad argument #2 to '?' (bad pattern argument: abc)
falsebad argument #2 to '?' (bad max argument)
bad argument #1 to 'receiveany' (bad max argument)
--- error_log
attempt to receive data on a closed socket: u:
attempt to send data on a closed socket: u:



=== TEST 3: connect: the options table is the last argument; a port is required unless unix:
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("127.0.0.1"))
            ngx.say(sock:connect("127.0.0.1", { pool = "p" }))
            ngx.say(sock:connect("127.0.0.1", nil, { pool = "p" }))
            ngx.say(sock:connect("127.0.0.1", -1))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", 80, { pool = {} }))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", 80, { pool_size = "x" }))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", { pool_size = 0 }))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", 80, { backlog = -2 }))
            ngx.say(sock:connect("UNIX:$TEST_NGINX_HTML_DIR/nope.sock", { pool = "u" }))
            ngx.say(sock:connect("127.0.0.1", "$TEST_NGINX_SERVER_PORT", { pool = "p" }))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
nilmissing the port number
nilmissing the port number
nilmissing the port number
nilbad port number: -1
falsebad argument #4 to '?' (bad "pool" option type: table)
falsebad argument #4 to '?' (bad "pool_size" option type: string)
falsebad argument #3 to '?' (bad "pool_size" option value: 0)
falsebad argument #4 to '?' (bad "backlog" option value: -2)
nilno such file or directory
1



=== TEST 4: lua_socket_log_errors off also silences connect() failures
--- config
    lua_socket_log_errors off;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:send("x"))
        }
    }
--- request
GET /t
--- response_body
nilconnection refused
nilclosed
--- no_error_log
[error]
connect() failed



=== TEST 5: the timeouts in effect show in the debug log
--- config
    lua_socket_keepalive_timeout 0;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(150, 250, 350)
            ngx.say(sock:bind("127.0.0.1"))
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /back HTTP/1.0\r\n\r\n"))
            local data = sock:receiveany(1)
            ngx.say(data, sock:receive())
            sock:close()
            sock = ngx.socket.tcp()
            local opts = { pool = "idle" }
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT, opts))
            assert(sock:setkeepalive())
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT, opts))
            assert(sock:setkeepalive(1234))
        }
    }
    location /back { return 200 "ok"; }
--- request
GET /t
--- response_body
true
HTTP/1.1 200 OK
--- error_log
lua tcp socket bind ip: 127.0.0.1
lua tcp socket connect timeout: 150
lua tcp socket send timeout: 250
lua tcp socket read timeout: 350
lua tcp socket calling receiveany() method to read at most 1 bytes
lua tcp socket keepalive timeout: unlimited
lua tcp socket keepalive timeout: 1234 ms
lua reuse socket upstream ctx



=== TEST 6: sslhandshake errors point at the caller's line
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local ok, err = pcall(function()
                local r = sock:sslhandshake(nil, nil, nil, nil, nil)
                return r
            end)
            ngx.say(ok, " ", err)
            ok, err = pcall(function()
                local r = sock.sslhandshake({}, nil)
                return r
            end)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body_like
^false content_by_lua\(nginx\.conf:\d+\):\d+: ngx.socket sslhandshake: expecting 1 ~ 5 arguments \(including the object\), but seen 6
false content_by_lua\(nginx\.conf:\d+\):\d+: bad socket



=== TEST 7: receive and send when the data and the peer's close are already there (the FFI fast paths, no waiting)
--- config
    location /two {
        content_by_lua_block { ngx.print("one\r\ntwo") }
    }
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say("sent: ", sock:send("ping\r\n"))
            ngx.say("sent empty: ", sock:send(""))
            ngx.sleep(0.2)
            ngx.say("line: ", sock:receive())
            ngx.say("line with CRs: [", sock:receive("*l"), "]")
            ngx.say("size: ", sock:receive(3.9))
            local data, err, partial = sock:receive(100)
            ngx.say("rest: ", data, " ", err, " [", partial, "]")
            ngx.say("again: ", sock:receive("*a"))
            sock:close()

            sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /two HTTP/1.0\r\nHost: x\r\n\r\n"))
            ngx.sleep(0.2)
            repeat local l = assert(sock:receive()) until l == ""
            local all = sock:receive("*a")
            ngx.say("all: [", (all:gsub("\r", "<CR>")), "]")
            ngx.say("all again: [", sock:receive("*a"), "]")
            sock:close()
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query eval
"ping\r\n"
--- tcp_reply eval
"first\r\nsec\rond\r\nabcdefgh"
--- request
GET /t
--- response_body
sent: 6
sent empty: 0
line: first
line with CRs: [second]
size: abc
rest: nil closed [defgh]
again: nilclosed
all: [one<CR>
two]
all again: []
--- error_log
attempt to receive data on a closed socket



=== TEST 8: an array of strings and numbers is sent as the one string it makes; other tables as before
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            local req = { "GET /echo HTTP/1.0\r\nHost: x\r\nX-N: ", 42, " ", 0.5, " ", 1e15, " ", -3, "", "\r\n\r\n" }
            local n = #table.concat(req)
            ngx.say("sent ", sock:send(req), " of ", n)
            ngx.say(sock:receive("*a"):match("\r\n\r\n(.*)$"))
            sock:close()
            sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            ngx.say("sent ", sock:send({ "GET /echo HTTP/1.0\r\nX-N: ", { "nes", { "ted" } }, "\r\n\r\n" }))
            ngx.say(sock:receive("*a"):match("\r\n\r\n(.*)$"))
            ngx.say(pcall(sock.send, sock, { "a", x = "b" }))
        }
    }
    location /echo {
        content_by_lua_block { ngx.print(ngx.var.http_x_n) }
    }
--- request
GET /t
--- response_body
sent 53 of 53
42 0.5 1e+15 -3
sent 35
nested
falsebad argument #2 to '?' (non-array table found)
--- no_error_log
[error]



=== TEST 9: socket methods live in the object's metatable, its own __index: a method wrapped there is the one called
--- config
    location /t {
        content_by_lua_block {
            local tcp = ngx.socket.tcp()
            local mt = getmetatable(tcp)
            ngx.say(mt.__index == mt, " ", mt.connect == tcp.connect, " ", type(mt.settimeout))
            local udp_mt = getmetatable(ngx.socket.udp())
            ngx.say(udp_mt.__index == udp_mt, " ", type(udp_mt.setpeername))
            local orig = mt.settimeout
            mt.settimeout = function(self, ms)
                ngx.say("wrapped settimeout ", ms)
                return orig(self, ms)
            end
            ngx.socket.tcp():settimeout(123)
            mt.settimeout = orig
        }
    }
--- request
GET /t
--- response_body
true true function
true function
wrapped settimeout 123
--- no_error_log
[error]
