use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.time, ngx.now, update_time follow nginx's cached clock
--- config
    location /t {
        content_by_lua_block {
            local t = ngx.time()
            ngx.say(math.abs(t - os.time()) <= 1, " ", t == math.floor(t))
            local n = ngx.now()
            ngx.say(n >= t, " ", n < t + 1)
            os.execute("sleep 0.05")
            ngx.say(ngx.now() == n)
            ngx.update_time()
            ngx.say(ngx.now() - n >= 0.04)
            ngx.say(math.abs(ngx.req.start_time() - n) < 1)
        }
    }
--- request
GET /t
--- response_body
true true
true true
true
true
true
--- no_error_log
[error]



=== TEST 2: today, localtime, utctime formats
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.today() == os.date("%Y-%m-%d"))
            ngx.say(ngx.localtime() == os.date("%Y-%m-%d %H:%M:%S", ngx.time()))
            ngx.say(ngx.utctime() == os.date("!%Y-%m-%d %H:%M:%S", ngx.time()))
        }
    }
--- request
GET /t
--- response_body
true
true
true
--- no_error_log
[error]



=== TEST 3: http_time, cookie_time, parse_http_time
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.http_time(1290079655))
            ngx.say(ngx.cookie_time(1290079655))
            ngx.say(ngx.cookie_time(2290079655))
            ngx.say(ngx.parse_http_time("Thu, 18 Nov 2010 11:27:35 GMT"))
            ngx.say(ngx.parse_http_time("Thursday, 18-Nov-10 11:27:35 GMT"))
            ngx.say(ngx.parse_http_time("nope"))
            ngx.say(pcall(ngx.http_time, "x"))
            ngx.say(pcall(ngx.http_time))
            ngx.say(ngx.parse_http_time(ngx.http_time(ngx.time())) == ngx.time())
        }
    }
--- request
GET /t
--- response_body
Thu, 18 Nov 2010 11:27:35 GMT
Thu, 18-Nov-10 11:27:35 GMT
Sun, 27-Jul-2042 13:14:15 GMT
1290079655
1290079655
nil
falsenumber argument only
falsenumber argument only
true
--- no_error_log
[error]
