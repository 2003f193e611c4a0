use Test::Nginx::Socket::Lua;

# Input validation at the edges: strings that would split the request line
# or a header sent upstream, URIs that would leave the document root,
# numbers outside what the C module's integer casts give, and many header
# changes in one request. Upstream requests are checked on the wire: the
# backend (a second server) prints the request line and the X-*/Foo header
# lines it received, so an injected line shows up as one more line.

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: set_uri_args with a string escapes controls, space and DEL before proxy_pass
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            content_by_lua_block {
                ngx.say(ngx.var.request)
                for line in ngx.req.raw_header(true):gmatch("[^\r\n]+") do
                    if line:find("^X%-") then ngx.say(line) end
                end
            }
        }
    }
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.set_uri_args("a=1 HTTP/1.1\r\nX-Inj: 1\r\n\t\0\127&b=%41#?+")
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
GET /t
--- response_body
GET /t?a=1%20HTTP/1.1%0D%0AX-Inj:%201%0D%0A%09%00%7F&b=%41#?+ HTTP/1.0
--- no_error_log
[error]



=== TEST 2: set_uri_args with a number or a table: nothing raw reaches the request line
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { content_by_lua_block { ngx.say(ngx.var.request) } }
    }
--- config
    location /num {
        rewrite_by_lua_block { ngx.req.set_uri_args(12.5) }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /tab {
        rewrite_by_lua_block { ngx.req.set_uri_args({["k \r\n"] = "v\r\nX-Inj: 1"}) }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /t {
        content_by_lua_block {
            for _, u in ipairs({"/num", "/tab"}) do
                ngx.print(ngx.location.capture(u).body)
            end
        }
    }
--- request
GET /t
--- response_body
GET /num?12.5 HTTP/1.0
GET /tab?k%20%0D%0A=v%0D%0AX-Inj%3A%201 HTTP/1.0
--- no_error_log
[error]



=== TEST 3: set_uri: unsafe bytes refused (TAB allowed); a binary uri is escaped by proxy_pass
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { content_by_lua_block { ngx.say(ngx.var.request) } }
    }
--- config
    location /bin {
        rewrite_by_lua_block {
            ngx.req.set_uri("/x HTTP/1.1\r\nX-Inj: 1\r\n", false, true)
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /tab {
        rewrite_by_lua_block { ngx.req.set_uri("/a\tb #?%") }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /t {
        content_by_lua_block {
            for _, u in ipairs({"/x\r\nX-Inj: 1", "/a\0b", "/a\127\"\\\128"}) do
                ngx.say(select(2, pcall(ngx.req.set_uri, u)))
            end
            ngx.print(ngx.location.capture("/bin").body)
            ngx.print(ngx.location.capture("/tab").body)
        }
    }
--- request
GET /t
--- response_body
unsafe byte "0x0d" in uri "/x\x0D\x0AX-Inj: 1" (maybe you want to set the 'binary' argument?)
unsafe byte "0x00" in uri "/a\x00b" (maybe you want to set the 'binary' argument?)
unsafe byte "0x7f" in uri "/a\x7F\x22\x5C\x80" (maybe you want to set the 'binary' argument?)
GET /x%20HTTP/1.1%0D%0AX-Inj:%201%0D%0A HTTP/1.0
GET /a%09b%20%23%3F%25 HTTP/1.0
--- no_error_log
[error]



=== TEST 4: set_header / clear_header: CR and LF in names and values never make a second header upstream
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            content_by_lua_block {
                for line in ngx.req.raw_header(true):gmatch("[^\r\n]+") do
                    if line:find("^X%-") or line:find("^Foo") then ngx.say(line) end
                end
            }
        }
    }
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.set_header("X-A\r\nX-Inj: 1", "v\r\nX-Inj2: 2\t\127")
            ngx.req.set_header("Foo", {"a\nb", "c"})
            ngx.req.set_header("X-Gone\r\n", "x")
            ngx.req.clear_header("X-Gone\r\n")
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
GET /t
--- response_body eval
"X-A%0D%0AX-Inj%3A%201: v%0D%0AX-Inj2: 2\t%7F
Foo: a%0Ab
Foo: c
"
--- no_error_log
[error]



=== TEST 5: ngx.location.capture: the uri's query and the args string are escaped
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { content_by_lua_block { ngx.say(ngx.var.request) } }
    }
--- config
    location /sub {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub?q=1 HTTP/1.1\r\nX-Inj: 1",
                                             {args = "a=2 HTTP/1.1\r\nX-Inj: 2"})
            ngx.print(res.status, " ", res.body)
            res = ngx.location.capture("/sub", {args = {["k\r\n"] = "b c"}})
            ngx.print(res.status, " ", res.body)
        }
    }
