use Test::Nginx::Socket::Lua;

repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: sizes with k and m suffixes
--- http_config
    lua_shared_dict a 64k;
    lua_shared_dict b 2M;
    lua_shared_dict c 65536;
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.shared.a:capacity(), " ", ngx.shared.b:capacity(), " ", ngx.shared.c:capacity())
        }
    }
--- request
GET /t
--- response_body
65536 2097152 65536
--- no_error_log
[error]



=== TEST 2: a size below 8k is refused
--- http_config
    lua_shared_dict a 8191;
--- config
    location /t { return 200; }
--- must_die
--- error_log
invalid lua shared dict size "8191"



=== TEST 3: a size that is not a size is refused
--- http_config
    lua_shared_dict a 1x;
--- config
    location /t { return 200; }
--- must_die
--- error_log
invalid lua shared dict size "1x"



=== TEST 4: the same name twice is refused
--- http_config
    lua_shared_dict a 1m;
    lua_shared_dict a 1m;
--- config
    location /t { return 200; }
--- must_die
--- error_log
lua_shared_dict "a" is already defined as "a"



=== TEST 5: the same name with another size is refused by nginx
--- http_config
    lua_shared_dict a 1m;
    lua_shared_dict a 2m;
--- config
    location /t { return 200; }
--- must_die
--- error_log
the size 2097152 of shared memory zone "a" conflicts with already declared size 1048576



=== TEST 6: only in the http block
--- config
    lua_shared_dict a 1m;
    location /t { return 200; }
--- must_die
--- error_log
"lua_shared_dict" directive is not allowed here



=== TEST 7: wrong number of arguments
--- http_config
    lua_shared_dict a;
--- config
    location /t { return 200; }
--- must_die
--- error_log
invalid number of arguments in "lua_shared_dict" directive



=== TEST 8: the zone shares its name space with nginx's other zones
--- http_config
    limit_req_zone $binary_remote_addr zone=a:1m rate=1r/s;
    lua_shared_dict a 1m;
--- config
    location /t { return 200; }
--- must_die
--- error_log
the shared memory zone "a" is already declared for a different use
