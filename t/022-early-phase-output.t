use Test::Nginx::Socket::Lua;

# rewrite_by_lua* and access_by_lua* code that sends output and then ends
# without ngx.exit: the response ends there (lua-nginx-module's rule), so
# no later phase can start a second response.

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: output in rewrite_by_lua, then a plain return: the static file is not served
--- config
    location /t {
        rewrite_by_lua_block { ngx.say("from rewrite") }
    }
--- user_files
>>> t
static file
--- request
GET /t
--- response_body
from rewrite
--- no_error_log
[alert]
[error]



=== TEST 2: output in access_by_lua after a wait, then ngx.exit(ngx.OK)
--- config
    location /t {
        access_by_lua_block {
            ngx.sleep(0.001)
            ngx.say("from access")
            ngx.exit(ngx.OK)
        }
        content_by_lua_block { ngx.say("content must not run") }
    }
--- request
GET /t
--- response_body
from access
--- no_error_log
[alert]
[error]



=== TEST 3: a light thread prints in rewrite after the entry thread returned
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.002)
                ngx.say("from the thread")
            end)
            ngx.say("from the entry thread")
        }
        content_by_lua_block { ngx.say("content must not run") }
    }
--- request
GET /t
--- response_body
from the entry thread
from the thread
--- no_error_log
[alert]
[error]



=== TEST 4: no output: the next phases run as usual
--- config
    location /t {
        rewrite_by_lua_block {
            ngx.thread.spawn(function() ngx.sleep(0.001) ngx.ctx.seen = "thread ran" end)
        }
        access_by_lua_block { ngx.sleep(0.001) }
        content_by_lua_block { ngx.say("content: ", ngx.ctx.seen) }
    }
--- request
GET /t
--- response_body
content: thread ran
--- no_error_log
[error]



=== TEST 5: a URI changed by the rewrite module skips rewrite_by_lua: the new location runs it
--- config
    location /old {
        rewrite ^/old/(.*)$ /new/$1 last;
        rewrite_by_lua_block { ngx.exit(503) }
    }
    location /keep {
        rewrite ^/keep/(.*)$ /new/$1;
        rewrite_by_lua_block { ngx.exit(503) }
    }
    location /new {
        rewrite_by_lua_block { ngx.ctx.where = ngx.var.uri }
        content_by_lua_block { ngx.say("new: ", ngx.ctx.where) }
    }
--- request eval
["GET /old/a", "GET /keep/b"]
--- response_body eval
["new: /new/a\n", "new: /new/b\n"]
--- no_error_log
[error]



=== TEST 6: a *_by_lua_file that cannot be read answers 404, as lua-nginx-module does
--- config
    location /content { content_by_lua_file html/missing.lua; }
    location /rewrite { rewrite_by_lua_file html/missing.lua; }
--- request eval
["GET /content", "GET /rewrite"]
--- error_code eval
[404, 404]
--- error_log eval
qr/failed to load external Lua file ".*missing\.lua": cannot open .*missing\.lua/