--- request
GET /t
--- response_body
200 GET /sub?q=1%20HTTP/1.1%0D%0AX-Inj:%201&a=2%20HTTP/1.1%0D%0AX-Inj:%202 HTTP/1.0
200 GET /sub?k%0D%0A=b%20c HTTP/1.0
--- no_error_log
[error]



=== TEST 6: ngx.exec: the uri's query and the args string are escaped
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { content_by_lua_block { ngx.say(ngx.var.request) } }
    }
--- config
    location /sub {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /t {
        rewrite_by_lua_block {
            ngx.exec("/sub?q=1 HTTP/1.1\r\nX-Inj: 1", "a=2\r\nX-Inj: 2")
        }
    }
--- request
GET /t
--- response_body
GET /sub?q=1%20HTTP/1.1%0D%0AX-Inj:%201&a=2%0D%0AX-Inj:%202 HTTP/1.0
--- no_error_log
[error]



=== TEST 7: set_method takes only the method constants
--- config
    location /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(ngx.req.set_method, "GET / HTTP/1.1\r\n")))
            ngx.say(select(2, pcall(ngx.req.set_method, 12345)))
            ngx.req.set_method(ngx.HTTP_POST)
            ngx.say(ngx.req.get_method())
        }
    }
--- request
GET /t
--- response_body
bad method number
unsupported HTTP method: 12345
POST
--- no_error_log
[error]



=== TEST 8: ngx.exec refuses a uri that leaves the root: nothing outside it is served
--- config
    root html;
    location /t {
        rewrite_by_lua_block {
            ngx.exec("/../../../../../../../../../etc/passwd")
        }
    }
--- request
GET /t
--- error_code: 500
--- response_body_unlike
root:
--- error_log
unsafe URI "/../../../../../../../../../etc/passwd" was detected
unsafe uri



=== TEST 9: ngx.exec refuses NUL and dot segments, %-encoded ones too; a safe uri still works
--- config
    root html;
    location /t {
        rewrite_by_lua_block {
            for _, u in ipairs({"/echo\0x", "/a/../hello.txt", "/a/%2e%2e/%2E%2E/etc/passwd", "/a/b/.."}) do
                local ok, err = pcall(ngx.exec, u)
                ngx.log(ngx.WARN, "exec: ", ok, " ", err)
            end
            ngx.exec("/hello.txt")
        }
    }
--- user_files
>>> hello.txt
hello
--- request
GET /t
--- response_body
hello
--- grep_error_log eval: qr/exec: [^,]*|unsafe URI "\/a[^"]*"/
--- grep_error_log_out eval
qq{exec: false unsafe uri
unsafe URI "/a/../hello.txt"
exec: false unsafe uri
unsafe URI "/a/../../etc/passwd"
exec: false unsafe uri
unsafe URI "/a/b/.."
exec: false unsafe uri
}



=== TEST 10: capture and capture_multi refuse unsafe uris with the C module's message
--- config
    location /ok { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(ngx.location.capture, "/../../etc/passwd")))
            ngx.say(select(2, pcall(ngx.location.capture, "/echo\0x")))
            ngx.say(select(2, pcall(ngx.location.capture_multi, {{"/ok"}, {"/a/.."}})))
            ngx.say(ngx.location.capture("/ok").body)
        }
    }
--- request
GET /t
--- response_body
unsafe uri in argument #1: /../../etc/passwd
unsafe uri in argument #1: /echo
unsafe uri in argument #1: /a/..
ok
--- no_error_log
[error]



=== TEST 11: ngx.redirect refuses CR, LF, NUL and DEL; a relative uri stays relative
--- config
    location /t {
        rewrite_by_lua_block {
            for _, u in ipairs({"/a\r\nSet-Cookie: x=1", "/a\0b", "http://x/\127"}) do
                ngx.log(ngx.WARN, "redirect: ", select(2, pcall(ngx.redirect, u)))
            end
            ngx.redirect("/ok?a=\tb")
        }
    }
--- request
GET /t
--- error_code: 302
--- raw_response_headers_like eval
qr{\r\nLocation: /ok\?a=\tb\r\n}
--- grep_error_log eval: qr/redirect: [^,]*/
--- grep_error_log_out
redirect: unsafe byte "0x0d" in redirect uri "/a\x0D\x0ASet-Cookie: x=1"
redirect: unsafe byte "0x00" in redirect uri "/a\x00b"
redirect: unsafe byte "0x7f" in redirect uri "http://x/\x7F"



