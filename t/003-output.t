use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.flush(true) waits and returns 1; output order is kept
--- config
    location /t {
        content_by_lua_block {
            ngx.say("part 1")
            local ok, err = ngx.flush(true)
            ngx.say("flush: ", ok, " ", err)
            ngx.print(string.rep("x", 100000))
            ok = ngx.flush(true)
            ngx.say("")
            ngx.say("flush again: ", ok)
        }
    }
--- request
GET /t
--- response_body eval
"part 1\nflush: 1 nil\n" . ("x" x 100000) . "\nflush again: 1\n"
--- no_error_log
[error]



=== TEST 2: HTTP/1.0 responses are buffered and get a Content-Length
--- config
    location /t {
        content_by_lua_block {
            ngx.say("hello")
            ngx.flush()
            ngx.say("world")
        }
    }
--- request
GET /t HTTP/1.0
--- response_headers
Content-Length: 12
--- response_body
hello
world
--- no_error_log
[error]



=== TEST 3: lua_http10_buffering off streams HTTP/1.0 responses without a length
--- config
    lua_http10_buffering off;
    location /t {
        content_by_lua_block {
            ngx.say("hello")
        }
    }
--- request
GET /t HTTP/1.0
--- response_headers
!Content-Length
--- response_body
hello
--- no_error_log
[error]



=== TEST 4: HTTP/1.1 responses are chunked
--- config
    location /t {
        content_by_lua_block { ngx.say("chunked") }
    }
--- request
GET /t
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
chunked
--- no_error_log
[error]



