use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: the request body as a stream: receive and receiveuntil
--- config
    location /t {
        content_by_lua_block {
            local sock, err = ngx.req.socket()
            if not sock then ngx.say("failed: ", err) return end
            sock:settimeout(1000)
            ngx.say("first: ", sock:receive(5))
            local reader = sock:receiveuntil("--")
            ngx.say("until: ", reader())
            local data, err, partial = sock:receive(100)
            ngx.say("rest: ", data, " ", err, " ", partial)
            ngx.say("again: ", sock:receive())
            ngx.say(ngx.req.socket())
        }
    }
--- request
POST /t
hello world--tail
--- response_body
first: hello
until:  world
rest: nil closed tail
again: nilclosed
nilrequest body already exists
--- error_log
attempt to receive data on a closed socket



=== TEST 2: a body that arrives in pieces, read with waits
--- config
    location /t {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            sock:settimeout(2000)
            local line = sock:receive()
            local data = sock:receive(10)
            ngx.say(line, "|", data)
        }
    }
--- raw_request eval
["POST /t HTTP/1.0\r\nHost: x\r\nContent-Length: 21\r\n\r\nfirst line\n",
 "second",
 "part"]
--- raw_request_middle_delay: 0.05
--- response_body
first line|secondpart
--- no_error_log
[error]



=== TEST 3: no body, and disallowed phases
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.req.socket())
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.req.socket)
            ngx.log(ngx.WARN, "log: ", err)
        }
    }
--- request
GET /t
--- response_body
nilno body
--- error_log
log: API disabled in the context of log_by_lua*



=== TEST 4: body socket read timeout
--- config
    location /t {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            sock:settimeout(100)
            local data, err, partial = sock:receive(10)
            ngx.say(data, " ", err, " ", partial)
        }
    }
--- raw_request eval
"POST /t HTTP/1.0\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
--- response_body
nil timeout abc
--- error_log
lua tcp socket read timed out



=== TEST 5: raw full-duplex client socket: a WebSocket-style upgrade and echo
--- config
    location /ws {
        content_by_lua_block {
            local sock, err = ngx.req.socket(true)
            if not sock then ngx.log(ngx.ERR, "raw: ", err) return end
            sock:settimeout(2000)
            assert(sock:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"))
            while true do
                local line, err = sock:receive()
                if not line then ngx.log(ngx.ERR, "receive: ", err) return end
                if line == "bye" then break end
                assert(sock:send({ "echo: ", line, "\n" }))
            end
            assert(sock:send("done\n"))
        }
    }
--- raw_request eval
["GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
 "hello\n",
 "world\nbye\n"]
--- raw_request_middle_delay: 0.05
--- error_code: 101
--- response_body
echo: hello
echo: world
done
--- no_error_log
[error]



=== TEST 6: a chunked body is refused to the body socket (its reader parses the framing); the raw socket reads it as sent
--- config
    location /t {
        content_by_lua_block {
            local body_sock, err = ngx.req.socket()
            local sock = assert(ngx.req.socket(true))
            sock:settimeout(2000)
            local framing = sock:receiveuntil("0\r\n\r\n")
            local data = framing()
            sock:send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
                      .. tostring(body_sock) .. err .. "\n" .. (data:gsub("\r\n", "|")))
        }
    }
--- raw_request eval
["POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n",
 "6;ext=1\r\n world\r\n0\r\n\r\n"]
--- raw_request_middle_delay: 0.05
--- response_body_like: ^nilchunked request bodies not supported yet\n5\|hello\|6;ext=1\| world\|$
--- no_error_log
[error]



=== TEST 7: ngx.req.socket in a subrequest raises
--- config
    location /sub {
        content_by_lua_block {
            local ok, err = pcall(ngx.req.socket)
            ngx.print(tostring(ok), " ", err)
        }
    }
    location /t {
        content_by_lua_block {
            ngx.say(ngx.location.capture("/sub").body)
        }
    }
--- request
GET /t
--- response_body_like: ^false .*attempt to read the request body in a subrequest$



=== TEST 8: after ngx.req.read_body the body socket is refused; cosockets are disabled in filters
--- config
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.req.get_body_data())
            ngx.say(ngx.req.socket())
        }
        header_filter_by_lua_block {
            local ok, err = pcall(ngx.socket.tcp)
            ngx.log(ngx.WARN, "header filter: ", err)
        }
    }
--- request
POST /t
hello
--- response_body
hello
nilrequest body already exists
--- error_log
header filter: API disabled in the context of header_filter_by_lua*



