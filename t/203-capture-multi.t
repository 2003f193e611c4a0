use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: subrequests run concurrently; results come back in request order
--- config
    location /work {
        content_by_lua_block {
            ngx.sleep(tonumber(ngx.var.arg_d))
            local c = ngx.ctx.shared
            c.order[#c.order + 1] = ngx.var.arg_name
            ngx.print(ngx.var.arg_name)
        }
    }
    location /t {
        content_by_lua_block {
            local c = { shared = { order = {} } }
            local a, b, d = ngx.location.capture_multi({
                { "/work", { args = "name=a&d=0.15", ctx = c } },
                { "/work", { args = "name=b&d=0.01", ctx = c } },
                { "/work", { args = "name=c&d=0.05", ctx = c } },
            })
            ngx.say("results: ", a.body, b.body, d.body)
            ngx.say("finished: ", table.concat(c.shared.order))
        }
    }
--- request
GET /t
--- response_body
results: abc
finished: bca
--- no_error_log
[error]



=== TEST 2: mixed methods and statuses in one call
--- config
    location /method {
        content_by_lua_block {
            ngx.print(ngx.var.request_method, ":", ngx.var.http_content_length)
        }
    }
    location /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/method;
    }
    location /missing {
        return 404;
    }
    location /t {
        content_by_lua_block {
            local res = { ngx.location.capture_multi({
                { "/proxy" },
                { "/proxy", { method = ngx.HTTP_POST, body = "12345" } },
                { "/proxy", { method = ngx.HTTP_HEAD } },
                { "/missing" },
                { "/proxy", { method = ngx.HTTP_DELETE } },
            }) }
            for i, r in ipairs(res) do
                ngx.say(i, ": ", r.status, " [", r.body, "]")
            end
        }
    }
--- request
GET /t
--- response_body
1: 200 [GET:nil]
2: 200 [POST:5]
3: 200 []
4: 404 []
5: 200 [DELETE:nil]
--- no_error_log
[error]



=== TEST 3: nested capture_multi
--- config
    location /leaf {
        content_by_lua_block { ngx.print(ngx.var.arg_v) }
    }
    location /mid {
        content_by_lua_block {
            local x, y = ngx.location.capture_multi({
                { "/leaf", { args = { v = ngx.var.arg_p .. "1" } } },
                { "/leaf", { args = { v = ngx.var.arg_p .. "2" } } },
            })
            ngx.print(x.body, "+", y.body)
        }
    }
    location /t {
        content_by_lua_block {
            local a, b = ngx.location.capture_multi({
                { "/mid?p=a" },
                { "/mid?p=b" },
            })
            ngx.say(a.body, " ", b.body)
        }
    }
--- request
GET /t
--- response_body
a1+a2 b1+b2
--- no_error_log
[error]



=== TEST 4: capture_multi after output, then more output
--- config
    location /sub {
        content_by_lua_block { ngx.print("sub", ngx.var.arg_n) }
    }
    location /t {
        content_by_lua_block {
            ngx.say("before")
            ngx.flush(true)
            local a, b = ngx.location.capture_multi({ { "/sub?n=1" }, { "/sub?n=2" } })
            ngx.say(a.body, " ", b.body)
            ngx.sleep(0.01)
            local c = ngx.location.capture("/sub?n=3")
            ngx.say(c.body)
        }
    }
--- request
GET /t
--- response_body
before
sub1 sub2
sub3
--- no_error_log
[error]



=== TEST 5: bad queries are refused before anything is issued
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.location.capture_multi, { { "/a" }, "x" })
            ngx.say(err)
            ok, err = pcall(ngx.location.capture_multi, { { "/a" }, {} })
            ngx.say(err)
            ok, err = pcall(ngx.location.capture_multi, { { "/a" } }, 1)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
the query argument 1 is not a table, but a string
.*query argument 1 expecting one or two arguments
.*only one argument is expected, but got 2
--- no_error_log
[error]



=== TEST 6: when one subrequest of capture_multi cannot be made, the ones made before it are undone too: none runs, the error can be caught, and an aborted request still ends (lua-nginx-module leaves them to run and the connection open)
--- config
    location = /other {
        content_by_lua_block {
            ngx.shared.seen:incr("runs", 1, 0)
            ngx.say("other ran")
        }
    }
    location = /t {
        content_by_lua_block {
            ngx.shared.seen:set("runs", 0)
            local ok, err = pcall(ngx.location.capture_multi, { { "/other" }, { "/other", { vars = { dog = "x" } } } })
            ngx.say(ok, " ", err)
            local a, b = ngx.location.capture_multi({ { "/other" }, { "/other" } })
            ngx.say(a.body, b.body, "runs: ", ngx.shared.seen:get("runs"))
        }
    }
    location = /abort {
        content_by_lua_block {
            ngx.location.capture_multi({ { "/other" }, { "/other", { vars = { dog = "x" } } } })
        }
    }
--- http_config
    lua_shared_dict seen 1m;
--- pipelined_requests eval
["GET /t", "GET /abort"]
--- response_body_like eval
["\\Afalse failed to adjust the subrequest: -1\nother ran\nother ran\nruns: 2\n\\z", "500 Internal Server Error"]
--- error_code eval
[200, 500]
--- error_log
variable "dog" cannot be assigned a value (maybe you forgot to define it first?)
