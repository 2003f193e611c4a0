use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: set, read and clear ngx.header fields; underscores become dashes
--- config
    location /t {
        content_by_lua_block {
            ngx.header.X_Foo = "bar"
            ngx.header["X-Num"] = 42
            ngx.header.X_Gone = "x"
            ngx.header.X_Gone = nil
            ngx.header.content_type = "text/plain; charset=utf-8"
            ngx.say(ngx.header.x_foo, " ", ngx.header["X-FOO"], " ", ngx.header.X_Num, " ",
                    ngx.header.x_gone, " ", ngx.header["Content-Type"])
        }
    }
--- request
GET /t
--- response_headers
X-Foo: bar
X-Num: 42
!X-Gone
Content-Type: text/plain; charset=utf-8
--- response_body
bar bar 42 nil text/plain; charset=utf-8
--- no_error_log
[error]



=== TEST 2: multi-value headers; replacing and reading them back
--- config
    location /t {
        content_by_lua_block {
            ngx.header.Set_Cookie = {"a=1", "b=2"}
            local v = ngx.header.set_cookie
            ngx.header.X_Multi = {"x"}
            ngx.header.X_Multi = {"y", "z"}
            ngx.header.X_Empty = {}
            ngx.say(type(v), " ", v[1], " ", v[2], " ", table.concat(ngx.header.x_multi, ","),
                    " ", ngx.header.x_empty)
        }
    }
--- request
GET /t
--- raw_response_headers_like chomp
Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n.*X-Multi: y\r\nX-Multi: z\r\n
--- response_body
table a=1 b=2 y,z nil
--- no_error_log
[error]



=== TEST 3: lua_transform_underscores_in_response_headers off keeps underscores
--- config
    lua_transform_underscores_in_response_headers off;
    location /t {
        content_by_lua_block {
            ngx.header.X_Under = "1"
            ngx.say(ngx.header.X_Under, " ", ngx.header["X-Under"])
        }
    }
--- request
GET /t
--- raw_response_headers_like chomp
X_Under: 1\r\n
--- response_body
1 nil
--- no_error_log
[error]



=== TEST 4: dedicated fields: Content-Length, Location, Last-Modified, Cache-Control, Server
--- config
    location /t {
        content_by_lua_block {
            ngx.header.content_length = 33
            ngx.header.Last_Modified = ngx.http_time(1290079655)
            ngx.header.Cache_Control = "no-cache"
            ngx.header.Server = "lua-server"
            ngx.say(ngx.header.content_length, " ", ngx.header.last_modified)
        }
    }
    location /redir {
        content_by_lua_block {
            ngx.header.Location = "http://example.com/x"
            ngx.status = 302
            ngx.say("moved")
        }
    }
--- pipelined_requests eval
["GET /t", "GET /redir"]
--- response_headers eval
[{"Content-Length" => "33", "Last-Modified" => "Thu, 18 Nov 2010 11:27:35 GMT",
  "Cache-Control" => "no-cache", "Server" => "lua-server"},
 {"Location" => "http://example.com/x"}]
--- response_body eval
["33 Thu, 18 Nov 2010 11:27:35 GMT\n", "moved\n"]
--- error_code eval
[200, 302]
--- no_error_log
[error]



