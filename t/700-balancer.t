use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: the balancer picks one of two backends by a request argument
--- http_config
    upstream backend {
        server 0.0.0.1;   # placeholder, as in lua-nginx-module
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            local port = ngx.var.arg_to == "b" and $TEST_NGINX_RAND_PORT_1 or $TEST_NGINX_SERVER_PORT
            assert(b.set_current_peer("127.0.0.1", port))
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "backend b\n"; }
    }
--- config
    location /back { return 200 "backend a\n"; }
    location /t { proxy_pass http://backend/back; }
--- pipelined_requests eval
["GET /t?to=a", "GET /t?to=b", "GET /t"]
--- response_body eval
["backend a\n", "backend b\n", "backend a\n"]
--- no_error_log
[error]



=== TEST 2: ngx.get_phase, ngx.ctx from the access phase and ngx.var in the balancer
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            ngx.var.bal = ngx.get_phase() .. " " .. tostring(ngx.ctx.picked)
            assert(b.set_current_peer("127.0.0.1", ngx.ctx.picked))
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "from b\n"; }
    }
--- config
    location /back { return 200 "from a\n"; }
    location /t {
        set $bal "";
        access_by_lua_block { ngx.ctx.picked = $TEST_NGINX_RAND_PORT_1 }
        proxy_pass http://backend/back;
        header_filter_by_lua_block { ngx.header["X-Bal"] = ngx.var.bal }
    }
--- request
GET /t
--- response_body
from b
--- response_headers_like
X-Bal: ^balancer \d+$
--- no_error_log
[error]



=== TEST 3: set_more_tries and get_last_failure: a refused peer, then the live one
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            local state, status = b.get_last_failure()
            if not state then
                assert(b.set_more_tries(1))
                -- a closed port: connection refused
                assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
                return
            end
            ngx.ctx.failure = state .. " " .. status
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
--- config
    location /back { return 200 "live\n"; }
    location /t {
        proxy_pass http://backend/back;
        header_filter_by_lua_block { ngx.header["X-Failure"] = ngx.ctx.failure }
    }
--- request
GET /t
--- response_body
live
--- response_headers
X-Failure: failed 502
--- error_log
connect() failed (111: Connection refused)



=== TEST 4: without set_more_tries a refused peer is not retried (502)
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            if b.get_last_failure() then
                ngx.log(ngx.ERR, "balancer called again")
            end
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
        }
    }
--- config
    location /t { proxy_pass http://backend/back; }
--- request
GET /t
--- error_code: 502
--- error_log
connect() failed (111: Connection refused)
--- no_error_log
balancer called again



=== TEST 5: set_more_tries beyond proxy_next_upstream_tries is reduced, with a warning
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            if not b.get_last_failure() then
                local ok, warn = b.set_more_tries(5)
                ngx.ctx.res = tostring(ok) .. " " .. tostring(warn)
            end
            ngx.ctx.calls = (ngx.ctx.calls or 0) + 1
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
        }
    }
--- config
    location /t {
        proxy_next_upstream_tries 3;
        proxy_pass http://backend/back;
        log_by_lua_block { ngx.log(ngx.WARN, "res: ", ngx.ctx.res, ", calls: ", ngx.ctx.calls) }
    }
--- request
GET /t
--- error_code: 502
--- error_log
res: true reduced tries due to limit, calls: 3



=== TEST 6: set_timeouts: a read timeout from the balancer gives 504
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            assert(b.set_timeouts(1, 1, 0.1))
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
--- config
    location /slow { content_by_lua_block { ngx.sleep(1) ngx.say("late") } }
    location /t {
        proxy_read_timeout 10s;
        proxy_pass http://backend/slow;
    }
--- request
GET /t
--- error_code: 504
--- error_log
upstream timed out (110: Connection timed out) while reading response header from upstream



=== TEST 7: a Lua error in the balancer fails the upstream attempt
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            error("boom")
        }
    }
--- config
    location /t { proxy_pass http://backend/back; }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/failed to run balancer_by_lua\*: balancer_by_lua\(nginx\.conf:\d+\):2: boom/



=== TEST 8: ngx.sleep is refused in the balancer
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            ngx.sleep(0.01)
        }
    }
