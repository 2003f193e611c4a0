use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: keepalive reuse counts against a keepalive HTTP backend (same server)
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            -- a pool of this request's own (the worker's pools outlive requests)
            local pool = "p" .. ngx.var.request_id
            for i = 1, 4 do
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT, { pool = pool }))
                local n = sock:getreusedtimes()
                assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
                local reader = sock:receiveuntil("\r\n\r\n")
                local head = assert(reader())
                local body = assert(sock:receive(2))
                ngx.say(i, ": reused ", n, " ", body)
                ngx.say(sock:setkeepalive())
            end
        }
    }
--- request
GET /t
--- response_body
1: reused 0 ok
1
2: reused 1 ok
1
3: reused 2 ok
1
4: reused 3 ok
1
--- no_error_log
[error]



=== TEST 2: pool name option, closed sockets, unread data
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", port, { pool = "mine" }))
            assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
            assert(sock:receiveuntil("\r\n\r\n")())
            assert(sock:receive(2))
            ngx.say(sock:setkeepalive())
            ngx.say(sock:setkeepalive())
            ngx.say(sock:getreusedtimes())
            -- a different pool name: a fresh connection
            assert(sock:connect("127.0.0.1", port))
            ngx.say("default pool reused: ", sock:getreusedtimes())
            sock:close()
            assert(sock:connect("127.0.0.1", port, { pool = "mine" }))
            ngx.say("mine reused: ", sock:getreusedtimes())
            assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
            assert(sock:receive())
            -- the rest of the response is still unread
            ngx.say(sock:setkeepalive())
            sock:close()
        }
    }
--- request
GET /t
--- response_body
1
nilclosed
nilclosed
default pool reused: 0
mine reused: 1
nilunread data in buffer
--- no_error_log
[error]



=== TEST 3: setkeepalive on a connection the server already closed says "closed" and pools nothing
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", port))
            assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            local reader = sock:receiveuntil("\r\n\r\n")
            assert(reader())
            assert(sock:receive(2))
            ngx.sleep(0.05)
            local ok, err = sock:setkeepalive()
            ngx.say("keepalive: ", ok, " ", err)
            ngx.sleep(0.05)
            assert(sock:connect("127.0.0.1", port))
            ngx.say("reused: ", sock:getreusedtimes())
            assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            ngx.say(sock:receive())
            -- parked while the server still has it open, then closed by the
            -- server (keepalive_timeout) while idle in the pool
            sock:close()
        }
    }
--- request
GET /t
--- response_body
keepalive: nil closed
reused: 0
HTTP/1.1 200 OK
--- no_error_log
[error]



=== TEST 4: idle connection closed by the server while pooled, and the keepalive timeout
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        keepalive_timeout 50ms;
        location /back { return 200 "ok"; }
    }
--- config
    location /t {
        content_by_lua_block {
            local function req(sock)
                assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
                local reader = sock:receiveuntil("\r\n\r\n")
                assert(reader())
                return assert(sock:receive(2))
            end
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            req(sock)
            assert(sock:setkeepalive())
            ngx.sleep(0.2)  -- the server closes the idle connection meanwhile
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say("after server close: ", sock:getreusedtimes(), " ", req(sock))
            assert(sock:setkeepalive(30))  -- our own idle timeout, shorter
            ngx.sleep(0.1)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say("after our timeout: ", sock:getreusedtimes(), " ", req(sock))
            assert(sock:setkeepalive())
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say("right away: ", sock:getreusedtimes(), " ", req(sock))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
after server close: 0 ok
after our timeout: 0 ok
right away: 1 ok
--- no_error_log
[error]



=== TEST 5: a socket kept past its request is closed there, and can connect again in another one
--- config
    location /a {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            package.loaded.saved_sock = sock
            ngx.say("saved")
        }
    }
    location /b {
        content_by_lua_block {
            local sock = package.loaded.saved_sock
            ngx.say(pcall(sock.send, sock, "x"))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
--- request eval
["GET /a", "GET /b"]
--- response_body_like eval
["saved", "truenilclosed\ntrue1"]
--- error_log
attempt to send data on a closed socket



=== TEST 6: pool_size bounds the idle connections per pool
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local socks = {}
            for i = 1, 4 do
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT, { pool = "p2", pool_size = 2 }))
                socks[i] = s
            end
            for i = 1, 4 do assert(socks[i]:setkeepalive()) end
            local reused = {}
            for i = 1, 3 do
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT, { pool = "p2" }))
                reused[i] = s:getreusedtimes()
                socks[i] = s
            end
            ngx.say(table.concat(reused, " "))
            for i = 1, 3 do socks[i]:close() end
        }
    }
--- request
GET /t
--- response_body
1 1 0
--- no_error_log
[error]



=== TEST 7: no descriptor leaks across many requests and sockets left open
--- config
    location /back { return 200 "ok"; }
    location /count {
        content_by_lua_block {
            local f = io.popen("ls /proc/" .. ngx.worker.pid() .. "/fd | wc -l")
            local n = tonumber(f:read("*l"))
            f:close()
            if ngx.var.arg_save then
                package.loaded.base_fds = n
                ngx.say("saved")
            else
                local diff = n - package.loaded.base_fds
                ngx.say(diff <= 2 and "no leak" or ("leaked " .. diff))
            end
        }
    }
    location /work {
        content_by_lua_block {
            for i = 1, 20 do
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
                if i % 4 == 0 then
                    assert(s:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
                    s:settimeout(1)
                    s:receive("*a")  -- times out: left open
                elseif i % 4 == 1 then
                    s:close()
                elseif i % 4 == 2 then
                    s:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1)  -- refused
                end
                -- i % 4 == 3: simply abandoned
            end
            ngx.say("done")
        }
    }
