# vim:set ft= ts=4 sw=4 et fdm=marker:
use Test::Nginx::Socket::Lua;

repeat_each(2);
plan tests => repeat_each() * (blocks() * 3);
no_long_string();
run_tests();

__DATA__

=== TEST 1: the module loads alone (no NDK) and content_by_lua_block responds
--- config
    location /t {
        content_by_lua_block {
            ngx.say("hello, ", "world")
        }
    }
--- request
GET /t
--- response_body
hello, world
--- no_error_log
[error]



=== TEST 2: content_by_lua with a quoted string
--- config
    location /t {
        content_by_lua 'ngx.say("inline")';
    }
--- request
GET /t
--- response_body
inline
--- no_error_log
[error]



=== TEST 3: a runtime error gives 500 and the entry thread abort in error.log
--- config
    location /t {
        content_by_lua_block {
            local a = 1
            error("something bad")
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
[qr/lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: something bad/,
"stack traceback:"]



=== TEST 4: braces, quotes, long strings and comments inside a block
--- config
    location /t {
        content_by_lua_block {
            local s = "}{;"   -- a comment with } and {
            local t = { a = '{', b = [[ } ]], c = [==[ ]] } ]==] }
            --[[ a long comment }
            ]]
            ngx.say(s, t.a, t.b, t.c)
        }
    }
--- request
GET /t
--- response_body
}{;{ }  ]] } 
--- no_error_log
[error]



=== TEST 5: ngx.print of numbers, booleans, nil, ngx.null and nested arrays
--- config
    location /t {
        content_by_lua_block {
            ngx.print(1, " ", 2.5, " ", true, " ", false, " ", nil, " ", ngx.null, " ", {"a", {"b", "c"}, 3})
            ngx.print("\n")
        }
    }
--- request
GET /t
--- response_body
1 2.5 true false nil null abc3
--- no_error_log
[error]



=== TEST 6: ngx.say with a hash table is a bad argument
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.say, {a = 1})
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
false bad argument #1 to 'say' (non-array table found)
--- no_error_log
[error]