--- config
    location /t { proxy_pass http://backend/back; }
--- request
GET /t
--- error_code: 500
--- error_log
API disabled in the context of balancer_by_lua*



=== TEST 9: keepalive upstream: connections to the chosen peer are reused
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
        }
        keepalive 10;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "conn $connection_requests\n"; }
    }
--- config
    location /proxy {
        internal;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://backend/;
    }
    location /t {
        content_by_lua_block {
            -- the backend counts the requests of its connection: each proxied
            -- request must arrive on the connection of the one before
            local prev
            for i = 1, 3 do
                local res = ngx.location.capture("/proxy")
                local n = tonumber(res.body:match("conn (%d+)"))
                if prev then ngx.say(n - prev) end
                prev = n
            end
        }
    }
--- request
GET /t
--- response_body
1
1
--- no_error_log
[error]



=== TEST 10: the ngx.balancer functions outside balancer_by_lua*: no upstream, or (a proxied request's log phase) the wrong phase
--- config
    location /t {
        content_by_lua_block {
            local b = require "ngx.balancer"
            ngx.say(b.set_current_peer("127.0.0.1", 80))
            ngx.say(b.set_more_tries(1))
            ngx.say(b.get_last_failure())
            ngx.say(b.set_timeouts(1, 1, 1))
        }
    }
    location /up {
        return 200 "up\n";
    }
    location /proxied {
        proxy_pass http://127.0.0.1:$server_port/up;
        log_by_lua_block {
            local b = require "ngx.balancer"
            ngx.log(ngx.WARN, "in log: ", select(2, b.set_more_tries(1)))
        }
    }
--- request eval
["GET /t", "GET /proxied"]
--- response_body eval
["nilno upstream found
nilno upstream found
nilnilno upstream found
falseno upstream found
", "up\n"]
--- error_log
in log: API disabled in the current context
--- no_error_log
[error]



=== TEST 11: balancer_by_lua_file, and no set_current_peer falls back to the upstream's servers
--- user_files
>>> bal.lua
ngx.ctx.ran = true
--- http_config
    upstream backend {
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        balancer_by_lua_file html/bal.lua;
    }
--- config
    location /back { return 200 "round robin\n"; }
    location /t {
        proxy_pass http://backend/back;
        header_filter_by_lua_block { ngx.header["X-Ran"] = tostring(ngx.ctx.ran) }
    }
--- request
GET /t
--- response_body
round robin
--- response_headers
X-Ran: true
--- no_error_log
[error]



=== TEST 12: set_current_peer with a bad address returns nil and the parser's error
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            local ok, err = b.set_current_peer("example.com", 80)
            ngx.log(ngx.WARN, "set: ", tostring(ok), " ", err)
            assert(b.set_current_peer("127.0.0.1:$TEST_NGINX_SERVER_PORT"))
        }
    }
--- config
    location /back { return 200 "ok\n"; }
    location /t { proxy_pass http://backend/back; }
--- request
GET /t
--- response_body
ok
--- error_log
set: nil no host allowed



=== TEST 13: ngx.exit in the balancer: ngx.OK goes on with the upstream's servers, a status fails
--- http_config
    upstream backend {
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
        balancer_by_lua_block {
            if ngx.var.arg_fail then
                return ngx.exit(403)
            end
            return ngx.exit(ngx.OK)
        }
    }
--- config
    location /back { return 200 "ok\n"; }
    location /t { proxy_pass http://backend/back; }
--- pipelined_requests eval
["GET /t", "GET /t?fail=1"]
--- error_code eval
[200, 500]
--- response_body_like eval
["^ok\n\$", "500 Internal Server Error"]



=== TEST 14: the chosen peer is the upstream address nginx logs on errors
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
        }
    }
