use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: get_uri_args: arrays, bare keys, empty values, unescaping
--- config
    location /t {
        content_by_lua_block {
            local args = ngx.req.get_uri_args()
            local keys = {}
            for k in pairs(args) do keys[#keys + 1] = k end
            table.sort(keys)
            for _, k in ipairs(keys) do
                local v = args[k]
                if type(v) == "table" then
                    local parts = {}
                    for i, x in ipairs(v) do parts[i] = tostring(x) end
                    v = "{" .. table.concat(parts, ",") .. "}"
                end
                ngx.say(k, "=", tostring(v))
            end
        }
    }
--- request
GET /t?a=1&b&c=&a=2&d=hello+world%21&&=x&a
--- response_body
a={1,2,true}
b=true
c=
d=hello world!
--- no_error_log
[error]



=== TEST 2: get_uri_args limits: 100 by default with "truncated", custom max, 0 unlimited
--- config
    location /t {
        content_by_lua_block {
            local args, err = ngx.req.get_uri_args()
            ngx.say(#args.x, " ", err)
            args, err = ngx.req.get_uri_args(3)
            ngx.say(#args.x, " ", err)
            args, err = ngx.req.get_uri_args(0)
            ngx.say(#args.x, " ", err)
        }
    }
--- request eval
"GET /t?" . ("x=1&" x 150)
--- response_body
100 truncated
3 truncated
150 nil
--- no_error_log
[error]



=== TEST 3: set_uri_args with a string and a table; proxy_pass sees them
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.set_uri_args({b = "x y", c = {1, 2}})
            local a = ngx.req.get_uri_args()
            ngx.req.set_uri_args("q=" .. ngx.escape_uri(a.b) .. "&n=" .. #a.c)
        }
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location /echo {
        content_by_lua_block { ngx.say(ngx.var.args) }
    }
--- request
GET /t?old=1
--- response_body
q=x%20y&n=2
--- no_error_log
[error]



=== TEST 4: set_uri without jump keeps the location, with jump in rewrite finds a new one
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.req.set_uri("/other")
            ngx.ctx.uri = ngx.var.uri
        }
        content_by_lua_block { ngx.say("t: ", ngx.ctx.uri, " ", ngx.var.uri) }
    }
    location /jump {
        rewrite_by_lua_block {
            ngx.req.set_uri("/target", true)
            ngx.say("not reached")
        }
    }
    location /target {
        content_by_lua_block { ngx.say("target: ", ngx.var.uri, " ", ngx.var.args) }
    }
--- request
GET /t
--- response_body
t: /other /other
--- no_error_log
[error]



=== TEST 5: set_uri with jump (logged at debug level)
--- config
    location /jump {
        rewrite_by_lua_block {
            ngx.req.set_uri("/target", true)
            ngx.say("not reached")
        }
    }
    location /target {
        content_by_lua_block { ngx.say("target: ", ngx.var.uri, " ", ngx.var.args) }
    }
--- request
GET /jump?a=1
--- response_body
target: /target a=1
--- error_log
lua set uri jump to "/target"
--- no_error_log
[error]



=== TEST 6: set_uri errors: jump outside rewrite, empty and unsafe uris
--- config
    location /t {
        content_by_lua_block {
            ngx.say(pcall(ngx.req.set_uri, "/x", true))
            ngx.say(pcall(ngx.req.set_uri, ""))
            local ok, err = pcall(ngx.req.set_uri, "/a\r\nb")
            ngx.say(ok, (err:gsub("[\r\n]", "?")))
            ngx.say(pcall(ngx.req.set_uri, "/a\r\nb", false, true))
            ngx.say(pcall(ngx.req.set_uri, "/a b"))
            ngx.say(pcall(ngx.req.set_uri_args, print))
        }
    }
--- request
GET /t
--- response_body
falseAPI disabled in the context of content_by_lua*
falseattempt to use zero-length uri
falseunsafe byte "0x0d" in uri "/a\x0D\x0Ab" (maybe you want to set the 'binary' argument?)
true
true
falsebad argument #1 to 'set_uri_args' (string, number, or table expected, but got function)
--- no_error_log
[error]



=== TEST 7: get_post_args after read_body; error before; nil for a temp-file body
--- config
    location /t {
        content_by_lua_block {
            ngx.say(pcall(ngx.req.get_post_args))
            ngx.req.read_body()
            local args, err = ngx.req.get_post_args()
            ngx.say(args.a, " ", args.b[1], args.b[2], " ", args.c, " ", err)
            args, err = ngx.req.get_post_args(1)
            ngx.say(args.a, " ", args.c, " ", err)
        }
    }
--- request
POST /t
a=1&b=x&b=y&c
--- response_body
falseno request body found; maybe you should turn on lua_need_request_body?
1 xy true nil
1 nil truncated
--- no_error_log
[error]



=== TEST 8: get_post_args with the body in a temp file
--- config
    client_body_buffer_size 8;
    location /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.req.get_post_args())
        }
    }
