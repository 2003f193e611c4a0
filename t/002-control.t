use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.exit with an error status gives nginx's error page
--- config
    location /t {
        content_by_lua_block { ngx.exit(403) }
    }
--- request
GET /t
--- error_code: 403
--- response_body_like: 403 Forbidden
--- no_error_log
[error]



=== TEST 2: ngx.exit(ngx.OK) in rewrite continues to content
--- config
    location /t {
        rewrite_by_lua_block { ngx.exit(ngx.OK) }
        content_by_lua_block { ngx.say("content ran") }
    }
--- request
GET /t
--- response_body
content ran
--- no_error_log
[error]



=== TEST 3: ngx.exit(200) after output ends the response
--- config
    location /t {
        content_by_lua_block {
            ngx.say("before")
            ngx.exit(200)
            ngx.say("after")
        }
    }
--- request
GET /t
--- response_body
before
--- no_error_log
[error]



=== TEST 4: ngx.exec to another location with args
--- config
    location /t {
        rewrite_by_lua_block { ngx.exec("/target", "a=1&b=2") }
    }
    location /target {
        content_by_lua_block { ngx.say("target: ", ngx.var.args) }
    }
--- request
GET /t
--- response_body
target: a=1&b=2
--- no_error_log
[error]



=== TEST 5: ngx.exec to a named location from content
--- config
    location /t {
        content_by_lua_block { ngx.exec("@named") }
    }
    location @named {
        content_by_lua_block { ngx.say("named") }
    }
--- request
GET /t
--- response_body
named
--- no_error_log
[error]



=== TEST 6: ngx.redirect with 301 sets Location
--- config
    location /t {
        content_by_lua_block { ngx.redirect("/foo", 301) }
    }
--- request
GET /t
--- error_code: 301
--- response_headers_like
Location: .*/foo$
--- no_error_log
[error]



=== TEST 7: ngx.redirect refuses other statuses
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.redirect, "/foo", 404)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed
--- no_error_log
[error]



=== TEST 8: ngx.get_phase in each phase
--- config
    location /t {
        set $p "";
        rewrite_by_lua_block { ngx.ctx.r = ngx.get_phase() }
        access_by_lua_block { ngx.ctx.a = ngx.get_phase() }
        content_by_lua_block { ngx.say(ngx.ctx.r, " ", ngx.ctx.a, " ", ngx.get_phase()) }
        log_by_lua_block { ngx.log(ngx.WARN, "phase: ", ngx.get_phase()) }
    }
--- request
GET /t
--- response_body
rewrite access content
--- error_log
phase: log



=== TEST 9: ngx.var reads, writes, and refuses unknown variables
--- config
    location /t {
        set $foo "bar";
        content_by_lua_block {
            ngx.say(ngx.var.foo, " ", ngx.var.arg_x, " ", ngx.var.nonexistent)
            ngx.var.foo = "baz"
            ngx.say(ngx.var.foo)
            local ok, err = pcall(function() ngx.var.nope = 1 end)
            ngx.say(err:find('variable "nope" not found for writing', 1, true) ~= nil)
        }
    }
--- request
GET /t?x=42
--- response_body
bar 42 nil
baz
true
--- no_error_log
[error]



=== TEST 10: ngx.status set before output
--- config
    location /t {
        content_by_lua_block {
            ngx.status = 201
            ngx.say("created ", ngx.status)
        }
    }
--- request
GET /t
--- error_code: 201
--- response_body
created 201
--- no_error_log
[error]



=== TEST 11: ngx.exit with a 2xx status after output ends the body; the status sent stays
--- config
    location /t {
        content_by_lua_block {
            ngx.status = 201
            ngx.say("created")
            return ngx.exit(ngx.HTTP_CREATED)
        }
    }
    location /late {
        content_by_lua_block {
            ngx.say("body first")
            ngx.exit(ngx.HTTP_ACCEPTED)
        }
    }
--- request eval
["GET /t", "GET /late"]
--- error_code eval
[201, 200]
--- response_body eval
["created\n", "body first\n"]
--- no_error_log
[alert]
[error]



=== TEST 12: ngx.exit with an error status after the header went out ends the response as it stands
--- config
    location /rw {
        rewrite_by_lua_block {
            ngx.send_headers()
            ngx.say("already sent")
            ngx.exit(403)
        }
    }
    location /c {
        content_by_lua_block {
            ngx.say("partial")
            ngx.exit(404)
        }
    }
--- request eval
["GET /rw", "GET /c"]
--- error_code eval
[200, 200]
--- response_body eval
["already sent\n", "partial\n"]
--- error_log eval
[qr/attempt to set status 403 via ngx.exit after sending out the response status 200/,
qr/attempt to set status 404 via ngx.exit after sending out the response status 200/]
--- no_error_log
[alert]



=== TEST 13: access code that ends grants access under "satisfy any"; ngx.exit(ngx.DECLINED) leaves the decision to the other modules
--- config
    location /granted {
        satisfy any;
        deny all;
        access_by_lua_block { local x = 1 }
        content_by_lua_block { ngx.say("in") }
    }
    location /declined {
        satisfy any;
        deny all;
        access_by_lua_block { ngx.exit(ngx.DECLINED) }
        content_by_lua_block { ngx.say("in") }
    }
    location /all {
        deny all;
        access_by_lua_block { local x = 1 }
        content_by_lua_block { ngx.say("in") }
    }
--- request eval
["GET /granted", "GET /declined", "GET /all"]
--- error_code eval
[200, 403, 403]
--- response_body_like eval
["^in\n\\z", "403 Forbidden", "403 Forbidden"]



=== TEST 14: content code that ends with ngx.exit(ngx.DECLINED) ends the request with nothing sent; after a wait, nginx goes on to the next content handler
--- config
    location /now {
        content_by_lua_block { ngx.exit(ngx.DECLINED) }
    }
    location /later {
        content_by_lua_block {
            ngx.sleep(0.001)
            ngx.exit(ngx.DECLINED)
        }
    }
--- request eval
["GET /now", "GET /later"]
--- error_code eval
["", 404]
--- response_body_like eval
["^\\z", "404 Not Found"]
--- error_log eval
qr/open\(\) ".*later" failed/
--- no_error_log
[alert]
