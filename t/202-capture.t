use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: capture Lua content: status, body, header, truncated
--- config
    location /sub {
        content_by_lua_block {
            ngx.status = 201
            ngx.say("sub body, sub: ", ngx.is_subrequest)
        }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.say("status: ", res.status)
            ngx.say("body: ", res.body)
            ngx.say("type: ", res.header["Content-Type"])
            ngx.say("truncated: ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
status: 201
body: sub body, sub: true

type: text/plain
truncated: false
--- no_error_log
[error]



=== TEST 2: capture a static file, a 404 and a 500
--- user_files
>>> file.txt
static content
--- config
    location /err {
        return 500;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/file.txt")
            ngx.say(res.status, " [", res.body, "] ", res.header["Content-Length"], " ", res.truncated)
            res = ngx.location.capture("/missing.txt")
            ngx.say(res.status, " [", res.body, "] ", res.truncated)
            res = ngx.location.capture("/err")
            ngx.say(res.status, " [", res.body, "] ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
200 [static content
] 15 false
404 [] false
500 [] false



=== TEST 3: capture a redirect
--- config
    location /moved {
        return 302 /elsewhere;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/moved")
            ngx.say(res.status, " ", res.header["Location"])
        }
    }
--- request
GET /t
--- response_body
302 /elsewhere
--- no_error_log
[error]



=== TEST 4: capture proxy_pass to the same server; the body never reaches the client
--- config
    location /backend {
        content_by_lua_block {
            ngx.say("from backend ", ngx.var.arg_x)
        }
    }
    location /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/proxy?x=1")
            ngx.print("got: ", res.status, " ", res.body)
        }
    }
--- request
GET /t
--- response_body
got: 200 from backend 1
--- no_error_log
[error]



=== TEST 5: a large response (hundreds of KB)
--- config
    location /big {
        content_by_lua_block {
            local chunk = string.rep("0123456789", 1000)
            for i = 1, 30 do
                ngx.print(chunk)
            end
        }
    }
    location /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/big;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/big")
            ngx.say("direct: ", #res.body, " ", res.truncated)
            res = ngx.location.capture("/proxy")
            ngx.say("proxied: ", #res.body, " ", res.truncated, " ", res.body == string.rep("0123456789", 30000))
        }
    }
--- request
GET /t
--- response_body
direct: 300000 false
proxied: 300000 false true
--- no_error_log
[error]



=== TEST 6: chunked upstream response and empty responses
--- config
    location /chunked {
        content_by_lua_block {
            ngx.say("a")
            ngx.flush(true)
            ngx.say("b")
        }
    }
    location /empty {
        content_by_lua_block { }
    }
    location /proxy {
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/chunked;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/proxy")
            ngx.say("chunked: [", res.body, "] ", res.header["Content-Length"])
            res = ngx.location.capture("/empty")
            ngx.say("empty: ", res.status, " [", res.body, "] ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
chunked: [a
b
] nil
empty: 200 [] false
--- no_error_log
[error]



=== TEST 7: options: method, body, args (string and table), vars and ctx
--- config
    location /echo {
        content_by_lua_block {
            ngx.ctx.seen = "sub"
            ngx.say(ngx.var.args, " dog=", ngx.var.dog, " len=", ngx.var.http_content_length)
        }
    }
    location /method {
        content_by_lua_block {
            ngx.say(ngx.var.request_method, " len=", ngx.var.http_content_length)
        }
    }
    location /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/method;
    }
    location /t {
        set $dog "";
        content_by_lua_block {
            local res = ngx.location.capture("/echo?a=1", { args = "b=2" })
            ngx.print(res.body)
            res = ngx.location.capture("/echo", { method = ngx.HTTP_POST, body = "hello",
                                                  args = { c = { "x y", true } } })
            ngx.print(res.body)
            local c = {}
            res = ngx.location.capture("/echo", { vars = { dog = "hi" }, ctx = c })
            ngx.print(res.body)
            ngx.say("ctx: ", c.seen)
            for _, m in ipairs({ ngx.HTTP_PUT, ngx.HTTP_DELETE, ngx.HTTP_HEAD }) do
                res = ngx.location.capture("/proxy", { method = m, body = "abc" })
                ngx.say("proxy: ", res.status, " [", res.body, "]")
            end
        }
    }
--- request
GET /t
--- response_body
a=1&b=2 dog= len=nil
c=x%20y&c dog= len=5
nil dog=hi len=nil
ctx: sub
proxy: 200 [PUT len=3
]
proxy: 200 [DELETE len=3
]
proxy: 200 []
--- no_error_log
[error]



=== TEST 8: variables: not shared by default, copied or shared on request
--- config
    location /sub {
        content_by_lua_block {
            ngx.say("sub sees: ", ngx.var.v)
            ngx.var.v = "changed"
        }
    }
    location /t {
        set $v "parent";
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.print(res.body)
            res = ngx.location.capture("/sub", { copy_all_vars = true })
            ngx.print(res.body)
            ngx.say("after copy: ", ngx.var.v)
            res = ngx.location.capture("/sub", { share_all_vars = true })
            ngx.print(res.body)
            ngx.say("after share: ", ngx.var.v)
        }
    }
--- request
GET /t
--- response_body
sub sees: 
sub sees: parent
after copy: parent
sub sees: parent
after share: changed



=== TEST 9: capture from rewrite and access phases
--- config
    location /sub {
        return 200 "sub";
    }
    location /t {
        rewrite_by_lua_block {
            ngx.ctx.r = ngx.location.capture("/sub").body
        }
        access_by_lua_block {
            ngx.ctx.a = ngx.location.capture("/sub?x").body
        }
        content_by_lua_block {
            ngx.say(ngx.ctx.r, " ", ngx.ctx.a)
        }
    }
--- request
GET /t
--- response_body
sub sub
--- no_error_log
[error]



=== TEST 10: nested captures
--- config
    location /leaf {
        content_by_lua_block { ngx.print("leaf") }
    }
    location /mid {
        content_by_lua_block {
            local res = ngx.location.capture("/leaf")
            ngx.print("mid(", res.body, ")")
        }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/mid")
            ngx.say("top(", res.body, ")")
        }
    }
