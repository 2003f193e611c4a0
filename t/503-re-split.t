use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: split on a separator, keeping captured separators
--- config
    location /t {
        content_by_lua_block {
            local ngx_re = require "ngx.re"
            local function show(res, err)
                if not res then ngx.say("err: ", err) return end
                local out = {}
                for i, v in ipairs(res) do out[i] = "[" .. v .. "]" end
                ngx.say(#res, " ", table.concat(out))
            end
            show(ngx_re.split("a,b,c,d", ","))
            show(ngx_re.split("a,b;c", "([,;])"))
            -- no max: the empty fields at the end go (lua-resty-core)
            show(ngx_re.split("a,,b,", ","))
            show(ngx_re.split("a,b,cd,,,", ","))
            show(ngx_re.split(",,", ","))
            show(ngx_re.split("a,b,,", ",", nil, nil, 10))
            show(ngx_re.split("a;,b", "([,;])"))
            show(ngx_re.split("abcd", ""))
            show(ngx_re.split(",a", ","))
            show(ngx_re.split("", ","))
            show(ngx_re.split("abc", "x"))
            show(ngx_re.split("a, b ,c", "\\s*,\\s*", "jo"))
            show(ngx_re.split("a,b", "(,"))
        }
    }
--- request
GET /t
--- response_body
4 [a][b][c][d]
5 [a][,][b][;][c]
3 [a][][b]
3 [a][b][cd]
0 
4 [a][b][][]
5 [a][;][][,][b]
4 [a][b][c][d]
2 [][a]
0 
1 [abc]
3 [a][b][c]
err: pcre2_compile() failed: missing closing parenthesis in "(,"
--- no_error_log
[error]



=== TEST 2: split with max, ctx and a reused res table
--- config
    location /t {
        content_by_lua_block {
            local ngx_re = require "ngx.re"
            local res = ngx_re.split("a,b,c,d", ",", nil, nil, 2)
            ngx.say(#res, " ", res[1], " ", res[2])
            local ctx = { pos = 3 }
            res = ngx_re.split("a,b,c,d", ",", nil, ctx)
            ngx.say(table.concat(res, " "), " ", ctx.pos)
            local mine = { "x", "y", "z", "w", "v" }
            res = ngx_re.split("1-2", "-", nil, nil, nil, mine)
            ngx.say(res == mine, " ", res[1], res[2], " ", tostring(res[3]))
            local ok, err = pcall(ngx_re.split, "a", ",", nil, nil, nil, "no")
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\A2 a b,c,d
b c d 7
true 12 nil
.*res is not a table
\z
--- no_error_log
[error]
