# vim:set ft= ts=4 sw=4 et fdm=marker:
use Test::Nginx::Socket::Lua;

#worker_connections(1014);
#master_on();
repeat_each(2);

plan tests => repeat_each() * (blocks() * 3);

$ENV{TEST_NGINX_GREETING} ||= 'howdy';
our $HtmlDir = html_dir;

no_long_string();
log_level('debug');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: sanity
--- config
    location /t {
        return 200 "hello\n";
    }
--- request
GET /t
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: one-line sections and headers
--- config
    location = /h {
        add_header X-Foo bar;
        add_header X-Empty "";
        return 200 "ok";
    }
--- request
    GET /h
--- response_headers
X-Foo: bar
!X-Missing
Content-Type: text/plain
--- response_headers_like
Content-Length: \d+
X-Foo: b.r
--- raw_response_headers_like: X-Foo: bar\r\n
--- response_body chomp
ok
--- error_code: 200



=== TEST 3: env expansion and 404
--- config
    location = /greet {
        return 200 "$TEST_NGINX_GREETING ${TEST_NGINX_GREETING} port=$TEST_NGINX_SERVER_PORT\n";
    }
--- request
GET /greet
--- response_body_like chomp
^howdy howdy port=\d+$
--- error_code: 200



=== TEST 4: not found
--- config
--- request
GET /nonexistent
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
open()
--- no_error_log
[alert]



=== TEST 5: eval request array
--- config
    location /a { return 200 "a\n"; }
    location /b { return 201 "b\n"; }
--- request eval
["GET /a", "GET /b"]
--- response_body eval
["a\n", "b\n"]
--- error_code eval
[200, 201]



=== TEST 6: pipelined requests
--- config
    location /p { return 200 "p$arg_n\n"; }
--- pipelined_requests eval
["GET /p?n=1", "GET /p?n=2", "GET /p?n=3"]
--- response_body eval
["p1\n", "p2\n", "p3\n"]



=== TEST 7: POST body with content length
--- config
    location /echo {
        client_body_buffer_size 1m;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/dump;
    }
    location /dump {
        return 200 "len=$content_length\n";
    }
--- request
POST /echo
hello world
--- more_headers
X-Test: 1
# a comment
--- response_body
len=11



=== TEST 8: chunked response through proxy
--- config
    location /c {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/d;
        proxy_http_version 1.1;
        proxy_buffering off;
    }
    location /d {
        return 200 "chunky\n";
    }
--- request
GET /c
--- response_headers
Transfer-Encoding:
--- response_body
chunky



=== TEST 9: user files and HEAD
--- config
--- user_files
>>> foo/bar.txt
file content
>>> baz.html 199801171935.33
<b>hi</b>
--- request
GET /foo/bar.txt
--- response_body
file content



=== TEST 10: HEAD request
--- config
--- user_files
>>> baz.html 199801171935.33
<b>hi</b>
--- request
HEAD /baz.html
--- response_headers
Last-Modified: Sat, 17 Jan 1998 19:35:33 GMT
--- response_body



=== TEST 11: grep_error_log
--- config
    location /g {
        return 200 "g\n";
    }
--- log_level: info
--- request
GET /g
--- response_body
g
--- grep_error_log eval
qr/using the "\w+" event method/
--- grep_error_log_out eval
["using the \"epoll\" event method\n", ""]



=== TEST 12: raw request
--- config
    location /r { return 200 "raw\n"; }
--- raw_request eval
"GET /r HTTP/1.0\r
Host: localhost\r
\r
"
--- response_body
raw



=== TEST 13: request split into packets
--- config
    location /s {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/dump;
    }
    location /dump { return 200 "len=$content_length\n"; }
--- request eval
[["POST /s\nhel", {value => "lo", delay_before => 0.01}]]
--- response_body
len=5



=== TEST 14: timeout with abort
--- config
    location /slow {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        proxy_connect_timeout 2s;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 1
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nlate"
--- request
GET /slow
--- timeout: 100ms
--- abort
--- ignore_response



=== TEST 15: tcp mock backend
--- config
    location /m {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/x;
        proxy_http_version 1.0;
        proxy_set_header Host foo;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_query eval
"GET /x HTTP/1.0\r\nHost: foo\r\nConnection: close\r\n\r\n"
--- tcp_reply eval
"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nmock\n"
--- request
GET /m
--- response_body
mock



=== TEST 16: skipped by version
--- skip_nginx: 3: < 1.99.0
--- config
--- request
GET /
--- response_body
never



=== TEST 17: SKIP section
--- SKIP
--- config
--- request
GET /
--- response_body
never



=== TEST 18: x repetition and concat
--- config
    location /big { return 200 "aaaaaaaaaa"; }
--- request
GET /big
--- response_body eval
"a" x 5 . 'a' x 5



=== TEST 19: html dir variable
--- config eval
"location /hd { return 200 '$::HtmlDir'; }"
--- request
GET /hd
--- response_body eval
$::HtmlDir



=== TEST 20: HTTP/1.0 request
--- config
    location /v { return 200 "$server_protocol\n"; }
--- request
GET /v HTTP/1.0
--- response_body
HTTP/1.0
--- response_headers
Connection: close



=== TEST 21: must_die
--- config
    location = /t {
        return a b c;
    }
--- request
    GET /t
--- must_die
--- error_log
invalid number of arguments in "return" directive
--- no_error_log
[error]



=== TEST 22: wait and timer-ish log
--- config
    location /w { return 200 "w\n"; }
--- request
GET /w
--- wait: 0.05
--- response_body
w
--- access_log
GET /w HTTP/1.1
--- no_access_log
GET /nope