=== TEST 5: clearing Content-Length and Last-Modified; bad Content-Length
--- config
    location /t {
        content_by_lua_block {
            ngx.header.content_length = 100
            ngx.header.content_length = nil
            ngx.header.Last_Modified = ngx.http_time(1290079655)
            ngx.header.Last_Modified = nil
            local ok, err = pcall(function() ngx.header.content_length = "abc" end)
            ngx.say(ngx.header.content_length, " ", ngx.header.last_modified)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_headers
!Content-Length
!Last-Modified
--- response_body_like
^nil nil
false.*invalid Content-Length header value
--- no_error_log
[error]



=== TEST 6: CR/LF in values and names never split a header
--- config
    location /t {
        content_by_lua_block {
            ngx.header.X_Evil = "a\r\nX-Injected: 1"
            ngx.header["X-Bad\r\nName"] = "v"
            ngx.header.X_List = {"ok", "b\nX-Injected2: 2"}
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_headers
X-Evil: a%0D%0AX-Injected: 1
!X-Injected
!X-Injected2
--- raw_response_headers_like chomp
X-Bad%0D%0AName: v\r\n
--- response_body
ok
--- no_error_log
[error]



=== TEST 7: setting a header after the response header went out only logs an error
--- config
    location /t {
        content_by_lua_block {
            ngx.say("body")
            ngx.flush(true)
            ngx.header.X_Late = "1"
            ngx.say("after: ", ngx.header.X_Late)
        }
    }
--- request
GET /t
--- response_headers
!X-Late
--- response_body
body
after: nil
--- error_log
attempt to set ngx.header.HEADER after sending out response headers



=== TEST 8: ngx.resp.get_headers: lower-cased, multi-value, limit, raw
--- config
    location /t {
        content_by_lua_block {
            ngx.header.X_A = {"1", "2"}
            ngx.header.content_type = "text/x"
            local h = ngx.resp.get_headers()
            ngx.print(h["x-a"][1], h["x-a"][2], " ", h.X_A[2], " ", h["content-type"], " ", h.content_length, "\n")
            local t, err = ngx.resp.get_headers(2)
            local n = 0
            for _ in pairs(t) do n = n + 1 end
            ngx.print(n, " ", err, " ")
            ngx.print(ngx.resp.get_headers(0, true)["X-A"][1])
        }
    }
--- request
GET /t
--- response_body eval
"12 2 text/x nil\n2 truncated 1"
--- no_error_log
[error]



=== TEST 9: require "ngx.resp" add_header appends
--- config
    location /t {
        content_by_lua_block {
            local resp = require "ngx.resp"
            ngx.header.X_Add = "first"
            resp.add_header("X-Add", "second")
            resp.add_header("X-Add", {"third", 4})
            -- lua-resty-core's arguments: an empty table adds nothing, a
            -- nil value is an error, a name goes through tostring
            resp.add_header("X-Add", {})
            resp.add_header(42, "n")
            ngx.say(table.concat(ngx.header.x_add, ","), " ", ngx.header["42"])
            ngx.say(pcall(resp.add_header, "X-Add"))
        }
    }
--- request
GET /t
--- raw_response_headers_like chomp
X-Add: first\r\nX-Add: second\r\nX-Add: third\r\nX-Add: 4\r\n
--- response_body
first,second,third,4 n
falseinvalid header value
--- no_error_log
[error]



=== TEST 10: headers set in rewrite and access survive to the response; proxied responses can be read in log
--- config
    location /t {
        rewrite_by_lua_block { ngx.header.X_R = "r" }
        access_by_lua_block { ngx.header.X_A = "a" }
        content_by_lua_block { ngx.say(ngx.header.x_r, ngx.header.x_a) }
        log_by_lua_block { ngx.log(ngx.WARN, "log sees ", ngx.header.x_r, " ", ngx.resp.get_headers()["x-a"]) }
    }
--- request
GET /t
--- response_headers
X-R: r
X-A: a
--- response_body
ra
--- error_log
log sees r a



=== TEST 11: ngx.resp.get_headers includes nginx's own Connection and Transfer-Encoding, and counts them in the limit
--- config
    location /t {
        content_by_lua_block { ngx.say("hi") }
        body_filter_by_lua_block {
            if ngx.arg[2] then
                local h = ngx.resp.get_headers()
                ngx.log(ngx.WARN, "seen connection=", h.connection, " te=", h["Transfer-Encoding"])
            end
        }
    }
    location /limit {
        content_by_lua_block {
            for i = 1, 100 do
                ngx.header["X-N" .. i] = i
            end
            local h, err = ngx.resp.get_headers()
            local n = 0
            for _ in pairs(h) do n = n + 1 end
            ngx.say(n, " ", err, " ", h.connection, " ", h["content-type"])
        }
    }
--- request eval
["GET /t", "GET /limit"]
--- response_body eval
["hi\n", "100 truncated close nil\n"]
--- error_log eval
[qr/seen connection=close te=chunked/, qr/lua exceeding response header limit 101 > 100/]
--- no_error_log
[error]



=== TEST 12: ngx.header["Last-Modified"] of a static file, before nginx writes the header line
--- config
    location /file.txt {
        header_filter_by_lua_block {
            local lm = ngx.header["Last-Modified"]
            ngx.header["X-Age-Ok"] = lm and ngx.parse_http_time(lm) <= ngx.time() and "yes" or "no"
        }
    }
--- user_files
>>> file.txt
content
--- request
GET /file.txt
--- response_headers
X-Age-Ok: yes
--- response_body
content
--- no_error_log
[error]



=== TEST 13: a relative Location set through ngx.header goes out as set; an absolute one too
--- config
    location = /rel {
        content_by_lua_block {
            ngx.header.location = "/somewhere/else?x=1"
            ngx.exit(302)
        }
    }
    location = /abs {
        content_by_lua_block {
            ngx.header["Location"] = "http://example.com/there"
            ngx.exit(301)
        }
    }
--- pipelined_requests eval
["GET /rel", "GET /abs"]
--- error_code eval
[302, 301]
--- response_headers eval
["Location: /somewhere/else?x=1", "Location: http://example.com/there"]
--- response_body_like eval
["302 Found", "301 Moved Permanently"]



=== TEST 14: Content-Type cleared from Lua: no default type is added to the header Lua sends
--- config
    location = /t {
        default_type text/html;
        content_by_lua_block {
            ngx.header["Content-Type"] = "text/css"
            ngx.header["Content-Type"] = nil
            ngx.say("no type")
        }
    }
--- request
GET /t
--- response_headers
!Content-Type
--- response_body
no type



=== TEST 15: the headers nginx keeps fields for, set in any case: one Server line (nginx adds none of its own), the Content-Length given, a relative Location as set
--- config
    location = /t {
        content_by_lua_block {
            ngx.header["sERVER"] = "mine"
            ngx.header["cONTENT-lENGTH"] = 6
            ngx.header["LOCATION"] = "/elsewhere"
            ngx.header["X-Plain"] = "p"
            ngx.print("hello\n")
        }
    }
--- request
GET /t
--- raw_response_headers_like chomp
\AHTTP/1.1 200 OK\r\n(?:(?!(?i:server):)[^\r\n]*\r\n)*sERVER: mine\r\n(?:(?!(?i:server):)[^\r\n]*\r\n)*\z
--- response_headers
Content-Length: 6
Location: /elsewhere
X-Plain: p
--- response_body
hello
--- no_error_log
[error]



=== TEST 16: Last-Modified set in any case is the time nginx's not-modified check compares: a matching If-Modified-Since gets a 304
--- config
    location = /t {
        content_by_lua_block {
            ngx.header["lAST-mODIFIED"] = ngx.http_time(1290079655)
            ngx.say("full body")
        }
    }
--- request
GET /t
--- more_headers
If-Modified-Since: Thu, 18 Nov 2010 11:27:35 GMT
--- error_code: 304
--- response_body
--- no_error_log
[error]
