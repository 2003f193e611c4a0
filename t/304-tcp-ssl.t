use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: sslhandshake with verification against a local ssl server, session reuse
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name test.com;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets off;
        location /s { return 200 "secure $ssl_session_reused $ssl_server_name"; }
    }
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
    lua_ssl_verify_depth 2;
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local function get(session)
                local sock = ngx.socket.tcp()
                sock:settimeout(2000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                local sess, err = sock:sslhandshake(session, "test.com", true)
                if not sess then ngx.say("handshake failed: ", err) return end
                assert(sock:send("GET /s HTTP/1.0\r\nHost: test.com\r\n\r\n"))
                local data = sock:receive("*a")
                ngx.say(data:match("secure.*$"))
                return sess
            end
            local sess = get(nil)
            ngx.say(type(sess))
            get(sess)
        }
    }
--- request
GET /t
--- response_body
secure . test.com
cdata
secure r test.com
--- no_error_log
[error]



=== TEST 2: verification failures: no trusted certificate, host mismatch; no verify works
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        location /s { return 200 "hi"; }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(nil, "test.com", true))
            ngx.say(sock:send("x"))
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false, "test.com", false))
            assert(sock:send("GET /s HTTP/1.0\r\nHost: x\r\n\r\n"))
            ngx.say((sock:receive("*a"):match("hi$")))
        }
    }
    location /mismatch {
        lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(nil, "other.com", true))
        }
    }
--- request eval
["GET /t", "GET /mismatch"]
--- response_body eval
["nil18: self-signed certificate\nnilclosed\ntrue\nhi\n",
 "nilcertificate host mismatch\n"]
--- error_log eval
[qr/lua ssl certificate verify error: \(18: self-signed certificate\)/,
 qr/lua ssl certificate does not match host "other.com"/]



=== TEST 3: sslhandshake against a plain-text server fails cleanly
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(500)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake())
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply: HTTP/1.0 400 Bad Request\r\n\r\n
--- request
GET /t
--- response_body
nilhandshake failed
--- no_error_log
[alert]



=== TEST 4: TLS connections go back to the keepalive pool (TLS 1.3 session tickets unread)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location /s { return 200 "ok"; }
    }
--- config
    lua_ssl_protocols TLSv1.2 TLSv1.3;
    location /t {
        content_by_lua_block {
            local pool = "tls" .. ngx.var.request_id
            for i = 1, 3 do
                local sock = ngx.socket.tcp()
                sock:settimeout(2000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1, { pool = pool }))
                local reused = sock:getreusedtimes()
                assert(sock:sslhandshake(false, "test.com", false))
                assert(sock:send("GET /s HTTP/1.1\r\nHost: x\r\n\r\n"))
                assert(sock:receiveuntil("\r\n\r\n")())
                ngx.say(i, ": ", reused, " ", sock:receive(2))
                ngx.say(sock:setkeepalive())
            end
        }
    }
--- request
GET /t
--- response_body
1: 0 ok
1
2: 1 ok
1
3: 2 ok
1
--- no_error_log
[error]



=== TEST 5: a client certificate (lua_ssl_certificate, lua_ssl_certificate_key)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_client_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_verify_client optional;
        location /s { return 200 "client $ssl_client_verify\n"; }
    }
--- config
    location /with {
        lua_ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        lua_ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(false, "test.com"))
            assert(sock:send("GET /s HTTP/1.0\r\nHost: x\r\n\r\n"))
            ngx.print((sock:receive("*a"):match("client %S+\n$")))
        }
    }
    location /without {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:sslhandshake(false, "test.com"))
            assert(sock:send("GET /s HTTP/1.0\r\nHost: x\r\n\r\n"))
            ngx.print((sock:receive("*a"):match("client %S+\n$")))
        }
    }
--- request eval
["GET /with", "GET /without"]
--- response_body eval
["client SUCCESS\n", "client NONE\n"]
--- no_error_log
[error]



=== TEST 6: lua_ssl_crl: an empty list lets the certificate pass, a list revoking it fails verification
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        location /s { return 200 "hi"; }
    }
--- config
    lua_ssl_trusted_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
    location /empty {
        lua_ssl_crl $TEST_NGINX_SERVER_ROOT/../cert/empty.crl;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false, "test.com", true))
        }
    }
    location /revoked {
        lua_ssl_crl $TEST_NGINX_SERVER_ROOT/../cert/revoked.crl;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false, "test.com", true))
        }
    }
--- request eval
["GET /empty", "GET /revoked"]
--- response_body eval
["true\n", "nil23: certificate revoked\n"]



=== TEST 7: lua_ssl_conf_command reaches OpenSSL
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_protocols TLSv1.2;
        location /s { return 200 "hi"; }
    }
--- config
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false))
        }
    }
    location /min13 {
        lua_ssl_conf_command MinProtocol TLSv1.3;
        lua_ssl_conf_command Options -SessionTicket;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false))
        }
    }
--- request eval
["GET /t", "GET /min13"]
--- response_body eval
["true\n", "nilhandshake failed\n"]



=== TEST 8: the session is an FFI pointer freed by the collector; a second handshake hands back the session given
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name test.com;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        location /s { return 200 "ok"; }
    }
--- config
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local sess = assert(sock:sslhandshake(nil, "test.com"))
            ngx.say(type(sess), " ", sock:sslhandshake(sess) == sess)
            ngx.say(sock:sslhandshake(false))
            sock:close()
            sess = nil
            collectgarbage()
            collectgarbage()
        }
    }
--- request
GET /t
--- response_body
cdata true
true
--- error_log
lua ssl server name: "test.com"
lua ssl save session:
lua ssl free session:
--- no_error_log
[error]



=== TEST 9: TLSv1.3 is only offered when lua_ssl_protocols names it (lua-nginx-module's default stops at TLSv1.2)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name test.com;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_protocols TLSv1.3;
        location /s { return 200 "ok"; }
    }
--- config
    location /default {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false))
        }
    }
    location /tls13 {
        lua_ssl_protocols TLSv1.2 TLSv1.3;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            ngx.say(sock:sslhandshake(false))
        }
    }
--- request eval
["GET /default", "GET /tls13"]
--- response_body eval
["nilhandshake failed\n", "true\n"]



=== TEST 10: a resumed handshake hands out the same session again: each cdata frees its own reference
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name test.com;
        ssl_certificate $TEST_NGINX_SERVER_ROOT/../cert/test.crt;
        ssl_certificate_key $TEST_NGINX_SERVER_ROOT/../cert/test.key;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets off;
        location /s { return 200 "reused=$ssl_session_reused"; }
    }
--- config
    lua_ssl_protocols TLSv1.2;
    location /t {
        content_by_lua_block {
            local function get(session)
                local sock = ngx.socket.tcp()
                sock:settimeout(2000)
                assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
                local sess = assert(sock:sslhandshake(session, "test.com"))
                assert(sock:send("GET /s HTTP/1.0\r\nHost: test.com\r\n\r\n"))
                ngx.say((sock:receive("*a")):match("reused=.*$"))
                sock:close()
                return sess
            end
            local first = get(nil)
            local second = get(first)
            -- the same SSL_SESSION, handed out twice (two references)
            ngx.say(first == second)
            first, second = nil, nil
            collectgarbage()
            collectgarbage()
        }
    }
--- request
GET /t
--- response_body
reused=.
reused=r
true
--- grep_error_log eval: qr/lua ssl (?:save|free) session/
--- grep_error_log_out
lua ssl save session
lua ssl save session
lua ssl free session
lua ssl free session
--- no_error_log
[error]
