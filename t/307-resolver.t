use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: names resolved through nginx's resolver (a local DNS stub), then from its cache
--- config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            for i = 1, 2 do
                local sock = ngx.socket.tcp()
                local ok, err = sock:connect("backend" .. ngx.var.request_id .. ".test",
                                             $TEST_NGINX_SERVER_PORT)
                ngx.say("connect: ", ok, " ", err)
                assert(sock:send("GET /back HTTP/1.0\r\nHost: x\r\n\r\n"))
                ngx.say(sock:receive())
                sock:close()
            end
        }
    }
--- request
GET /t
--- response_body
connect: 1 nil
HTTP/1.1 200 OK
connect: 1 nil
HTTP/1.1 200 OK
--- no_error_log
[error]



=== TEST 2: an unknown name: the resolver's error text
--- config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("nosuchhost.invalid", 80))
            local udp = ngx.socket.udp()
            ngx.say(udp:setpeername("nosuchhost.invalid", 53))
        }
    }
--- request
GET /t
--- response_body
nilnosuchhost.invalid could not be resolved (3: Host not found)
nilnosuchhost.invalid could not be resolved (3: Host not found)



=== TEST 3: udp setpeername and keepalive pools keyed by the name
--- config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
    location /back { return 200 "ok"; }
    location /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            ngx.say(udp:setpeername("dgram.test", $TEST_NGINX_RAND_PORT_1))
            udp:close()
            local name = "pool" .. ngx.var.request_id .. ".test"
            for i = 1, 2 do
                local sock = ngx.socket.tcp()
                assert(sock:connect(name, $TEST_NGINX_SERVER_PORT))
                ngx.say("reused: ", sock:getreusedtimes())
                assert(sock:send("GET /back HTTP/1.1\r\nHost: x\r\n\r\n"))
                assert(sock:receiveuntil("\r\n\r\n")())
                assert(sock:receive(2))
                assert(sock:setkeepalive())
            end
        }
    }
--- request
GET /t
--- response_body
1
reused: 0
reused: 1
--- no_error_log
[error]
