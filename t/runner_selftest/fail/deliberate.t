# Every block here fails on purpose, to show the failure report format:
#   TEST_NGINX_T_DIR=t/runner_selftest/fail TEST_NGINX_LUA_MODULE=none cargo test --test t
use Test::Nginx::Socket::Lua;

repeat_each(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: body, status and header mismatches
--- config
    location /t {
        add_header X-Foo bar;
        return 200 "hello\nworld\nfoo\nbar\n";
    }
--- request
GET /t
--- response_body
hello
World
foo
bar
--- response_headers
X-Foo: baz
--- error_code: 201



=== TEST 2: error log checks
--- config
    location /t { return 200 "ok\n"; }
--- request
GET /nope
--- error_code: 404
--- error_log
this message never appears
--- no_error_log
[error]



=== TEST 3: client timeout
--- config
    location /slow {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 1
--- tcp_reply: HTTP/1.0 200 OK
--- request
GET /slow
--- timeout: 0.2
--- response_body
late



=== TEST 4: nginx fails to start
--- config
    location /t { no_such_directive; }
--- request
GET /t
--- response_body
x



=== TEST 5: an eval that dies
--- config
    location /t { return 200; }
--- request eval
"GET /t?" . no_such_function("a b")
--- response_body
