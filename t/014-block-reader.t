use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: a block larger than nginx's configuration buffer, and the directives after it
--- config
    location /t {
        content_by_lua_block {
            local s = [==[ a long string with ]] and } and { inside ]==]
            -- filler line 0 with braces } { and quotes ' " inside a comment
            -- filler line 1 with braces } { and quotes ' " inside a comment
            -- filler line 2 with braces } { and quotes ' " inside a comment
            -- filler line 3 with braces } { and quotes ' " inside a comment
            -- filler line 4 with braces } { and quotes ' " inside a comment
            -- filler line 5 with braces } { and quotes ' " inside a comment
            -- filler line 6 with braces } { and quotes ' " inside a comment
            -- filler line 7 with braces } { and quotes ' " inside a comment
            -- filler line 8 with braces } { and quotes ' " inside a comment
            -- filler line 9 with braces } { and quotes ' " inside a comment
            -- filler line 10 with braces } { and quotes ' " inside a comment
            -- filler line 11 with braces } { and quotes ' " inside a comment
            -- filler line 12 with braces } { and quotes ' " inside a comment
            -- filler line 13 with braces } { and quotes ' " inside a comment
            -- filler line 14 with braces } { and quotes ' " inside a comment
            -- filler line 15 with braces } { and quotes ' " inside a comment
            -- filler line 16 with braces } { and quotes ' " inside a comment
            -- filler line 17 with braces } { and quotes ' " inside a comment
            -- filler line 18 with braces } { and quotes ' " inside a comment
            -- filler line 19 with braces } { and quotes ' " inside a comment
            -- filler line 20 with braces } { and quotes ' " inside a comment
            -- filler line 21 with braces } { and quotes ' " inside a comment
            -- filler line 22 with braces } { and quotes ' " inside a comment
            -- filler line 23 with braces } { and quotes ' " inside a comment
            -- filler line 24 with braces } { and quotes ' " inside a comment
            -- filler line 25 with braces } { and quotes ' " inside a comment
            -- filler line 26 with braces } { and quotes ' " inside a comment
            -- filler line 27 with braces } { and quotes ' " inside a comment
            -- filler line 28 with braces } { and quotes ' " inside a comment
            -- filler line 29 with braces } { and quotes ' " inside a comment
            -- filler line 30 with braces } { and quotes ' " inside a comment
            -- filler line 31 with braces } { and quotes ' " inside a comment
            -- filler line 32 with braces } { and quotes ' " inside a comment
            -- filler line 33 with braces } { and quotes ' " inside a comment
            -- filler line 34 with braces } { and quotes ' " inside a comment
            -- filler line 35 with braces } { and quotes ' " inside a comment
            -- filler line 36 with braces } { and quotes ' " inside a comment
            -- filler line 37 with braces } { and quotes ' " inside a comment
            -- filler line 38 with braces } { and quotes ' " inside a comment
            -- filler line 39 with braces } { and quotes ' " inside a comment
            -- filler line 40 with braces } { and quotes ' " inside a comment
            -- filler line 41 with braces } { and quotes ' " inside a comment
            -- filler line 42 with braces } { and quotes ' " inside a comment
            -- filler line 43 with braces } { and quotes ' " inside a comment
            -- filler line 44 with braces } { and quotes ' " inside a comment
            -- filler line 45 with braces } { and quotes ' " inside a comment
            -- filler line 46 with braces } { and quotes ' " inside a comment
            -- filler line 47 with braces } { and quotes ' " inside a comment
            -- filler line 48 with braces } { and quotes ' " inside a comment
            -- filler line 49 with braces } { and quotes ' " inside a comment
            -- filler line 50 with braces } { and quotes ' " inside a comment
            -- filler line 51 with braces } { and quotes ' " inside a comment
            -- filler line 52 with braces } { and quotes ' " inside a comment
            -- filler line 53 with braces } { and quotes ' " inside a comment
            -- filler line 54 with braces } { and quotes ' " inside a comment
            -- filler line 55 with braces } { and quotes ' " inside a comment
            -- filler line 56 with braces } { and quotes ' " inside a comment
            -- filler line 57 with braces } { and quotes ' " inside a comment
            -- filler line 58 with braces } { and quotes ' " inside a comment
            -- filler line 59 with braces } { and quotes ' " inside a comment
            -- filler line 60 with braces } { and quotes ' " inside a comment
            -- filler line 61 with braces } { and quotes ' " inside a comment
            -- filler line 62 with braces } { and quotes ' " inside a comment
            -- filler line 63 with braces } { and quotes ' " inside a comment
            -- filler line 64 with braces } { and quotes ' " inside a comment
            -- filler line 65 with braces } { and quotes ' " inside a comment
            -- filler line 66 with braces } { and quotes ' " inside a comment
            -- filler line 67 with braces } { and quotes ' " inside a comment
            -- filler line 68 with braces } { and quotes ' " inside a comment
            -- filler line 69 with braces } { and quotes ' " inside a comment
            -- filler line 70 with braces } { and quotes ' " inside a comment
            -- filler line 71 with braces } { and quotes ' " inside a comment
            -- filler line 72 with braces } { and quotes ' " inside a comment
            -- filler line 73 with braces } { and quotes ' " inside a comment
            -- filler line 74 with braces } { and quotes ' " inside a comment
            -- filler line 75 with braces } { and quotes ' " inside a comment
            -- filler line 76 with braces } { and quotes ' " inside a comment
            -- filler line 77 with braces } { and quotes ' " inside a comment
            -- filler line 78 with braces } { and quotes ' " inside a comment
            -- filler line 79 with braces } { and quotes ' " inside a comment
            -- filler line 80 with braces } { and quotes ' " inside a comment
            -- filler line 81 with braces } { and quotes ' " inside a comment
            -- filler line 82 with braces } { and quotes ' " inside a comment
            -- filler line 83 with braces } { and quotes ' " inside a comment
            -- filler line 84 with braces } { and quotes ' " inside a comment
            -- filler line 85 with braces } { and quotes ' " inside a comment
            -- filler line 86 with braces } { and quotes ' " inside a comment
            -- filler line 87 with braces } { and quotes ' " inside a comment
            -- filler line 88 with braces } { and quotes ' " inside a comment
            -- filler line 89 with braces } { and quotes ' " inside a comment
            -- filler line 90 with braces } { and quotes ' " inside a comment
            -- filler line 91 with braces } { and quotes ' " inside a comment
            -- filler line 92 with braces } { and quotes ' " inside a comment
            -- filler line 93 with braces } { and quotes ' " inside a comment
            -- filler line 94 with braces } { and quotes ' " inside a comment
            -- filler line 95 with braces } { and quotes ' " inside a comment
            -- filler line 96 with braces } { and quotes ' " inside a comment
            -- filler line 97 with braces } { and quotes ' " inside a comment
            -- filler line 98 with braces } { and quotes ' " inside a comment
            -- filler line 99 with braces } { and quotes ' " inside a comment
            -- filler line 100 with braces } { and quotes ' " inside a comment
            -- filler line 101 with braces } { and quotes ' " inside a comment
            -- filler line 102 with braces } { and quotes ' " inside a comment
            -- filler line 103 with braces } { and quotes ' " inside a comment
            -- filler line 104 with braces } { and quotes ' " inside a comment
            -- filler line 105 with braces } { and quotes ' " inside a comment
            -- filler line 106 with braces } { and quotes ' " inside a comment
            -- filler line 107 with braces } { and quotes ' " inside a comment
            -- filler line 108 with braces } { and quotes ' " inside a comment
            -- filler line 109 with braces } { and quotes ' " inside a comment
            -- filler line 110 with braces } { and quotes ' " inside a comment
            -- filler line 111 with braces } { and quotes ' " inside a comment
            -- filler line 112 with braces } { and quotes ' " inside a comment
            -- filler line 113 with braces } { and quotes ' " inside a comment
            -- filler line 114 with braces } { and quotes ' " inside a comment
            -- filler line 115 with braces } { and quotes ' " inside a comment
            -- filler line 116 with braces } { and quotes ' " inside a comment
            -- filler line 117 with braces } { and quotes ' " inside a comment
            -- filler line 118 with braces } { and quotes ' " inside a comment
            -- filler line 119 with braces } { and quotes ' " inside a comment
            ngx.say("big block ok: ", #s)
        }
    }
    location /after {
        content_by_lua_block { ngx.say("after") }
    }