=== TEST 9: a body read to its end keeps the connection alive: a pipelined request is served
--- config
    location /t {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            local got = {}
            while true do
                local data, err, partial = sock:receive(3)
                if not data then
                    got[#got + 1] = "(" .. err .. ":" .. partial .. ")"
                    break
                end
                got[#got + 1] = data
            end
            ngx.say(table.concat(got, "|"))
        }
    }
--- pipelined_requests eval
["POST /t\nabcdefg", "POST /t\n12345"]
--- response_body eval
["abc|def|(closed:g)\n", "123|(closed:45)\n"]
--- no_error_log
[error]



=== TEST 10: Expect: 100-continue is answered when the body socket is taken
--- config
    location /t {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            ngx.say(sock:receive(4))
        }
    }
--- request
POST /t
body
--- more_headers
Expect: 100-continue
--- error_code: 100
--- response_body_like
\bbody\b
--- no_error_log
[error]



=== TEST 11: the body socket cannot send; a second body socket is refused; the raw socket waits for the body to be read
--- config
    location /t {
        content_by_lua_block {
            local out = {}
            local function say(...)
                local t = {}
                for i = 1, select("#", ...) do t[i] = tostring(select(i, ...)) end
                out[#out + 1] = table.concat(t, " ")
            end
            local sock = assert(ngx.req.socket())
            say(type(sock.send), type(sock.receive))
            say(ngx.req.socket())
            say(ngx.req.socket(true))
            say(sock:receive(4))
            local raw = assert(ngx.req.socket(true))
            say(type(raw.send))
            say(ngx.req.socket(true))
            raw:send("HTTP/1.0 200 OK\r\n\r\n" .. table.concat(out, "\n") .. "\n")
        }
    }
--- request
POST /t
body
--- response_body
nil function
nil request body already exists
nil pending request body reading in some other thread
body
function
nil duplicate call
--- no_error_log
[error]



=== TEST 12: no raw socket while nginx's body reader (in another thread) still waits for the body
--- config
    location /t {
        content_by_lua_block {
            ngx.thread.spawn(function() ngx.req.read_body() end)
            local sock, err = ngx.req.socket(true)
            ngx.log(ngx.WARN, "raw socket: ", sock, " ", err)
            ngx.exit(444)
        }
    }
--- raw_request eval
"POST /t HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nabc"
--- ignore_response
--- error_log
raw socket: nil pending request body reading in some other thread
--- no_error_log
[error]



=== TEST 13: once the raw socket is taken, ngx.say, ngx.print, ngx.flush and ngx.eof refuse
--- config
    location /t {
        content_by_lua_block {
            local raw = assert(ngx.req.socket(true))
            local out = {}
            local calls = {
                say = function() return ngx.say("x") end,
                print = function() return ngx.print("x") end,
                flush = function() return ngx.flush() end,
                eof = function() return ngx.eof() end,
            }
            for _, f in ipairs({"say", "print", "flush", "eof"}) do
                local ok, err = calls[f]()
                out[#out + 1] = f .. ": " .. tostring(ok) .. " " .. tostring(err)
            end
            raw:send("HTTP/1.0 200 OK\r\n\r\n" .. table.concat(out, "\n") .. "\n")
        }
    }
--- request
GET /t
--- response_body
say: nil raw request socket acquired
print: nil raw request socket acquired
flush: nil raw request socket acquired
eof: nil raw request socket acquired
--- no_error_log
[error]



=== TEST 14: no raw socket while output is held back for an HTTP/1.0 client
--- config
    location /t {
        content_by_lua_block {
            ngx.say("held")
            local sock, err = ngx.req.socket(true)
            ngx.log(ngx.WARN, "raw socket: ", sock, " ", err)
        }
    }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: x\r\n\r\n"
--- response_body
held
--- error_log
raw socket: nil http 1.0 buffering
--- no_error_log
[error]



=== TEST 15: with lua_check_client_abort, a receive that ends the body of a client already gone fails with "client aborted" (no later event would tell)
(/t waits first, so that the FIN has come with the request, before the
body is read from what nginx read past the header)
--- config
    location /t {
        content_by_lua_block {
            ngx.sleep(0.05)
            ngx.exec("/body")
        }
    }
    location /body {
        lua_check_client_abort on;
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            local data, err, partial = sock:receive("*a")
            ngx.log(ngx.WARN, "receive: ", data, " ", err, " [", partial, "]")
        }
    }
--- raw_request eval
"POST /t HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
--- shutdown
--- ignore_response
--- error_log
client prematurely closed connection
receive: nil client aborted [hello]
--- no_error_log
[error]



=== TEST 16: without lua_check_client_abort the same receive gets the body
--- config
    location /t {
        content_by_lua_block {
            ngx.sleep(0.05)
            ngx.exec("/body")
        }
    }
    location /body {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            local data, err, partial = sock:receive("*a")
            ngx.log(ngx.WARN, "receive: ", data, " ", err, " [", partial, "]")
        }
    }
--- raw_request eval
"POST /t HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
--- shutdown
--- ignore_response
--- error_log
receive: hello nil [nil]
--- no_error_log
[error]
client prematurely closed connection
