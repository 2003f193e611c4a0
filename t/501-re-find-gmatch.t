use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: find returns from/to of the match or of group nth
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.find("hello, 1234", "[0-9]+"))
            ngx.say(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo", nil, 2))
            ngx.say(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", nil, nil, 0))
            ngx.say(ngx.re.find("hello", "(x)?h", nil, nil, 1))
            ngx.say(ngx.re.find("hello", "(h)", nil, nil, 2))
            ngx.say(ngx.re.find("hello", "z"))
            ngx.say(ngx.re.find("hello", "(z"))
            ngx.say(ngx.re.find("hello", "", nil, nil))
        }
    }
--- request
GET /t
--- response_body
811
911
811
nil
nilnilnth out of bound
nil
nilnilpcre2_compile() failed: missing closing parenthesis in "(z"
10
--- no_error_log
[error]



=== TEST 2: find with ctx.pos walks the subject
--- config
    location /t {
        content_by_lua_block {
            local ctx = { pos = 2 }
            local out = {}
            while true do
                local from, to = ngx.re.find("a1b22c333", "\\d+", "jo", ctx)
                if not from then break end
                out[#out + 1] = from .. "-" .. to .. "@" .. ctx.pos
            end
            ngx.say(table.concat(out, " "))
        }
    }
--- request
GET /t
--- response_body
2-2@3 4-5@6 7-9@10
--- no_error_log
[error]



=== TEST 3: gmatch iterates all matches with captures
--- config
    location /t {
        content_by_lua_block {
            local it, err = ngx.re.gmatch("k1=v1, k2=v2; k3=", [[(?<k>\w+)=(\w*)]])
            while true do
                local m, err = it()
                if err then ngx.say("err: ", err) return end
                if not m then break end
                ngx.say(m[0], " ", m.k, " [", m[2], "]")
            end
            ngx.say(tostring(it()))
            ngx.say(ngx.re.gmatch("a", "(a"))
            for m in ngx.re.gmatch("A b C", "[a-z]", "i") do ngx.print(m[0]) end
            ngx.say()
        }
    }
--- request
GET /t
--- response_body
k1=v1 k1 [v1]
k2=v2 k2 [v2]
k3= k3 []
nil
nilpcre2_compile() failed: missing closing parenthesis in "(a"
AbC
--- no_error_log
[error]



=== TEST 4: gmatch advances past empty matches, UTF-8 aware with u
--- config
    location /t {
        content_by_lua_block {
            local out = {}
            for m in ngx.re.gmatch("baaac", "a*") do out[#out + 1] = "[" .. m[0] .. "]" end
            ngx.say(table.concat(out))
            out = {}
            for m in ngx.re.gmatch("", "x*") do out[#out + 1] = "[" .. m[0] .. "]" end
            ngx.say(#out)
            out = {}
            for m in ngx.re.gmatch("héé", "", "u") do out[#out + 1] = "." end
            ngx.say(#out)
            out = {}
            for m in ngx.re.gmatch("日本", "(?=.)", "u") do out[#out + 1] = "." end
            ngx.say(#out)
        }
    }
--- request
GET /t
--- response_body
[][aaa][][]
1
4
2
--- no_error_log
[error]



=== TEST 5: a gmatch iterator survives garbage collection of its creator's state
--- config
    location /t {
        content_by_lua_block {
            local its = {}
            for i = 1, 50 do
                its[i] = ngx.re.gmatch(string.rep("x", i) .. "y", "x", "o")
            end
            collectgarbage()
            local n = 0
            for i = 1, 50 do
                for m in its[i] do n = n + 1 end
            end
            its = nil
            collectgarbage()
            ngx.say(n)
        }
    }
--- request
GET /t
--- response_body
1275
--- no_error_log
[error]