--- request eval
"POST /t\n" . ("a=1&" x 2000)
--- response_body
nilrequest body in temp file not supported
--- no_error_log
[error]



=== TEST 9: get_uri_args and get_post_args fill a table the caller passes, emptied first
--- config
    location /t {
        lua_need_request_body on;
        content_by_lua_block {
            local tab = {stale = "x", 1, 2}
            local args = ngx.req.get_uri_args(10, tab)
            ngx.say(args == tab, " ", tab.stale, " ", tab[1], " ", tab.a, " ", tab.b)
            local post = ngx.req.get_post_args(1, tab)
            ngx.say(post == tab, " ", tab.a, " ", tab.c, " ", select(2, ngx.req.get_post_args(1, tab)))
            ngx.say(ngx.HTTP_NOT_IMPLEMENTED, " ", ngx.HTTP_METHOD_NOT_IMPLEMENTED)
        }
    }
--- request
POST /t?a=1&b=2
c=3&d=4
--- response_body
true nil nil 1 2
true nil 3 truncated
501 501
--- no_error_log
[error]



=== TEST 10: max args counts every '&'-ended piece, empty keys too, and reports "truncated" (decode_args as well)
--- config
    location /t {
        content_by_lua_block {
            local args, err = ngx.req.get_uri_args(2)
            ngx.say(args.foo, " ", args[""], " ", err)
            local d, derr = ngx.decode_args("a=bar&b=foo", 1)
            ngx.say(d.a, " ", d.b, " ", derr)
            local all, none = ngx.decode_args("a=1&b=2", 2)
            ngx.say(all.a, all.b, " ", none)
        }
    }
--- request
GET /t?foo=3&=hello&=world
--- response_body
3 nil truncated
bar nil truncated
12 nil
--- error_log
lua hit query args limit 2



=== TEST 11: a set_uri jump starts the request over with a fresh ngx.ctx, and the new location's rewrite code runs
--- config
    location /first {
        rewrite_by_lua_block {
            ngx.ctx.from = "first"
            ngx.req.set_uri("/second", true)
        }
    }
    location /second {
        rewrite_by_lua_block {
            ngx.ctx.seen_in_rewrite = tostring(ngx.ctx.from)
        }
        content_by_lua_block {
            ngx.say("uri: ", ngx.var.uri, ", from: ", tostring(ngx.ctx.from),
                    ", rewrite saw: ", ngx.ctx.seen_in_rewrite)
        }
    }
--- request
GET /first
--- response_body
uri: /second, from: nil, rewrite saw: nil
--- no_error_log
[error]



=== TEST 12: log_by_lua may set the URI (without a jump)
--- config
    location /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            ngx.req.set_uri("/rewritten-in-log")
            ngx.log(ngx.WARN, "log sees uri ", ngx.var.uri)
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log
log sees uri /rewritten-in-log
--- no_error_log
[error]



=== TEST 13: get_uri_args: escaped keys, malformed escapes kept, and the request's own args left as they were
--- config
    location /t {
        content_by_lua_block {
            local args = ngx.req.get_uri_args()
            local keys = {}
            for k in pairs(args) do keys[#keys + 1] = k end
            table.sort(keys)
            for _, k in ipairs(keys) do
                ngx.say("[", k, "]=[", tostring(args[k]), "]")
            end
            -- the pairs were unescaped in a copy
            ngx.say(ngx.var.args)
            ngx.say(ngx.req.get_uri_args()["x y"])
        }
    }
--- request
GET /t?%61%62=%7a%zz&k%4=%&x+y=1+2&e=%4
--- response_body
[ab]=[z%zz]
[e]=[%4]
[k%4]=[%]
[x y]=[1 2]
%61%62=%7a%zz&k%4=%&x+y=1+2&e=%4
1 2
--- no_error_log
[error]
