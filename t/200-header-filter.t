use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: header filter changes the status of Lua content
--- config
    location /t {
        header_filter_by_lua_block {
            ngx.status = 201
        }
        content_by_lua_block {
            ngx.say("hi")
        }
    }
--- request
GET /t
--- error_code: 201
--- response_body
hi
--- no_error_log
[error]



=== TEST 2: header filter on a static file sees its status and ngx.var
--- user_files
>>> foo.txt
hello static
--- config
    location /foo.txt {
        header_filter_by_lua_block {
            ngx.log(ngx.WARN, "hf status: ", ngx.status, " uri: ", ngx.var.uri, " phase: ", ngx.get_phase())
        }
    }
--- request
GET /foo.txt
--- response_body
hello static
--- error_log
hf status: 200 uri: /foo.txt phase: header_filter
--- no_error_log
[error]



=== TEST 3: header filter on proxy_pass to the same server
--- config
    location /backend {
        return 202 "from backend\n";
    }
    location /t {
        header_filter_by_lua_block {
            ngx.log(ngx.WARN, "proxied status: ", ngx.status)
            ngx.status = 203
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /t
--- error_code: 203
--- response_body
from backend
--- error_log
proxied status: 202
--- no_error_log
[error]



=== TEST 4: header filter on an error page, ngx.ctx shared with the rewrite phase
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.ctx.tag = "from rewrite"
            return ngx.exit(404)
        }
        header_filter_by_lua_block {
            ngx.log(ngx.WARN, "ctx: ", ngx.ctx.tag, ", status: ", ngx.status)
        }
    }
--- request
GET /t
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
ctx: from rewrite, status: 404
--- no_error_log
[error]



=== TEST 5: inherited from the server level
--- config
    header_filter_by_lua_block {
        ngx.status = 418
    }
    location /t {
        return 200 "teapot\n";
    }
    location /lua {
        content_by_lua_block { ngx.say("teapot") }
    }
--- request eval
["GET /t", "GET /lua"]
--- error_code eval
[418, 418]
--- response_body eval
["teapot\n", "teapot\n"]



=== TEST 6: a runtime error in the header filter is logged and aborts the response
--- config
    location /t {
        header_filter_by_lua_block {
            error("boom")
        }
        content_by_lua_block { ngx.say("never") }
    }
--- request
GET /t
--- ignore_response
--- error_log
failed to run header_filter_by_lua*:
boom



=== TEST 7: yielding APIs are disabled
--- config
    location /t {
        header_filter_by_lua_block {
            local ok, err = pcall(ngx.sleep, 0.01)
            ngx.log(ngx.WARN, "sleep: ", err)
            ok, err = pcall(ngx.location.capture, "/x")
            ngx.log(ngx.WARN, "capture: ", err)
            ok, err = pcall(ngx.say, "x")
            ngx.log(ngx.WARN, "say: ", err)
        }
        content_by_lua_block { ngx.say("ok") }
    }
--- request
GET /t
--- response_body
ok
--- error_log
sleep: API disabled in the context of header_filter_by_lua*
capture: API disabled in the context of header_filter_by_lua*
say: API disabled in the context of header_filter_by_lua*



=== TEST 8: header_filter_by_lua_file
--- user_files
>>> hf.lua
ngx.status = 202
--- config
    location /t {
        header_filter_by_lua_file html/hf.lua;
        content_by_lua_block { ngx.say("file") }
    }
--- request
GET /t
--- error_code: 202
--- response_body
file



=== TEST 9: header_filter_by_lua (inline string) inside location if
--- config
    location /t {
        if ($arg_x) {
            header_filter_by_lua 'ngx.status = 206';
        }
        return 200 "x\n";
    }
--- request
GET /t?x=1
--- error_code: 206
--- response_body
x



=== TEST 10: ngx.exit in the header filter: an error status replaces the response
--- config
    location /t {
        header_filter_by_lua_block {
            if ngx.var.arg_deny then
                ngx.exit(403)
                ngx.log(ngx.WARN, "ngx.exit returned")
                return
            end
        }
        content_by_lua_block { ngx.say("allowed") }
    }
--- request eval
["GET /t?deny=1", "GET /t"]
--- error_code eval
[403, 200]
--- response_body_like eval
["403 Forbidden", "^allowed\n\$"]
--- error_log
ngx.exit returned
--- no_error_log
[error]



=== TEST 11: ngx.exit(ngx.OK) in the header filter goes on
--- config
    location /t {
        header_filter_by_lua_block {
            return ngx.exit(ngx.OK)
        }
        content_by_lua_block { ngx.say("content") }
    }
--- request
GET /t
--- response_body
content
--- no_error_log
[error]



=== TEST 12: ngx.exit(444) in the header filter aborts the response
--- config
    location /t {
        header_filter_by_lua_block {
            return ngx.exit(444)
        }
        content_by_lua_block {
            local ok, err = ngx.say("content")
            ngx.log(ngx.WARN, "say: ", err)
        }
    }
--- request
GET /t
--- ignore_response
--- error_log
say: nginx output filter error
--- no_error_log
[alert]



=== TEST 13: ngx.ctx set in content is seen by the header filter; its table is released with the request (debug line)
--- config
    location /t {
        content_by_lua_block {
            ngx.ctx.seen = "from content"
            ngx.say("ok")
        }
        header_filter_by_lua_block {
            ngx.header["X-Ctx"] = ngx.ctx.seen
        }
    }
--- request
GET /t
--- response_headers
X-Ctx: from content
--- response_body
ok
--- error_log eval
qr/lua release ngx.ctx at ref \d+/
--- no_error_log
[error]



=== TEST 14: ngx.exit in the header filter with a non-error status, and through an error_page: the status replaces the response
--- config
    error_page 582 = /bar;
    location /created {
        content_by_lua_block { ngx.say("body that is dropped") }
        header_filter_by_lua_block { return ngx.exit(201) }
    }
    location /t {
        content_by_lua_block { ngx.say("first") }
        header_filter_by_lua_block { return ngx.exit(582) }
    }
    location /bar {
        content_by_lua_block { ngx.say("bar") }
        header_filter_by_lua_block { return ngx.exit(302) }
    }
--- request eval
["GET /created", "GET /t"]
--- error_code eval
[201, 302]
--- response_body_like eval
["^\\z", "302 Found"]
--- no_error_log
[error]



=== TEST 15: with only header_filter_by_lua configured, only the header filter's debug line is logged
--- config
    location /t {
        return 200 "plain\n";
        header_filter_by_lua_block { ngx.header["X-Seen"] = "yes" }
    }
--- request
GET /t
--- response_headers
X-Seen: yes
--- response_body
plain
--- error_log
lua header filter for user lua code, uri "/t"
--- no_error_log
lua body filter for user lua code
[error]



=== TEST 16: body_filter_by_lua alone logs both filters' debug lines (its header filter is installed too)
--- config
    location /t {
        return 200 "plain\n";
        body_filter_by_lua_block { }
    }
--- request
GET /t
--- response_body
plain
--- error_log
lua header filter for user lua code, uri "/t"
lua body filter for user lua code, uri "/t"
--- no_error_log
[error]