--- request
GET /t
--- response_body
top(mid(leaf))
--- no_error_log
[error]



=== TEST 11: repeated response headers come back as arrays
--- config
    location /cookies {
        add_header Set-Cookie a=1;
        add_header Set-Cookie b=2;
        add_header X-One one;
        return 200 "c";
    }
    location /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/cookies;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/proxy")
            local c = res.header["Set-Cookie"]
            ngx.say(type(c), " ", table.concat(c, ","), " ", res.header["X-One"])
        }
    }
--- request
GET /t
--- response_body
table a=1,b=2 one
--- no_error_log
[error]



=== TEST 12: errors: named locations, bad arguments, wrong phase
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.location.capture, "@named")
            ngx.say(err)
            ok, err = pcall(ngx.location.capture)
            ngx.say(err)
            ok, err = pcall(ngx.location.capture, "/x", { method = "GET" })
            ngx.say(err)
            ok, err = pcall(ngx.location.capture_multi, {})
            ngx.say(err)
            ok, err = pcall(ngx.location.capture, "/x", "y")
            ngx.say(err)
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.location.capture, "/x")
            ngx.log(ngx.WARN, "log phase: ", err)
        }
    }
--- request
GET /t
--- response_body_like
named locations are not supported by subrequests: "@named"
.*expecting one or two arguments
.*Bad http request method
.*at least one subrequest should be specified
.*expecting table as the 2nd argument for subrequest 0, but got string
--- error_log
log phase: API disabled in the context of log_by_lua*



=== TEST 13: filters run on subrequests and see ngx.is_subrequest
--- config
    location /sub {
        header_filter_by_lua_block { ngx.status = 299 }
        body_filter_by_lua_block {
            if ngx.is_subrequest then
                ngx.arg[1] = string.upper(ngx.arg[1])
            end
        }
        content_by_lua_block { ngx.print("lower") }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.say(res.status, " ", res.body)
        }
    }
--- request
GET /t
--- response_body
299 LOWER
--- no_error_log
[error]



