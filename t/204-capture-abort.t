use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: client abort while subrequests are in flight
--- config
    location /slow {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.print("slow")
        }
    }
    location /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/slow;
    }
    location /t {
        content_by_lua_block {
            local a, b = ngx.location.capture_multi({ { "/slow" }, { "/proxy" } })
            ngx.log(ngx.WARN, "resumed: ", a.body, " ", b.body)
            ngx.say(a.body)
        }
    }
--- request
GET /t
--- abort
--- timeout: 0.1
--- wait: 0.5
--- ignore_response
--- error_log
resumed: slow slow
--- no_error_log
[alert]
[crit]



=== TEST 2: the request is torn down while a sibling subrequest still waits
--- config
    location /slow {
        content_by_lua_block {
            ngx.sleep(0.2)
            ngx.log(ngx.WARN, "slow subrequest woke up")
            ngx.print("slow")
        }
    }
    location /close {
        return 444;
    }
    location /t {
        content_by_lua_block {
            local a, b = ngx.location.capture_multi({ { "/slow" }, { "/close" } })
            ngx.log(ngx.WARN, "parent resumed")
            ngx.say(a.body)
        }
    }
--- request
GET /t
--- wait: 0.3
--- ignore_response
--- no_error_log
parent resumed
slow subrequest woke up
[alert]
[crit]