--- request eval
["GET /t", "GET /after"]
--- response_body eval
["big block ok: 42\n", "after\n"]
--- no_error_log
[error]



=== TEST 2: chunk names carry the directive's line in nginx.conf
--- config
    location /t {
        set_by_lua_block $first { return debug.getinfo(1, "S").source }
        set_by_lua_block $middle {
            local t = { "}", '{', [[ } ]] }
            -- } a comment
            return #t
        }
        set_by_lua_block $second { return debug.getinfo(1, "S").source }
        content_by_lua_block {
            local a = tonumber(ngx.var.first:match(":(%d+)%)$"))
            local b = tonumber(ngx.var.second:match(":(%d+)%)$"))
            ngx.say(ngx.var.first:match("^=set_by_lua%(nginx%.conf:%d+%)$") ~= nil, " ", b - a)
        }
    }
--- request
GET /t
--- response_body
true 6
--- no_error_log
[error]



=== TEST 3: nginx -T prints the configuration, Lua blocks included, intact
--- config
    location /t {
        content_by_lua_block {
            local marker = "a; b } { c"  -- unbalanced } { and ; stay as written
            -- the binary running this test (Debian's or another nginx)
            local h = io.popen("readlink /proc/" .. ngx.worker.pid() .. "/exe")
            local exe = h:read("*l")
            h:close()
            local p = io.popen(exe .. " -T -p " .. ngx.config.prefix() .. " -c conf/nginx.conf 2>&1")
            local out = p:read("*a")
            p:close()
            ngx.say(out:find('local marker = "a; b } { c"  -- unbalanced } { and ; stay as written', 1, true) ~= nil)
            ngx.say(out:find("location /t {", 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
true
true



=== TEST 4: a Lua syntax error fails the requests that run the code (500), not the configuration
--- config
    location /t {
        content_by_lua_block {
            local x = = 1
        }
    }
    location /other {
        content_by_lua_block { ngx.say("other is fine") }
    }
--- request eval
["GET /t", "GET /other", "GET /t"]
--- error_code eval
[500, 200, 500]
--- response_body_like eval
["500 Internal Server Error", "other is fine", "500 Internal Server Error"]
--- error_log eval
qr/\[error\] .*failed to load inlined Lua code: content_by_lua\(nginx\.conf:\d+\):2: unexpected symbol near '='/



=== TEST 5: an unterminated block fails the configuration
--- config
    location /t {
        content_by_lua_block {
            local s = "never closed
--- must_die
--- error_log
unexpected end of file



=== TEST 6: a Lua syntax error in init_by_lua fails too, logged at the error level with the compiler's message
--- http_config
    init_by_lua_block { if then end }
--- config
    location /t { return 200; }
--- must_die
--- error_log eval
qr/\[error\] .*init_by_lua error: init_by_lua\(nginx\.conf:\d+\):1: unexpected symbol near 'then'/



=== TEST 7: a location-level directive at the server level is refused as nginx refuses it
--- config
    proxy_ssl_verify_by_lua_file x.lua;
    location /t {
        return 200;
    }
--- must_die
--- error_log
"proxy_ssl_verify_by_lua_file" directive is not allowed here



=== TEST 8: on|off directives answer a bad value as nginx does
--- http_config
    lua_sa_restart maybe;
--- config
    location /t { return 200; }
--- must_die
--- error_log
invalid value "maybe" in "lua_sa_restart" directive, it must be "on" or "off"



=== TEST 9: a count directive given twice is a duplicate
--- http_config
    lua_thread_cache_max_entries 10;
    lua_thread_cache_max_entries 20;
--- config
    location /t { return 200; }
--- must_die
--- error_log
"lua_thread_cache_max_entries" directive is duplicate



=== TEST 10: flags accept any case, as nginx's own on|off directives
--- http_config
    lua_sa_restart OFF;
--- config
    location /t {
        lua_need_request_body On;
        content_by_lua_block { ngx.say(ngx.req.get_body_data()) }
    }
--- request
POST /t
hello
--- response_body
hello



=== TEST 11: a long string left open fails the configuration, naming the bracket that would close it
--- config
    location /t {
        content_by_lua_block {
            ngx.say([==[never closed)
        }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*Lua code block missing the closing long bracket "\]==\]", the inlined Lua code may be too long in .*nginx\.conf:\d+/



=== TEST 12: so does a long comment left open (the bracket shown without the dashes)
--- config
    location /t {
        content_by_lua_block {
            --[=[ a comment
            ngx.say("x")
        }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*Lua code block missing the closing long bracket "\]=\]"/



=== TEST 13: a long string must close within half of nginx's 4 KiB configuration buffer
--- config eval
"location /t {
    content_by_lua_block {
        local s = [[" . ("x" x 2100) . "]]
        ngx.say(#s)
    }
}"
--- must_die
--- error_log eval
qr/\[emerg\] .*Lua code block missing the closing long bracket "\]\]", the inlined Lua code may be too long/



=== TEST 14: a long string well within the buffer is fine, wherever the buffer is refilled
--- config eval
"location /t {
    content_by_lua_block {
        local a = [[" . ("a" x 1500) . "]]
        local b = [=[" . ("b" x 1500) . "]=]
        local c = --[==[ " . ("c" x 1500) . " ]==] [[" . ("d" x 1500) . "]]
        ngx.say(#a, ' ', #b, ' ', #c)
    }
}"
--- request
GET /t
--- response_body
1500 1500 1500



=== TEST 15: init_by_lua_file errors name the directive and the file
--- http_config
    init_by_lua_file html/init.lua;
--- config
    location /t { return 200; }
--- user_files
>>> init.lua
local x = 1
error("init file fails")
--- must_die
--- error_log eval
qr/\[error\] .*init_by_lua_file error: .*html\/init\.lua:2: init file fails/