=== TEST 14: lua_capture_max_body_size truncates big bodies
--- config
    lua_capture_max_body_size 1k;
    location /big {
        content_by_lua_block { ngx.print(string.rep("x", 5000)) }
    }
    location /small {
        content_by_lua_block { ngx.print(string.rep("y", 1024)) }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/big")
            ngx.say(#res.body, " ", res.truncated)
            res = ngx.location.capture("/small")
            ngx.say(#res.body, " ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
1024 true
1024 false
--- no_error_log
[error]



=== TEST 15: the parent's request body is forwarded to POST, not to GET
--- config
    location /sub {
        content_by_lua_block {
            ngx.say("len=", ngx.var.http_content_length)
        }
    }
    location /t {
        client_body_buffer_size 1k;
        content_by_lua_block {
            ngx.print(ngx.location.capture("/sub", { method = ngx.HTTP_POST }).body)
            ngx.print(ngx.location.capture("/sub").body)
            ngx.print(ngx.location.capture("/sub", { always_forward_body = true }).body)
        }
    }
--- request
POST /t
hello
--- response_body
len=5
len=0
len=5



=== TEST 16: HTTP/1.0 client: captured Lua content is complete
--- config
    location /sub {
        content_by_lua_block {
            ngx.say("part1")
            ngx.flush()
            ngx.say("part2")
        }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.print(res.body)
            ngx.say(res.truncated)
        }
    }
--- request
GET /t HTTP/1.0
--- response_body
part1
part2
false
--- no_error_log
[error]



=== TEST 17: header filter sees the subrequest and the main request
--- config
    header_filter_by_lua_block {
        ngx.log(ngx.WARN, "hf: ", ngx.var.uri, " sub: ", ngx.is_subrequest)
    }
    location /sub {
        return 200 "s";
    }
    location /t {
        content_by_lua_block {
            ngx.say(ngx.location.capture("/sub").body)
        }
    }
--- request
GET /t
--- response_body
s
--- error_log
hf: /sub sub: true
hf: /t sub: false
--- no_error_log
[error]



=== TEST 18: capture inside a user coroutine; ngx.exit and errors in the subrequest
--- config
    location /forbidden {
        content_by_lua_block { ngx.exit(403) }
    }
    location /broken {
        content_by_lua_block {
            ngx.say("partial")
            ngx.flush(true)
            error("oops")
        }
    }
    location /ok {
        return 200 "fine";
    }
    location /t {
        content_by_lua_block {
            local f = coroutine.wrap(function()
                local res = ngx.location.capture("/ok")
                coroutine.yield(res.body)
                return ngx.location.capture("/forbidden").status
            end)
            ngx.say(f(), " ", f())
            local res = ngx.location.capture("/broken")
            ngx.say(res.status, " [", res.body, "] ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
fine 403
200 [partial
] true
--- error_log
oops



=== TEST 19: unbuffered proxy and an upstream that sends its body in pieces
--- config
    location /pieces {
        content_by_lua_block {
            for i = 1, 5 do
                ngx.print(string.rep(tostring(i), 10000))
                ngx.flush(true)
                ngx.sleep(0.001)
            end
        }
    }
    location /proxy {
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/pieces;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/proxy")
            local expected = {}
            for i = 1, 5 do expected[i] = string.rep(tostring(i), 10000) end
            ngx.say(res.status, " ", #res.body, " ", res.body == table.concat(expected), " ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
200 50000 true false
--- no_error_log
[error]



=== TEST 20: an upstream that closes early gives a truncated body
--- config
    location /short {
        content_by_lua_block {
            ngx.print("abc")
            ngx.flush(true)
            ngx.exit(444)
        }
    }
    location /proxy {
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/short;
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/proxy")
            ngx.say(res.status, " [", res.body, "] ", res.truncated)
        }
    }
--- request
GET /t
--- response_body
200 [abc] true



=== TEST 21: ngx.exit from a light thread while a capture is out is refused (444 and errors still abort)
--- config
    location /slow {
        content_by_lua_block { ngx.sleep(0.05) ngx.say("slow done") }
    }
    location /t {
        content_by_lua_block {
            local code = tonumber(ngx.var.arg_code)
            ngx.thread.spawn(function()
                ngx.sleep(0.01)
                local ok, err = pcall(ngx.exit, code)
                ngx.log(ngx.WARN, "exit(", code, "): ", ok, " ", err)
            end)
            local res = ngx.location.capture("/slow")
            ngx.print("capture: ", res.body)
            local ok, err = pcall(ngx.exit, 200)
            ngx.say("after: ", ok)
        }
    }
--- request eval
["GET /t?code=200", "GET /t?code=0"]
--- response_body eval
["capture: slow done\n", "capture: slow done\n"]
--- error_log eval
[qr/exit\(200\): false .*attempt to abort with pending subrequests/,
qr/exit\(0\): false .*attempt to abort with pending subrequests/]



=== TEST 22: captures of several light threads that complete before the parent runs again all resume
--- config
    location ~ ^/quick/(\d+)$ {
        return 404;
    }
    location /t {
        content_by_lua_block {
            for i = 1, 3 do
                ngx.thread.spawn(function()
                    local res = ngx.location.capture("/quick/" .. i)
                    ngx.say(i, ": ", res.status)
                end)
            end
            ngx.say("spawned")
        }
    }
--- request
GET /t
--- response_body
spawned
1: 404
2: 404
3: 404
--- no_error_log
[error]



=== TEST 23: ngx.redirect and ngx.exec from a light thread while a capture is out are refused too
--- config
    location /slow {
        content_by_lua_block { ngx.sleep(0.05) ngx.say("slow done") }
    }
    location /t {
        rewrite_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.01)
                ngx.log(ngx.WARN, "redirect: ", select(2, pcall(ngx.redirect, "/elsewhere")))
                ngx.log(ngx.WARN, "exec: ", select(2, pcall(ngx.exec, "/elsewhere")))
                ngx.log(ngx.WARN, "set_uri jump: ", select(2, pcall(ngx.req.set_uri, "/elsewhere", true)))
            end)
            local res = ngx.location.capture("/slow")
            ngx.print("capture: ", res.body)
        }
    }
--- request
GET /t
--- response_body
capture: slow done
--- error_log eval
[qr/redirect: .*attempt to abort with pending subrequests/,
qr/exec: .*attempt to abort with pending subrequests/,
qr/set_uri jump: .*attempt to abort with pending subrequests/]



=== TEST 24: a subrequest has request headers of its own: changing them leaves the parent's alone
--- config
    location = /sub {
        rewrite_by_lua_block {
            ngx.req.set_header("User-Agent", "changed")
            ngx.req.set_header("X-Mine", "sub")
            ngx.req.set_header("Cookie", "c=2")
        }
        content_by_lua_block {
            ngx.say("sub: ", ngx.var.http_user_agent, " ", ngx.var.http_x_mine, " ", ngx.var.cookie_c)
        }
    }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.print(res.body)
            local h = ngx.req.get_headers()
            ngx.say("main: ", ngx.var.http_user_agent, " ", h["user-agent"], " ",
                    tostring(h["x-mine"]), " ", ngx.var.cookie_c)
        }
    }
--- request
GET /t
--- more_headers
User-Agent: original
Cookie: c=1
--- response_body
sub: changed sub 2
main: original original nil 1
--- no_error_log
[error]



=== TEST 25: a location that captures itself ends in lua-nginx-module's cycle error
--- config
    location = /t {
        content_by_lua_block {
            ngx.location.capture("/t")
        }
    }
--- request
GET /t
--- ignore_response
--- error_log
lua subrequests cycle while processing "/t"
failed to issue subrequest: -1



=== TEST 26: each subrequest is logged at debug level with its URI and arguments
--- config
    location = /sub {
        content_by_lua_block { ngx.print(ngx.var.args) }
    }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub?a=1", { args = { b = 2 } })
            ngx.say(res.body)
        }
    }