=== TEST 5: ngx.eof ends the response; later output reports an error
--- config
    location /t {
        content_by_lua_block {
            ngx.say("before eof")
            ngx.eof()
            local ok, err = ngx.say("after eof")
            ngx.log(ngx.WARN, "say after eof: ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
before eof
--- error_log
say after eof: nil seen eof



=== TEST 6: lua_use_default_type off sends no Content-Type
--- config
    lua_use_default_type off;
    location /t {
        content_by_lua_block { ngx.say("x") }
    }
--- request
GET /t
--- response_headers
!Content-Type
--- response_body
x



=== TEST 7: default_type is used for Lua output
--- config
    location /t {
        default_type application/json;
        content_by_lua_block { ngx.say("{}") }
    }
--- request
GET /t
--- response_headers
Content-Type: application/json
--- response_body
{}



=== TEST 8: ngx.send_headers and ngx.headers_sent
--- config
    location /t {
        content_by_lua_block {
            local before = ngx.headers_sent
            ngx.send_headers()
            ngx.say(before, " ", ngx.headers_sent)
        }
    }
--- request
GET /t
--- response_body
false true
--- no_error_log
[error]



=== TEST 9: ngx.status cannot change after the headers went out
--- config
    location /t {
        content_by_lua_block {
            ngx.say("x")
            ngx.status = 404
            ngx.say(ngx.status)
        }
    }
--- request
GET /t
--- response_body
x
200
--- error_log
attempt to set ngx.status after sending out response headers



=== TEST 10: a runtime error after the headers went out closes the connection
--- config
    location /t {
        content_by_lua_block {
            ngx.say("partial")
            ngx.flush(true)
            error("late failure")
        }
    }
--- request
GET /t
--- ignore_response
--- error_log
late failure



=== TEST 11: ngx.flush(true) really waits while limit_rate holds the output back
--- config
    location /t {
        limit_rate 300k;
        content_by_lua_block {
            ngx.print(string.rep("a", 200000))
            local t0 = ngx.var.request_time
            local ok, err = ngx.flush(true)
            ngx.print("\nflushed: ", ok, " ", err, "\n")
        }
    }
--- request
GET /t
--- response_body eval
("a" x 200000) . "\nflushed: 1 nil\n"
--- timeout: 10
--- no_error_log
[error]



=== TEST 12: a sent output buffer is reused, one still in flight is not overwritten
limit_rate lets the first 32 KB out at once and holds the rest: "b" and "c"
are printed while most of "a" waits in its buffer; "d" then fits a sent
buffer, "e" fits none (a buffer is given new memory) and goes out in pieces.
Any buffer reused too early would change bytes of the body.
--- config
    location /t {
        limit_rate 32k;
        content_by_lua_block {
            ngx.print(string.rep("a", 40000))
            ngx.print(string.rep("b", 4000))
            ngx.flush()
            ngx.print(string.rep("c", 10))
            local ok, err = ngx.flush(true)
            ngx.print(string.rep("d", 3000))
            ngx.print(string.rep("e", 41000))
            ngx.print(string.rep("f", 5))
            ngx.say("|", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body eval
("a" x 40000) . ("b" x 4000) . ("c" x 10) . ("d" x 3000) . ("e" x 41000) . "fffff|1 nil\n"
--- timeout: 10
--- no_error_log
[error]



=== TEST 13: output that limit_rate delays after ngx.flush(true) still goes out
The wait must not remove the write filter's delay timer, or the rest of the
response would stay unsent for ever.
--- config
    location /t {
        limit_rate 32k;
        content_by_lua_block {
            ngx.print(string.rep("a", 40000))
            ngx.flush(true)
            ngx.print(string.rep("b", 40000))
        }
    }
--- request
GET /t
--- response_body eval
("a" x 40000) . ("b" x 40000)
--- timeout: 10
--- no_error_log
[error]



=== TEST 14: ngx.flush reports why it has nothing to do: before any output, after eof, and for a buffered HTTP/1.0 response
--- config
    location /t {
        content_by_lua_block {
            local ok, err = ngx.flush()
            local before = tostring(ok) .. " " .. tostring(err)
            ngx.say("before: ", before)
            ok, err = ngx.flush()
            ngx.say("after say: ", tostring(ok), " ", tostring(err))
            ngx.eof()
            ok, err = ngx.flush(true)
            ngx.log(ngx.WARN, "after eof: ", tostring(ok), " ", tostring(err))
        }
    }
    location /old {
        content_by_lua_block {
            ngx.say("one")
            local ok, err = ngx.flush(true)
            ngx.say("flush: ", tostring(ok), " ", tostring(err))
        }
    }
--- request eval
["GET /t", "GET /old HTTP/1.0"]
--- response_body eval
["before: nil nothing to flush\nafter say: 1 nil\n", "one\nflush: nil buffering\n"]
--- error_log
after eof: nil seen eof



=== TEST 15: in a HEAD request ngx.say sends the header, then reports "header only"
--- config
    location /t {
        content_by_lua_block {
            local ok1, err1 = ngx.say("first")
            local ok2, err2 = ngx.say("second")
            local ok3, err3 = ngx.flush()
            ngx.log(ngx.WARN, "say: ", tostring(ok1), " ", tostring(err1), ", ",
                    tostring(ok2), " ", tostring(err2), ", flush: ", tostring(ok3), " ", tostring(err3))
        }
    }
--- request
HEAD /t
--- response_body
--- error_log
say: 1 nil, nil header only, flush: nil header only



=== TEST 16: ngx.status 101 gets its status line
--- config
    location /switch {
        content_by_lua_block {
            ngx.status = 101
            ngx.send_headers()
        }
    }
--- request
GET /switch
--- raw_response_headers_like: ^HTTP/1.1 101 Switching Protocols\r\n
--- error_code: 101



=== TEST 17: a second ngx.eof gives nil and "seen eof"
--- config
    location /t {
        content_by_lua_block {
            ngx.say("body")
            ngx.log(ngx.WARN, "first: ", tostring(ngx.eof()))
            local ok, err = ngx.eof()
            ngx.log(ngx.WARN, "second: ", tostring(ok), " ", err)
        }
    }
--- request
GET /t
--- response_body
body
--- error_log
first: 1
second: nil seen eof
--- no_error_log
[error]



=== TEST 18: an HTTP/0.9 request that set no status reads as 9
--- config
    location = /t {
        content_by_lua_block { ngx.say("status = ", ngx.status) }
    }
--- raw_request eval
"GET /t\r\n"
--- http09
--- response_body
status = 9



=== TEST 19: HEAD over HTTP/1.0: the first output sends the header at once, without a Content-Length, and ends the response
--- config
    location /t {
        content_by_lua_block {
            ngx.print("twelve bytes")
            local ok, err = ngx.eof()
            ngx.log(ngx.WARN, "eof after output: ", tostring(ok), " ", err)
        }
    }
--- request
HEAD /t HTTP/1.0
--- response_headers
!Content-Length
Content-Type: text/plain
--- response_body
--- error_log
eof after output: nil seen eof
--- no_error_log
[error]



=== TEST 20: GET over HTTP/1.0 still buffers the body and sends its Content-Length
--- config
    location /t {
        content_by_lua_block {
            ngx.print("twelve bytes")
        }
    }
--- request
GET /t HTTP/1.0
--- response_headers
Content-Length: 12
--- response_body chomp
twelve bytes



=== TEST 21: a header filter that holds the header back (image_filter) gets it once: the body Lua prints goes through
--- main_config
load_module /usr/lib/nginx/modules/ngx_http_image_filter_module.so;
--- config
    location = /gif {
        empty_gif;
    }
    location = /t {
        image_filter rotate 90;
        content_by_lua_block {
            local res = ngx.location.capture("/gif")
            ngx.header.content_type = res.header["Content-Type"]
            ngx.log(ngx.WARN, "sent before: ", ngx.headers_sent)
            ngx.print(res.body)
            ngx.log(ngx.WARN, "sent after: ", ngx.headers_sent)
        }
    }
--- request
GET /t
--- response_headers
Content-Type: image/gif
--- response_body_like: ^GIF8
--- error_log
sent before: false
sent after: true
--- skip_nginx: 4: > 1.22.1
--- no_error_log
[error]



=== TEST 22: a 304 sent from Lua gets no default Content-Type
--- config
    location /t {
        default_type text/plain;
        content_by_lua_block {
            ngx.status = ngx.HTTP_NOT_MODIFIED
        }
    }
--- request
GET /t
--- error_code: 304
--- response_headers
!Content-Type
--- response_body



=== TEST 23: a variable read after ngx.say sees the data gone out ($body_bytes_sent)
--- config
    postpone_output 0;
    location /t {
        content_by_lua_block {
            ngx.say("hello")
            ngx.say(tonumber(ngx.var.body_bytes_sent) > 0)
        }
    }
--- request
GET /t
--- response_body
hello
true
--- no_error_log
[error]



=== TEST 24: the data of ngx.say goes out when the code waits, before it ends
--- config
    postpone_output 0;
    lua_http10_buffering off;
    location /t {
        content_by_lua_block {
            ngx.say("hello")
            ngx.sleep(2)
            ngx.say("too late")
        }
    }
--- request
GET /t HTTP/1.0
--- abort
--- timeout: 0.5
--- response_body
hello
--- no_error_log
[error]



=== TEST 25: ngx.exit(444) after ngx.say: the data written went out before the connection closed
--- config
    postpone_output 0;
    lua_http10_buffering off;
    location /t {
        content_by_lua_block {
            ngx.say("hello")
            ngx.exit(444)
        }
    }
--- request
GET /t HTTP/1.0
--- response_body
hello
--- no_error_log
[error]



=== TEST 26: a flush with nothing to flush, while limit_rate holds the output back, sends no byte twice
The second ngx.flush() of each pair has no data to carry: its flags-only
buffer waits in the write filter with the data before it, and must not be
taken for a sent buffer and refilled with the next write.
--- config
    location /t {
        limit_rate 200k;
        content_by_lua_block {
            for i = 1, 4 do
                ngx.print(string.rep(string.char(96 + i), 10000))
                ngx.flush()
                ngx.flush()
            end
        }
    }
--- request
GET /t
--- response_body eval
CORE::join "", map { chr(96 + $_) x 10000 } 1 .. 4
--- timeout: 10
--- no_error_log
[error]



=== TEST 27: ngx.flush(true) waiting behind limit_rate when the client leaves returns nil, "client aborted"
--- config
    location /t {
        limit_rate 2;
        content_by_lua_block {
            ngx.say("hello, lua")
            local ok, err = ngx.flush(true)
            if not ok then
                ngx.log(ngx.WARN, "failed to flush: ", err)
                return
            end
            ngx.log(ngx.WARN, "flushed")
        }
    }
--- request
GET /t
--- abort
--- timeout: 0.2
--- ignore_response
--- wait: 2.5
--- error_log eval
[qr/writev\(\) failed .*Broken pipe/, "failed to flush: client aborted"]
--- no_error_log
flushed
[error]
[alert]