=== TEST 12: 10,000 set_header calls: distinct names, one name, clears; fields and proxy stay right
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            content_by_lua_block {
                local lines = {}
                for line in ngx.req.raw_header(true):gmatch("[^\r\n]+") do
                    if line:find("^X%-H") then lines[#lines + 1] = line end
                end
                -- $http_x_m: the first X-M before nginx 1.23, both joined since
                local x_m = ngx.config.nginx_version >= 1023000 and "1, 2" or "1"
                ngx.say("upstream: ", #lines, " ", lines[1], " ", lines[2], " ", lines[#lines], " ",
                        ngx.var.http_user_agent, " ", ngx.var.http_x_same, " ", ngx.var.http_x_m == x_m)
            }
        }
    }
--- config
    location /t {
        rewrite_by_lua_block {
            for i = 1, 10000 do ngx.req.set_header("X-H" .. i, i) end
            for i = 1, 10000 do ngx.req.set_header("X-Same", i) end
            for i = 1, 10000, 2 do ngx.req.clear_header("X-H" .. i) end
            ngx.req.set_header("User-Agent", "lua")
            for i = 2, 10000, 4 do ngx.req.set_header("X-H" .. i, "v" .. i) end
            ngx.req.set_header("X-M", "0")
            ngx.req.set_header("X-H10001", "new")
            ngx.req.set_header("X-M", {"1", "2"})
            local h = ngx.req.get_headers(0)
            local n = 0
            for k in pairs(h) do if k:find("^x%-h") then n = n + 1 end end
            ngx.log(ngx.WARN, "lua: ", n, " ", h["x-h1"], " ", h["x-h2"], " ", h["x-h4"],
                    " ", h["x-same"], " ", ngx.var.http_user_agent, " ",
                    table.concat(h["x-m"], ","))
            -- keep 25 of the split-up X-H headers for the upstream to walk
            for i = 2, 10000, 2 do
                if i % 400 ~= 2 then ngx.req.clear_header("X-H" .. i) end
            end
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
GET /t
--- response_body
upstream: 26 X-H2: v2 X-H402: v402 X-H10001: new lua 10000 true
--- error_log
lua: 5001 nil v2 4 10000 lua 1,2
--- no_error_log
[error]
--- timeout: 20



=== TEST 13: ngx.exit with a status outside the int range ends the request without a response
--- config
    location /exit {
        content_by_lua_block { ngx.exit(tonumber(ngx.var.arg_s)) }
    }
    location /t {
        content_by_lua_block {
            for _, s in ipairs({"2147483648", "4294967496", "-2147483649", "1000"}) do
                local sock = ngx.socket.tcp()
                sock:settimeout(2000)
                assert(sock:connect("127.0.0.1", ngx.var.server_port))
                assert(sock:send("GET /exit?s=" .. s .. " HTTP/1.0\r\nHost: x\r\n\r\n"))
                local data, err, partial = sock:receive("*a")
                sock:close()
                ngx.say(s, ": [", ((data or partial):match("^[^\r\n]*")), "]")
            end
            ngx.say(select(2, pcall(ngx.exit, -2)))
        }
    }
--- request
GET /t
--- response_body
2147483648: []
4294967496: []
-2147483649: []
1000: [HTTP/1.1 1000 ]
bad argument to 'ngx.exit': does not accept NGX_AGAIN or NGX_DONE



=== TEST 14: sema:wait with NaN, infinity or 2^31 ms and more times out at once
--- config
    location /t {
        content_by_lua_block {
            local sema = require("ngx.semaphore").new()
            for _, v in ipairs({0/0, math.huge, 2^31 / 1000, 2^53}) do
                ngx.update_time()
                local t0 = ngx.now()
                local ok, err = sema:wait(v)
                ngx.update_time()
                ngx.say(ok, " ", err, " ", ngx.now() - t0 < 1)
            end
            ngx.say(sema:wait(0))
            ngx.say(select(2, pcall(sema.wait, sema, -1)))
        }
    }
--- request
GET /t
--- response_body
false timeout true
false timeout true
false timeout true
false timeout true
niltimeout
no negative number
--- no_error_log
[error]



=== TEST 15: ngx.sleep refuses NaN, infinities and negative durations with the C module's numbers
--- config
    location /t {
        content_by_lua_block {
            for _, v in ipairs({0/0, math.huge, -math.huge, -1, -0.5}) do
                ngx.say(select(2, pcall(ngx.sleep, v)))
            end
            ngx.say(pcall(ngx.sleep, -0.0001))
            ngx.say(select(2, pcall(ngx.sleep, 1, 2)))
        }
    }
--- request
GET /t
--- response_body
invalid sleep duration "0"
invalid sleep duration "0"
invalid sleep duration "0"
invalid sleep duration "-1000"
invalid sleep duration "-500"
true
attempt to pass 2 arguments, but accepted 1
--- no_error_log
[error]



=== TEST 16: ngx.log: levels are C ints; out of 0..8 is "bad log level"
--- config
    location /t {
        content_by_lua_block {
            for _, v in ipairs({-1, 9, 2^31}) do
                ngx.say(select(2, pcall(function() ngx.log(v, "never") end)))
            end
            ngx.log(2^32 + 4, "wrapped to ERR")
            ngx.log(2^40, "wrapped to STDERR")
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body_like
^content_by_lua\(nginx.conf:\d+\):\d+: bad argument #1 to 'log' \(bad log level: -1\)
content_by_lua\(nginx.conf:\d+\):\d+: bad argument #1 to 'log' \(bad log level: 9\)
content_by_lua\(nginx.conf:\d+\):\d+: bad argument #1 to 'log' \(bad log level: -2147483648\)
done
--- error_log eval
[qr/\[error\] .*wrapped to ERR/, qr/\[\] .*wrapped to STDERR/]
--- no_error_log
never



=== TEST 17: timer delays as the C module converts them: negative and infinite fire at once
--- config
    location /t {
        content_by_lua_block {
            local function cb(premature, what) ngx.log(ngx.WARN, "fired ", what) end
            assert(ngx.timer.at(-1, cb, "negative"))
            assert(ngx.timer.at(math.huge, cb, "infinite"))
            ngx.say(select(2, pcall(ngx.timer.every, math.huge, cb)))
            ngx.say(select(2, pcall(ngx.timer.every, 0, cb)))
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
delay cannot be zero
delay cannot be zero
ok
--- wait: 0.1
--- error_log
fired negative
fired infinite



=== TEST 18: NaN and huge timer delays do not stop the worker's other timers
--- config
    location /t {
        content_by_lua_block {
            -- The C module arms these 2^63 ms and 2^62.97 ms away; a wait of
            -- NaN seconds becomes INT_MIN ms, behind the current time. Keys
            -- more than 2^63 apart put nginx's timer tree out of order, so
            -- there the wait never ends.
            local cb = function() end
            assert(ngx.timer.at(0/0, cb))
            assert(ngx.timer.at(2^53, cb))
            local sema = require("ngx.semaphore").new()
            ngx.update_time()
            local t0 = ngx.now()
            local ok, err = sema:wait(0/0)
            ngx.sleep(0.01)
            ngx.update_time()
            ngx.say(ok, " ", err, " ", ngx.now() - t0 < 1)
        }
    }
--- request
GET /t
--- response_body
false timeout true
--- no_error_log
[error]
--- timeout: 3



=== TEST 19: TCP cosocket timeouts outside [0, 2^31) ms are "bad timeout value"; UDP takes the default
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            for _, v in ipairs({0/0, math.huge, -1, 2^31}) do
                ngx.say(select(2, pcall(sock.settimeout, sock, v)),
                        " ", select(2, pcall(sock.settimeouts, sock, 1, 1, v)))
            end
            ngx.say(pcall(sock.settimeout, sock, 2^31 - 1))
            ngx.say(pcall(sock.settimeout, sock, "x"))
            -- UDP's settimeout has no range check there: the default is used
            local udp = ngx.socket.udp()
            ngx.say(pcall(udp.settimeout, udp, 0/0), " ", pcall(udp.settimeout, udp, -1))
        }
    }
--- request
GET /t
--- response_body
bad timeout value bad timeout value
bad timeout value bad timeout value
bad timeout value bad timeout value
bad timeout value bad timeout value
true
true
true true
--- no_error_log
[error]



=== TEST 20: shared dict exptime: NaN and infinity never expire, negative is refused
--- http_config
    lua_shared_dict d 1m;
--- config
    location /t {
        content_by_lua_block {
            local d = ngx.shared.d
            d:flush_all()
            for _, v in ipairs({0/0, math.huge, 1e308}) do
                ngx.say(d:set("k", "v", v), " ", d:get("k"), " ", d:ttl("k"))
                d:delete("k")
            end
            ngx.say(select(2, pcall(d.set, d, "k", "v", -1)))
            ngx.say(d:incr("n", 1, 0, 0/0), " ", d:ttl("n"))
            ngx.say(d:expire("n", math.huge), " ", d:ttl("n"))
            ngx.say(select(2, pcall(d.incr, d, "m", 1, 0, -1)))
        }
    }
--- request
GET /t
--- response_body
true v 0
true v 0
true v 0
bad "exptime" argument
1 0
true 0
bad "init_ttl" argument
--- no_error_log
[error]
