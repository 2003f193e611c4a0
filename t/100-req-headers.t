use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: get_headers: lower-cased keys, arrays for repeats, any-case lookups
--- config
    location /t {
        content_by_lua_block {
            local h = ngx.req.get_headers()
            ngx.say(h["user-agent"], "|", h.User_Agent, "|", h["USER-AGENT"])
            ngx.say(type(h.foo), " ", h.foo[1], " ", h.foo[2])
            ngx.say(h["x-empty"] == "", " ", h.missing)
            local raw = ngx.req.get_headers(0, true)
            ngx.say(raw["X-Mixed-Case"], " ", raw["x-mixed-case"])
        }
    }
--- request
GET /t
--- more_headers
User-Agent: tester
Foo: 1
Foo: 2
X-Empty:
X-Mixed-Case: yes
--- response_body
tester|tester|tester
table 1 2
true nil
yes nil
--- no_error_log
[error]



=== TEST 2: get_headers: default limit 100 with "truncated", explicit limits, 0 is unlimited
--- config
    location /t {
        content_by_lua_block {
            local function count(t)
                local n = 0
                for _, v in pairs(t) do n = n + (type(v) == "table" and #v or 1) end
                return n
            end
            local h, err = ngx.req.get_headers()
            ngx.say(count(h), " ", err)
            h, err = ngx.req.get_headers(10)
            ngx.say(count(h), " ", err)
            h, err = ngx.req.get_headers(0)
            ngx.say(count(h), " ", err)
        }
    }
--- request
GET /t
--- more_headers eval
"X-H: v\r\n" x 110
--- response_body
100 truncated
10 truncated
112 nil
--- no_error_log
[error]



=== TEST 3: set_header / clear_header keep $http_* and dedicated fields consistent
--- config
    location /t {
        content_by_lua_block {
            ngx.req.set_header("User-Agent", "changed")
            ngx.req.set_header("X-New", {"a", "b"})
            ngx.req.set_header("Foo", "replaced")
            ngx.req.clear_header("Accept")
            ngx.req.set_header("Cookie", "c=1")
            ngx.req.set_header("Host", "Example.COM:8080")
            local msie_before = ngx.var.msie
            ngx.req.set_header("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)")
            ngx.say("msie: [", msie_before, "] [", ngx.var.msie, "]")
            ngx.req.set_header("User-Agent", "changed")
            local h = ngx.req.get_headers()
            ngx.say(ngx.var.http_user_agent, " ", h["user-agent"])
            -- $http_x_new: the first header before nginx 1.23, all of them
            -- joined with ", " since
            local joined = ngx.config.nginx_version >= 1023000
            ngx.say(h["x-new"][1], h["x-new"][2], " ", ngx.var.http_x_new == (joined and "a, b" or "a"))
            ngx.say(h.foo, " ", ngx.var.http_foo)
            ngx.say(h.accept, " ", ngx.var.http_accept)
            ngx.say(ngx.var.http_cookie, " ", ngx.var.cookie_c)
            ngx.say(ngx.var.http_host, " ", ngx.var.host)
            ngx.req.set_header("Foo", {})
            ngx.req.set_header("User-Agent", nil)
            ngx.say(ngx.req.get_headers().foo, " ", ngx.var.http_foo, " ", ngx.req.get_headers()["user-agent"])
        }
    }
--- request
GET /t
--- more_headers
User-Agent: orig
Foo: 1
Foo: 2
Accept: */*
--- response_body
msie: [] [1]
changed changed
ab true
replaced replaced
nil nil
c=1 1
Example.COM:8080 example.com
nil nil nil
--- no_error_log
[error]



=== TEST 4: header changes reach proxy_pass; Content-Length too
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.set_header("X-Added", "yes")
            ngx.req.set_header("X-Multi", {"1", "2"})
            ngx.req.clear_header("X-Remove")
            ngx.req.set_header("User-Agent", "lua-agent")
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /echo {
        content_by_lua_block {
            local h = ngx.req.get_headers()
            ngx.say("added=", h["x-added"], " multi=", table.concat(h["x-multi"], ","),
                    " remove=", h["x-remove"], " ua=", h["user-agent"])
        }
    }
--- request
GET /t
--- more_headers
X-Remove: 1
User-Agent: orig
--- response_body
added=yes multi=1,2 remove=nil ua=lua-agent
--- no_error_log
[error]



=== TEST 5: CR/LF in names and values never split a header
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.set_header("X-Evil", "a\r\nX-Injected: 1")
            ngx.req.set_header("X-Bad\r\nName", "v")
            local raw = ngx.req.get_headers(0, true)
            ngx.req.set_header("X-Name-Seen", raw["X-Bad%0D%0AName"])
            ngx.req.clear_header("X-Bad%0D%0AName")
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /echo {
        content_by_lua_block {
            local h = ngx.req.get_headers()
            ngx.say(h["x-evil"], " ", h["x-injected"], " ", h["x-name-seen"])
        }
    }
--- request
GET /t
--- response_body
a%0D%0AX-Injected: 1 nil v
--- no_error_log
[error]



=== TEST 6: argument errors
--- config
    location /t {
        content_by_lua_block {
            -- lua-resty-core's arguments: a missing value clears, other
            -- values and names go through tostring
            ngx.req.set_header("A", "1")
            ngx.say(pcall(ngx.req.set_header, "A"))
            ngx.say(ngx.var.http_a)
            ngx.say(pcall(ngx.req.set_header, nil, "x"))
            ngx.say(pcall(ngx.req.set_header, "B", true))
            ngx.say(ngx.var.http_b)
            local t = {1, "two"}
            ngx.req.set_header(3, t)
            ngx.say(table.concat(ngx.req.get_headers()["3"], ","), " ", type(t[1]))
            ngx.say(pcall(ngx.req.clear_header))
            ngx.say(pcall(ngx.req.get_headers, {}))
        }
    }
--- request
GET /t
--- response_body
true
nil
falsebad 'name' argument: string expected, got nil
true
true
1,two string
true
falsebad argument #1 to 'get_headers' (number expected, got table)
--- no_error_log
[error]



=== TEST 7: method, http_version, is_internal, raw_header
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.req.get_method(), " ", ngx.req.http_version(), " ", ngx.req.is_internal())
            ngx.req.set_method(ngx.HTTP_PATCH)
            ngx.say(ngx.req.get_method(), " ", ngx.var.request_method)
            ngx.say(pcall(ngx.req.set_method, 12345))
            ngx.print(ngx.req.raw_header())
            ngx.print(ngx.req.raw_header(true))
        }
    }
--- raw_request eval
"POST /t HTTP/1.0\r\nFoo: bar\r\nX-A:  b \r\n\r\n"
--- response_body eval
"POST 1 false\nPATCH PATCH\nfalseunsupported HTTP method: 12345\n"
# nginx overwrote the space after "b" with the end of the value: the head
# reads back with a line feed there, as lua-nginx-module gives it
. "POST /t HTTP/1.0\r\nFoo: bar\r\nX-A:  b\n\r\n\r\n"
. "Foo: bar\r\nX-A:  b\n\r\n\r\n"
--- no_error_log
[error]



=== TEST 8: HTTP/1.1 version; is_internal after ngx.exec
--- config
    location /t {
        content_by_lua_block {
            ngx.req.set_header("X-A", "1")
            ngx.exec("/internal")
        }
    }
    location /internal {
        content_by_lua_block {
            ngx.say(ngx.req.http_version(), " ", ngx.req.get_headers()["x-a"], " ", ngx.req.is_internal())
        }
    }
--- request
GET /t
--- response_body
1.1 1 true
--- no_error_log
[error]




=== TEST 9: raw_header of a head spread over large header buffers is rebuilt
--- config
    client_header_buffer_size 128;
    large_client_header_buffers 4 1k;
    location /t {
        content_by_lua_block {
            local raw = ngx.req.raw_header()
            ngx.say(#raw, " ", raw:sub(1, 15), " ", raw:sub(-4) == "\r\n\r\n")
            ngx.say(raw:find("X-Long: " .. string.rep("a", 800), 1, true) ~= nil)
            ngx.say(raw:find("X-Other: " .. string.rep("b", 800), 1, true) ~= nil)
        }
    }
--- request
GET /t
--- more_headers eval
"X-Long: " . ("a" x 800) . "\r\nX-Other: " . ("b" x 800) . "\r\n"
--- response_body_like
^\d+ GET /t HTTP/1.1 true
true
true
--- no_error_log
[error]




=== TEST 10: huge header values and many headers set from Lua
--- config
    location /t {
        content_by_lua_block {
            ngx.req.set_header("X-Big", string.rep("a", 1000000))
            local many = {}
            for i = 1, 5000 do many[i] = tostring(i) end
            ngx.req.set_header("X-Many", many)
            local h = ngx.req.get_headers(0)
            ngx.header.X_Resp = many
            local n = #ngx.header.x_resp
            ngx.header.X_Resp = nil
            ngx.say(#h["x-big"], " ", #h["x-many"], " ", h["x-many"][5000])
            ngx.say(n, " ", ngx.header.x_resp)
        }
    }
--- request
GET /t
--- response_body
1000000 5000 5000
5000 nil
--- no_error_log
[error]



=== TEST 11: HTTP/0.9 has no request headers: set_header and add_header do nothing there
--- config
    location /t {
        content_by_lua_block {
            ngx.req.set_header("X-Foo", "howdy")
            require("ngx.req").add_header("X-Bar", "there")
            ngx.req.clear_header("X-Foo")
            local h = ngx.req.get_headers()
            ngx.say("X-Foo: ", h["X-Foo"], ", X-Bar: ", h["X-Bar"])
        }
    }
--- raw_request eval
"GET /t\r\n"
--- http09
--- response_body
X-Foo: nil, X-Bar: nil
--- no_error_log
[error]
[alert]



=== TEST 12: a request nginx refused (error_page 400 to Lua) has no header list: set_header does nothing
--- config
    error_page 400 = /err;
    location = /err {
        content_by_lua_block {
            ngx.req.set_header("Foo", "bar")
            ngx.req.set_header("Multi", {"a", "b"})
            local h = ngx.req.get_headers()
            ngx.say("ok ", h.Foo, " ", h.Multi)
        }
    }
--- raw_request
GeT / HTTP/1.1
--- response_body
ok nil nil
--- no_error_log
[alert]



=== TEST 13: raw_header in a subrequest reads the main request's head
--- config
    location /sub {
        content_by_lua_block { ngx.print(ngx.req.raw_header(true)) }
    }
    location /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.print("[", res.body, "]")
        }
    }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nConnection: close\r\n\r\n"
--- response_body eval
"[Host: x\r\nX-One: 1\r\nConnection: close\r\n\r\n]"
--- no_error_log
[error]



=== TEST 14: a head larger than client_header_buffer_size, with bare LF line breaks, reads back as sent
--- config
    client_header_buffer_size 64;
    large_client_header_buffers 8 1k;
    location /t {
        content_by_lua_block { ngx.print(ngx.req.raw_header()) }
    }
--- raw_request eval
my $h = "GET /t HTTP/1.1\nHost: x\n";
$h .= "X-Header-$_: " . ("v" x 40) . "\n" for 1 .. 6;
$h .= "Connection: close\n\n";
$h
--- response_body eval
my $h = "GET /t HTTP/1.1\nHost: x\n";
$h .= "X-Header-$_: " . ("v" x 40) . "\n" for 1 .. 6;
$h .= "Connection: close\n\n";
$h
--- no_error_log
[error]



=== TEST 15: a new Host is what $host gives next, even when $host was indexed and already read (no Host: the server name)
--- config
    location /t {
        set $h $host;
        content_by_lua_block {
            ngx.say(ngx.var.host)
            ngx.req.set_header("Host", "Other.Example.")
            ngx.say(ngx.var.host, " ", ngx.var.h)
            ngx.req.set_header("Host", "again")
            ngx.say(ngx.var.host)
            ngx.req.clear_header("Host")
            ngx.say("[", ngx.var.host, "]")
        }
    }
--- request
GET /t
--- response_body
localhost
other.example localhost
again
[localhost]
--- no_error_log
[error]



=== TEST 16: get_headers(max) cut short logs the count at debug level
--- config
    location /t {
        content_by_lua_block {
            local h, err = ngx.req.get_headers(2)
            local n = 0
            for _ in pairs(h) do n = n + 1 end
            ngx.say(n, " ", err)
        }
    }
--- request
GET /t
--- more_headers
X-A: 1
X-B: 2
--- response_body
2 truncated
--- error_log
lua exceeding request header limit 4 > 2



=== TEST 17: numbers as header names, found by number in get_headers; an empty name adds nothing and raises nothing
--- config
    location /t {
        content_by_lua_block {
            local req = require "ngx.req"
            req.add_header(123, 456)
            req.add_header(123, 789)
            ngx.say("123: ", table.concat(ngx.req.get_headers()[123], ", "))
            local n = 0
            for _ in pairs(ngx.req.get_headers()) do n = n + 1 end
            ngx.say(pcall(req.add_header, "", "bar"))
            ngx.say(pcall(ngx.req.set_header, "", "bar"))
            local m = 0
            for _ in pairs(ngx.req.get_headers()) do m = m + 1 end
            ngx.say(n == m, " ", ngx.req.get_headers()[""])
        }
    }
--- request
GET /t
--- response_body
123: 456, 789
true
true
true nil
--- no_error_log
[error]



=== TEST 18: get_method names every ngx.HTTP_* method, twice each (the face keeps the usual names once made), and an unusual method as sent
--- config
    location = /t {
        content_by_lua_block {
            local out = { ngx.req.get_method() }
            for _, m in ipairs({ "GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS",
                                 "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH", "TRACE" }) do
                ngx.req.set_method(ngx["HTTP_" .. m])
                local a, b = ngx.req.get_method(), ngx.req.get_method()
                out[#out + 1] = (a == m and b == m) and m or ("wrong: " .. a .. " " .. b)
            end
            ngx.say(table.concat(out, " "))
        }
    }
--- request
FOO_BAR /t
--- response_body
FOO_BAR GET HEAD POST PUT DELETE MKCOL COPY MOVE OPTIONS PROPFIND PROPPATCH LOCK UNLOCK PATCH TRACE
--- no_error_log
[error]



=== TEST 19: set_header in any case keeps nginx's own fields for the headers it knows in step, replaced or new (the variables that read them, not the list)
--- config
    location = /t {
        content_by_lua_block {
            ngx.req.set_header("hOsT", "Changed.Example")
            ngx.req.set_header("USER-AGENT", "ua2")
            ngx.req.set_header("referer", "http://r2/")
            ngx.req.set_header("ViA", "1.1 v2")
            ngx.req.set_header("CONTENT-length", "0")
            ngx.req.set_header("Content-TYPE", "text/x-two")
            ngx.say(ngx.var.http_host, " ", ngx.var.host, " ", ngx.var.http_user_agent, " ",
                    ngx.var.http_referer, " ", ngx.var.http_via, " ", ngx.var.content_length, " ",
                    ngx.var.content_type)
        }
    }
--- request
GET /t
--- more_headers
User-Agent: ua1
Content-Type: text/x-one
--- response_body
Changed.Example changed.example ua2 http://r2/ 1.1 v2 0 text/x-two
--- no_error_log
[error]