--- request
GET /t
--- response_body
a=1&b=2
--- error_log
lua http subrequest "/sub?a=1&b=2"



=== TEST 27: a captured static file reports the headers nginx keeps as numbers: Content-Length and Last-Modified
--- user_files
>>> page.txt
twelve bytes
--- config
    location = /page.txt { root html; }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/page.txt")
            local h = res.header
            ngx.say(res.status, " ", h["Content-Length"], " ", #res.body)
            ngx.say(ngx.re.find(h["Last-Modified"], [[^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$]], "jo") ~= nil)
            ngx.say(ngx.parse_http_time(h["Last-Modified"]) <= ngx.time())
            ngx.say(h["Content-Type"], " ", h["ETag"] ~= nil, " ", h["Accept-Ranges"])  -- no range filter in subrequests
        }
    }
--- request
GET /t
--- response_body
200 13 13
true
true
text/plain true nil



=== TEST 28: a capture whose variables cannot be set logs why, is undone (it never runs), and raises lua-nginx-module's error; the request goes on, and an aborted one still ends
--- config
    location = /other {
        content_by_lua_block { ngx.say("other ran, dog = ", ngx.var.dog) }
    }
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.location.capture, "/other", { vars = { dog = "hello" } })
            ngx.say(ok, " ", err)
            local res = ngx.location.capture("/other")
            ngx.print(res.status, " ", res.body)
        }
    }
    location = /abort {
        content_by_lua_block {
            ngx.location.capture("/other", { vars = { dog = "hello" } })
        }
    }
--- pipelined_requests eval
["GET /t", "GET /abort"]
--- response_body_like eval
["\\Afalse failed to adjust the subrequest: -1\n200 other ran, dog = nil\n\\z", "500 Internal Server Error"]
--- error_code eval
[200, 500]
--- error_log
variable "dog" cannot be assigned a value (maybe you forgot to define it first?)
lua entry thread aborted: runtime error: content_by_lua(nginx.conf:
failed to adjust the subrequest: -1