--- config
    location /t { proxy_pass http://backend/back; }
--- request
GET /t
--- error_code: 502
--- error_log eval
qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream, .*upstream: "http:\/\/127\.0\.0\.1:$ENV{TEST_NGINX_RAND_PORT_2}\/back"/



=== TEST 15: recreate_request rebuilds the request with variables changed in the balancer
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            ngx.var.hdr = "new"
            if ngx.var.arg_recreate then
                assert(b.recreate_request())
            end
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
--- config
    location /back {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("hdr: ", ngx.var.http_x_hdr, ", body: ", ngx.req.get_body_data())
        }
    }
    location /t {
        set $hdr "old";
        proxy_set_header X-Hdr $hdr;
        proxy_pass http://backend/back;
    }
--- pipelined_requests eval
["POST /t\nhello", "POST /t?recreate=1\nhello"]
--- response_body eval
["hdr: old, body: hello\n", "hdr: new, body: hello\n"]
--- no_error_log
[error]



=== TEST 16: set_current_peer with a unix: socket path
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            assert(b.set_current_peer("unix:$TEST_NGINX_HTML_DIR/b.sock"))
        }
    }
    server {
        listen unix:$TEST_NGINX_HTML_DIR/b.sock;
        location / { return 200 "over unix\n"; }
    }
--- config
    location /t { proxy_pass http://backend/; }
--- request
GET /t
--- response_body
over unix
--- no_error_log
[error]



=== TEST 17: request APIs work in the balancer, output and cosockets do not
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            ngx.log(ngx.WARN, "method: ", ngx.req.get_method(), ", foo header: ", ngx.req.get_headers()["foo"],
                    ", arg: ", ngx.req.get_uri_args()["a"])
            ngx.log(ngx.WARN, "say: ", select(2, pcall(ngx.say, "x")))
            ngx.log(ngx.WARN, "tcp: ", select(2, pcall(function() return ngx.socket.tcp():connect("127.0.0.1", 1) end)))
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
--- config
    location /back { return 200 "ok\n"; }
    location /t { proxy_pass http://backend/back; }
--- request
GET /t?a=1
--- more_headers
Foo: bar
--- response_body
ok
--- error_log eval
[
"method: GET, foo header: bar, arg: 1 while connecting to upstream",
"say: API disabled in the context of balancer_by_lua*",
qr/tcp: balancer_by_lua\(nginx\.conf:\d+\):6: API disabled in the context of balancer_by_lua\*/,
]
--- no_error_log
[error]



=== TEST 18: get_last_failure reports "next" with the status for proxy_next_upstream http_404
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block {
            local b = require "ngx.balancer"
            local state, status = b.get_last_failure()
            if not state then
                assert(b.set_more_tries(1))
                assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                return
            end
            ngx.ctx.failure = state .. " " .. status
            assert(b.set_current_peer("127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 404; }
    }
--- config
    location /back { return 200 "second\n"; }
    location /t {
        proxy_next_upstream http_404;
        proxy_pass http://backend/back;
        header_filter_by_lua_block { ngx.header["X-Failure"] = ngx.ctx.failure }
    }
--- request
GET /t
--- response_body
second
--- response_headers
X-Failure: next 404
--- no_error_log
[error]



=== TEST 19: a second balancer_by_lua* in one upstream is a configuration error
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block { }
        balancer_by_lua_file html/a.lua;
    }
--- config
    location /t { proxy_pass http://backend; }
--- must_die
--- error_log
"balancer_by_lua_file" directive is duplicate



=== TEST 20: a Lua syntax error in balancer_by_lua_block fails the request with 500, not the configuration
--- http_config
    upstream backend {
        server 0.0.0.1;
        balancer_by_lua_block { if then end }
    }
--- config
    location /t { proxy_pass http://backend; }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/failed to load inlined Lua code: balancer_by_lua\(nginx\.conf:\d+\):1:/



=== TEST 21: a balancing method before balancer_by_lua* is replaced (nginx -t warns "load balancing method redefined")
--- http_config
    upstream backend {
        server 0.0.0.1;
        least_conn;
        balancer_by_lua_block {
            assert(require("ngx.balancer").set_current_peer("127.0.0.1", $TEST_NGINX_SERVER_PORT))
        }
    }
--- config
    location /back { return 200 "ok\n"; }
    location /t { proxy_pass http://backend/back; }
--- request
GET /t
--- response_body
ok
--- no_error_log
[error]
