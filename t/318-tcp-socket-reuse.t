use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: setkeepalive's arguments, plain or not: results and errors
--- config
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            local pool = "ka" .. ngx.var.request_id
            local function conn(p)
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", port, { pool = p or pool }))
                return s
            end
            ngx.say("none: ", conn():setkeepalive())
            ngx.say("nils: ", conn():setkeepalive(nil, nil))
            ngx.say("timeout: ", conn():setkeepalive(1000))
            ngx.say("fractions: ", conn():setkeepalive(1000.7, 3.9))
            ngx.say("strings: ", conn():setkeepalive("500", "2"))
            ngx.say("nan: ", conn():setkeepalive(0/0))
            local s = conn()
            ngx.say("negative: ", pcall(s.setkeepalive, s, -1))
            ngx.say("table: ", pcall(s.setkeepalive, s, {}))
            ngx.say("four: ", pcall(s.setkeepalive, s, 0, 1, 2))
            -- no pool for this key yet: a size below 1 is refused
            local n = conn("new" .. ngx.var.request_id)
            ngx.say("size 0.5: ", pcall(n.setkeepalive, n, 0, 0.5))
            ngx.say("size 1: ", n:setkeepalive(0, 1))
            ngx.say("again: ", n:setkeepalive())
            -- unread bytes stay with the socket
            local u = conn()
            assert(u:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
            assert(u:receive())
            ngx.say("unread: ", u:setkeepalive())
            ngx.say("unread, size: ", u:setkeepalive(10, 10))
            -- a failed receive (the server closed) closes the read half
            u = conn()
            assert(u:send("GET /back HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            local data, err = u:receiveuntil("never")()
            ngx.say("read to the end: ", data, " ", err)
            ngx.say("after a failed read: ", u:receive())
            ngx.say("read half closed: ", u:setkeepalive())
        }
    }
--- request
GET /t
--- response_body
none: 1
nils: 1
timeout: 1
fractions: 1
strings: 1
nan: 1
negative: falsebad "timeout" argument: -1
table: falsebad argument #2 to 'setkeepalive' (number expected, got table)
four: falseexpecting 1 to 3 arguments (including the object), but got 4
size 0.5: falsebad argument #3 to '?' (bad "pool_size" option value: 0)
size 1: 1
again: nilclosed
unread: nilunread data in buffer
unread, size: nilunread data in buffer
read to the end: nil closed
after a failed read: nilclosed
read half closed: nilclosed
--- no_error_log
[crit]



=== TEST 2: sockets made after others were collected start afresh (timeouts, pool options, state)
--- config
    location /slow {
        content_by_lua_block {
            ngx.sleep(0.03)
            ngx.say("late")
        }
    }
    location /t {
        content_by_lua_block {
            local port = $TEST_NGINX_SERVER_PORT
            for i = 1, 40 do
                local s = ngx.socket.tcp()
                s:settimeouts(1, 1, 1)
                assert(s:connect("127.0.0.1", port, { pool = "old" .. i, pool_size = 1 }))
                assert(s:send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
                s:close()
            end
            collectgarbage()
            collectgarbage()
            for i = 1, 3 do
                local s = ngx.socket.tcp()
                ngx.say(i, " fresh: ", s:getreusedtimes(), " ", s:send("x"))
                assert(s:connect("127.0.0.1", port))
                ngx.say(i, " reused: ", s:getreusedtimes())
                assert(s:send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
                -- a timeout of a collected socket would fire here
                ngx.say(i, " ", s:receive())
                s:close()
            end
        }
    }
--- request
GET /t
--- response_body
1 fresh: nil nilclosed
1 reused: 0
1 HTTP/1.1 200 OK
2 fresh: nil nilclosed
2 reused: 0
2 HTTP/1.1 200 OK
3 fresh: nil nilclosed
3 reused: 0
3 HTTP/1.1 200 OK
--- no_error_log
socket read timed out
[crit]



=== TEST 3: a big body's buffers are not parked with the pooled connection
--- config
    location /big.bin { root html; }
    location /t {
        content_by_lua_block {
            local ffi = require "ffi"
            ffi.cdef "int malloc_trim(size_t pad);"
            local size = 40 * 1024 * 1024
            local f = assert(io.open(ngx.config.prefix() .. "html/big.bin", "w"))
            assert(f:write(string.rep("b", size)))
            f:close()
            local function rss()
                collectgarbage()
                collectgarbage()
                -- freed heap memory back to the system, so that RSS
                -- shows what is still allocated
                ffi.C.malloc_trim(0)
                local st = assert(io.open("/proc/self/status")):read("*a")
                return tonumber(st:match("VmRSS:%s*(%d+)")) * 1024
            end
            local before = rss()
            local s = ngx.socket.tcp()
            assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT, { pool = "big" }))
            assert(s:send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
            local len
            while true do
                local l = assert(s:receive())
                if l == "" then break end
                len = len or tonumber(l:match("^[Cc]ontent%-[Ll]ength: (%d+)"))
            end
            local body = assert(s:receive(len))
            ngx.say("body: ", #body)
            body = nil
            ngx.say("pooled: ", s:setkeepalive())
            local grown = rss() - before
            ngx.say(grown < size / 4 and "freed" or "still held: " .. grown)
        }
    }
--- request
GET /t
--- response_body
body: 41943040
pooled: 1
freed
--- no_error_log
[crit]



=== TEST 4: receives of every kind take their bytes in order across many small reads
--- config
    location /data { return 200 "one\r\ntwo\nthree-0123456789--END--rest"; }
    location /t {
        lua_socket_buffer_size 7;
        content_by_lua_block {
            local s = ngx.socket.tcp()
            assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(s:send("GET /data HTTP/1.0\r\nHost: x\r\n\r\n"))
            ngx.say("status: ", s:receive())
            repeat
                local l = assert(s:receive())
            until l == ""
            ngx.say("line: ", s:receive())
            ngx.say("line: ", s:receive("*l"))
            ngx.say("size: ", s:receive(6))
            ngx.say("until: ", s:receiveuntil("--END--")())
            ngx.say("size: ", s:receive(2))
            ngx.say("all: ", s:receive("*a"))
            ngx.say("after: ", s:receive())
        }
    }
--- request
GET /t
--- response_body
status: HTTP/1.1 200 OK
line: one
line: two
size: three-
until: 0123456789
size: re
all: st
after: nilclosed
--- no_error_log
[crit]



=== TEST 5: lines and sizes taken straight from a buffer holding the whole response stay intact; CRs inside a line are dropped
--- config
    location /data {
        return 200 "a\r\nb\rc\r\n\r\nbare\nx\r\r\n0123456789tail--END--rest";
    }
    location /t {
        content_by_lua_block {
            local s = ngx.socket.tcp()
            assert(s:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(s:send("GET /data HTTP/1.0\r\nHost: x\r\n\r\n"))
            assert(s:receive())
            repeat
                local l = assert(s:receive())
            until l == ""
            -- every result kept: later receives must not change earlier strings
            local got = {}
            for _ = 1, 5 do
                got[#got + 1] = assert(s:receive())
            end
            got[#got + 1] = assert(s:receive(4))
            got[#got + 1] = assert(s:receive(6))
            got[#got + 1] = assert(s:receiveuntil("--END--")())
            got[#got + 1] = assert(s:receive("*a"))
            for i, v in ipairs(got) do
                ngx.say(i, ": [", v, "] ", #v)
            end
            ngx.say("after: ", s:receive(1))
        }
    }
--- request
GET /t
--- response_body
1: [a] 1
2: [bc] 2
3: [] 0
4: [bare] 4
5: [x] 1
6: [0123] 4
7: [456789] 6
8: [tail] 4
9: [rest] 4
after: nilclosed
--- no_error_log
[crit]