--- request eval
["GET /count?save=1", ("GET /work") x 150, "GET /count"]
--- response_body eval
["saved\n", ("done\n") x 150, "no leak\n"]
--- no_error_log
[alert]



=== TEST 8: lua_socket_keepalive_timeout and lua_socket_pool_size directives
--- config
    lua_socket_keepalive_timeout 30ms;
    lua_socket_pool_size 1;
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local pool = "d" .. ngx.var.request_id
            local a, b = ngx.socket.tcp(), ngx.socket.tcp()
            assert(a:connect("127.0.0.1", port, { pool = pool }))
            assert(b:connect("127.0.0.1", port, { pool = pool }))
            assert(a:setkeepalive())
            assert(b:setkeepalive())  -- the pool holds one: a is closed
            assert(a:connect("127.0.0.1", port, { pool = pool }))
            assert(b:connect("127.0.0.1", port, { pool = pool }))
            ngx.say("pool size 1: ", a:getreusedtimes(), " ", b:getreusedtimes())
            assert(a:setkeepalive())
            ngx.sleep(0.1)
            assert(a:connect("127.0.0.1", port, { pool = pool }))
            ngx.say("after the keepalive timeout: ", a:getreusedtimes())
            a:close()
            b:close()
        }
    }
--- request
GET /t
--- response_body
pool size 1: 1 0
after the keepalive timeout: 0
--- no_error_log
[error]



=== TEST 9: backlog: connects beyond pool_size wait for a slot, beyond backlog fail, queued ones time out
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local opts = { pool = "b" .. ngx.var.request_id, pool_size = 2, backlog = 1 }
            local function worker(i, hold)
                local sock = ngx.socket.tcp()
                sock:settimeouts(1000, 1000, 1000)
                local ok, err = sock:connect("127.0.0.1", port, opts)
                if not ok then return i .. ": " .. err end
                local reused = sock:getreusedtimes()
                assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
                assert(sock:receiveuntil("\r\n\r\n")())
                assert(sock:receive(2))
                ngx.sleep(hold)
                assert(sock:setkeepalive())
                return i .. ": reused " .. reused
            end
            local threads = {}
            for i = 1, 4 do
                threads[i] = ngx.thread.spawn(worker, i, 0.05)
            end
            for i = 1, 4 do
                ngx.say(select(2, ngx.thread.wait(threads[i])))
            end

            -- a queued connect times out after the connect timeout
            local opts2 = { pool = "c" .. ngx.var.request_id, pool_size = 1, backlog = 5 }
            local holder = ngx.socket.tcp()
            assert(holder:connect("127.0.0.1", port, opts2))
            local waiter = ngx.socket.tcp()
            waiter:settimeouts(50, 1000, 1000)
            ngx.say("queued: ", select(2, waiter:connect("127.0.0.1", port, opts2)))
            -- closing the holder frees the slot; failed connects give theirs back
            holder:close()
            local opts3 = { pool = "d" .. ngx.var.request_id, pool_size = 1, backlog = 0 }
            for i = 1, 2 do
                ngx.say("refused: ", select(2, waiter:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1, opts3)))
            end
            ngx.say("after close: ", waiter:connect("127.0.0.1", port, opts2))
            waiter:close()
        }
    }
--- request
GET /t
--- response_body
1: reused 0
2: reused 0
3: reused 1
4: too many waiting connect operations
queued: timeout
refused: connection refused
refused: connection refused
after close: 1
--- error_log
connect() failed (111: Connection refused)



=== TEST 10: a pool's size is set when it is created and it goes away with its last connection
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local function open()
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", port, { pool = "sized" }))
                return s
            end
            -- the first setkeepalive creates the pool with room for one
            local a, b = open(), open()
            assert(a:setkeepalive(0, 1))
            assert(b:setkeepalive(0, 5))   -- evicts a: the size stays 1
            local c, d = open(), open()
            ngx.say("first pool: ", c:getreusedtimes(), " ", d:getreusedtimes())
            c:close()
            d:close()                       -- the pool's last connection
            -- a new pool for the same key, with room for two
            local e, f = open(), open()
            assert(e:setkeepalive(0, 2))
            assert(f:setkeepalive(0, 2))
            local g, h = open(), open()
            ngx.say("second pool: ", g:getreusedtimes(), " ", h:getreusedtimes())
            g:close()
            h:close()
        }
    }
--- request
GET /t
--- response_body
first pool: 1 0
second pool: 1 1
--- error_log
lua tcp socket keepalive create connection pool for key "sized"
lua tcp socket keepalive: free connection pool for "sized"
lua tcp socket get keepalive peer: using connection
--- no_error_log
[error]



=== TEST 11: setkeepalive checks its pool size only when it creates the pool; an empty host name is refused
--- config
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local pool = "checked-" .. ngx.var.request_id
            local s = ngx.socket.tcp()
            assert(s:connect("127.0.0.1", port, { pool = pool }))
            local ok, err = pcall(s.setkeepalive, s, 0, 0)
            ngx.say(ok, " ", err)
            assert(s:setkeepalive(0, 3))
            local t = ngx.socket.tcp()
            assert(t:connect("127.0.0.1", port, { pool = pool }))
            ngx.say(t:getreusedtimes(), " ", t:setkeepalive(0, 0))
            ngx.say(t:connect("", port))
        }
    }
--- request
GET /t
--- response_body
false bad argument #3 to '?' (bad "pool_size" option value: 0)
1 1
nilfailed to parse host name "": no host
--- no_error_log
[error]
