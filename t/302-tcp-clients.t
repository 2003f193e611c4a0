use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: redis: PING, SET/GET, a missing key, pipelining, keepalive reuse
--- http_config
    init_by_lua_block {
        local redis = {}
        package.loaded.tiny_redis = redis
        local function encode(args)
            local out = { "*", #args, "\r\n" }
            for _, a in ipairs(args) do
                a = tostring(a)
                out[#out + 1] = { "$", #a, "\r\n", a, "\r\n" }
            end
            return out
        end
        local function read_reply(sock)
            local line, err = sock:receive()
            if not line then return nil, err end
            local kind, rest = line:sub(1, 1), line:sub(2)
            if kind == "+" then return rest end
            if kind == "-" then return false, rest end
            if kind == ":" then return tonumber(rest) end
            if kind == "$" then
                local n = tonumber(rest)
                if n < 0 then return ngx.null end
                local data, err = sock:receive(n + 2)
                if not data then return nil, err end
                return data:sub(1, n)
            end
            return nil, "bad reply: " .. line
        end
        function redis.connect(pool)
            local sock = ngx.socket.tcp()
            sock:settimeout(1000)
            local ok, err = sock:connect("127.0.0.1", $TEST_NGINX_REDIS_PORT, { pool = pool })
            if not ok then return nil, err end
            return sock
        end
        function redis.call(sock, ...)
            local bytes, err = sock:send(encode({ ... }))
            if not bytes then return nil, err end
            return read_reply(sock)
        end
        function redis.pipeline(sock, cmds)
            local req = {}
            for i, c in ipairs(cmds) do req[i] = encode(c) end
            assert(sock:send(req))
            local res = {}
            for i = 1, #cmds do res[i] = read_reply(sock) end
            return res
        end
    }
--- config
    location /t {
        content_by_lua_block {
            local redis = require "tiny_redis"
            local pool = "redis" .. ngx.var.request_id
            for round = 1, 2 do
            local sock = assert(redis.connect(pool))
            ngx.say("reused: ", sock:getreusedtimes())
            ngx.say(redis.call(sock, "PING"))
            local key = "ngx_lua_test_" .. ngx.worker.pid()
            ngx.say(redis.call(sock, "SET", key, "hello world"))
            ngx.say(redis.call(sock, "GET", key))
            ngx.say(redis.call(sock, "GET", key .. "_nope") == ngx.null)
            local res = redis.pipeline(sock, {
                { "DEL", key }, { "INCR", key }, { "INCRBY", key, 41 }, { "GET", key }, { "DEL", key },
            })
            ngx.say(table.concat(res, " "))
            local ok, err = redis.call(sock, "NOSUCHCMD")
            ngx.say(ok, " ", err:match("^ERR") and "ERR" or err)
            assert(sock:setkeepalive(10000, 10))
            end
        }
    }
--- request
GET /t
--- response_body
reused: 0
PONG
OK
hello world
true
1 1 42 42 1
false ERR
reused: 1
PONG
OK
hello world
true
1 1 42 42 1
false ERR
--- no_error_log
[error]



=== TEST 2: memcached: set, get, delete, a miss, over a kept-alive connection
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(1000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_MEMCACHED_PORT))
            local key = "ngx_lua_" .. ngx.worker.pid()
            local value = "value with spaces\r\nand a newline"
            assert(sock:send({ "set ", key, " 3 0 ", #value, "\r\n", value, "\r\n" }))
            ngx.say("set: ", sock:receive())
            assert(sock:send("get " .. key .. "\r\n"))
            local header = sock:receive()
            local flags, len = header:match("^VALUE %S+ (%d+) (%d+)$")
            local data = sock:receive(tonumber(len) + 2)
            ngx.say("flags ", flags, " len ", len, " same ", data:sub(1, -3) == value)
            ngx.say("end: ", sock:receive())
            assert(sock:send("delete " .. key .. "\r\nget " .. key .. "\r\n"))
            ngx.say("delete: ", sock:receive())
            ngx.say("miss: ", sock:receive())
            assert(sock:setkeepalive())
        }
    }
--- request
GET /t
--- response_body
set: STORED
flags 3 len 32 same true
end: END
delete: DELETED
miss: END
--- no_error_log
[error]



=== TEST 3: streaming a large chunked upstream response with a coroutine.wrap body reader
--- config
    location /big {
        content_by_lua_block {
            local piece = string.rep("0123456789", 1000)
            for i = 1, 40 do
                ngx.print(piece)
                ngx.flush()
            end
        }
    }
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            local status = assert(sock:receive())
            local headers = {}
            while true do
                local line = assert(sock:receive())
                if line == "" then break end
                local k, v = line:match("^([^:]+):%s*(.*)$")
                headers[k:lower()] = v
            end
            assert(headers["transfer-encoding"] == "chunked", "not chunked")

            -- lua-resty-http's pattern: the body reader is a coroutine.wrap
            -- iterator yielding at most 8192 bytes at a time
            local body_reader = coroutine.wrap(function()
                while true do
                    local line = assert(sock:receive())
                    local size = tonumber(line, 16)
                    if size == 0 then
                        assert(sock:receive())  -- the empty trailer line
                        return
                    end
                    while size > 0 do
                        local n = size > 8192 and 8192 or size
                        local data, err = sock:receive(n)
                        if not data then error(err) end
                        size = size - n
                        coroutine.yield(data)
                    end
                    assert(sock:receive(2) == "\r\n")
                end
            end)
            local chunks = 0
            for data in body_reader do
                chunks = chunks + 1
                ngx.print(data)
                local ok, err = ngx.flush(true)
                if not ok then ngx.log(ngx.ERR, "flush: ", err) return end
            end
            sock:setkeepalive()
            ngx.log(ngx.WARN, "chunks read: ", chunks > 40 and "many" or chunks)
        }
    }
--- request
GET /t
--- response_body eval
"0123456789" x 40000
--- error_log
chunks read: many
--- no_error_log
[error]
