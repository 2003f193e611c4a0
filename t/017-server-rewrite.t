use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: server_rewrite_by_lua_block runs before the location is chosen, and may wait
--- config
    server_rewrite_by_lua_block {
        ngx.sleep(0.01)
        ngx.ctx.phase = ngx.get_phase()
        if ngx.var.uri == "/old" then
            ngx.req.set_uri("/new")
        end
    }
    location /new {
        content_by_lua_block { ngx.say("new location, server phase: ", ngx.ctx.phase) }
    }
--- request
GET /old
--- response_body
new location, server phase: server_rewrite
--- no_error_log
[error]



=== TEST 2: ngx.exit in server_rewrite_by_lua ends the request
--- config
    server_rewrite_by_lua_block { ngx.exit(403) }
    location /t { content_by_lua_block { ngx.say("unreachable") } }
--- request
GET /t
--- error_code: 403
--- no_error_log
[error]



=== TEST 3: server_rewrite_by_lua inherited from http and run before rewrite_by_lua
--- http_config
    server_rewrite_by_lua_block { ngx.ctx.order = "server" }
--- config
    location /t {
        rewrite_by_lua_block { ngx.ctx.order = ngx.ctx.order .. ",rewrite" }
        content_by_lua_block { ngx.say(ngx.ctx.order) }
    }
--- request
GET /t
--- response_body
server,rewrite
--- no_error_log
[error]



=== TEST 4: server_rewrite_by_lua_file
--- user_files
>>> sr.lua
ngx.ctx.from_file = "yes"
--- config
    server_rewrite_by_lua_file html/sr.lua;
    location /t { content_by_lua_block { ngx.say(ngx.ctx.from_file) } }
--- request
GET /t
--- response_body
yes
