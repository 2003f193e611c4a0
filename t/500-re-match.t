use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: numbered and named captures; unmatched groups are false
--- config
    location /t {
        content_by_lua_block {
            local m = ngx.re.match("hello, 1234 world", [[(\d+)\s+(?<word>\w+)(x)?]])
            ngx.say(m[0], "|", m[1], "|", m[2], "|", m.word, "|", tostring(m[3]))
            local m2 = ngx.re.match("abc", "(a)|(z)")
            ngx.say(m2[0], " ", m2[1], " ", tostring(m2[2]))
            ngx.say(tostring(ngx.re.match("abc", "\\d")))
            local m3 = ngx.re.match(12345, "3(4)")
            ngx.say(m3[0], " ", m3[1])
        }
    }
--- request
GET /t
--- response_body
1234 world|1234|world|world|false
a a false
nil
34 4
--- no_error_log
[error]



=== TEST 2: options i, x, s, m, a
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.match("HeLLo", "hello", "i")[0])
            ngx.say(tostring(ngx.re.match("HeLLo", "hello")))
            ngx.say(ngx.re.match("abc123", [[ [a-z]+  # letters
                                              (\d+)   # digits ]], "x")[1])
            ngx.say(tostring(ngx.re.match("a\nb", "a.b")), " ", ngx.re.match("a\nb", "a.b", "s")[0] == "a\nb")
            ngx.say(tostring(ngx.re.match("x\nfoo", "^foo")), " ", ngx.re.match("x\nfoo", "^foo", "m")[0])
            ngx.say(tostring(ngx.re.match("xfoo", "foo", "a")), " ", ngx.re.match("foox", "foo", "a")[0])
            ngx.say(ngx.re.match("FOO\nbar", "foo$", "imjo")[0])
        }
    }
--- request
GET /t
--- response_body
HeLLo
nil
123
nil true
nil foo
nil foo
FOO
--- no_error_log
[error]



=== TEST 3: ctx.pos is read and advanced; anchored match at pos
--- config
    location /t {
        content_by_lua_block {
            local ctx = {}
            local m = ngx.re.match("1 22 333", "\\d+", "", ctx)
            ngx.say(m[0], " ", ctx.pos)
            m = ngx.re.match("1 22 333", "\\d+", "", ctx)
            ngx.say(m[0], " ", ctx.pos)
            ctx.pos = 6
            m = ngx.re.match("1 22 333", "\\d+", "a", ctx)
            ngx.say(m[0], " ", ctx.pos)
            ctx.pos = 5
            ngx.say(tostring(ngx.re.match("1 22 333", "\\d+", "a", ctx)), " ", ctx.pos)
            ctx.pos = 100
            ngx.say(tostring(ngx.re.match("abc", "c", nil, ctx)))
        }
    }
--- request
GET /t
--- response_body
1 2
22 5
333 9
nil 5
nil
--- no_error_log
[error]



=== TEST 4: compile errors and bad arguments
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.match("abc", "(abc"))
            ngx.say(ngx.re.match("abc", "a(?<x)b"))
            local ok, err = pcall(ngx.re.match, "abc", "a", "Q")
            ngx.say(err)
            ok, err = pcall(ngx.re.match, nil, "a")
            ngx.say(err)
            ok, err = pcall(ngx.re.match, "a", {})
            ngx.say(err)
            ok, err = pcall(ngx.re.match, "a", "a", nil, "ctx")
            ngx.say(err)
            ok, err = pcall(ngx.re.match, "a", "a", 3)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\Anilpcre2_compile\(\) failed: missing closing parenthesis in "\(abc"
nilpcre2_compile\(\) failed: .* in "a\(\?<x\)b" at "\)b"
.*unknown flag "Q" \(flags "Q"\)
.*bad argument #1 to 'match' \(string expected, got nil\)
.*bad argument #2 to 'match' \(string expected, got table\)
.*bad argument #4 to 'match' \(table expected, got string\)
.*bad argument #3 to 'match' \(string expected, got number\)
\z
--- no_error_log
[error]



=== TEST 5: res_table is reused
--- config
    location /t {
        content_by_lua_block {
            local res = {}
            local m = ngx.re.match("ab", "(a)(b)", nil, nil, res)
            ngx.say(m == res, " ", res[0], res[1], res[2])
            m = ngx.re.match("cd", "(c)(x)?", nil, nil, res)
            ngx.say(m == res, " ", res[0], res[1], tostring(res[2]))
        }
    }
--- request
GET /t
--- response_body
true abab
true ccfalse
--- no_error_log
[error]



=== TEST 6: UTF-8 with u; invalid UTF-8 is an error with u
--- config
    location /t {
        content_by_lua_block {
            local m = ngx.re.match("héllo wörld", "^(.)(.)", "u")
            ngx.say(m[2], " ", #m[2])
            m = ngx.re.match("héllo", "^(.)(.)")
            ngx.say(#m[2])
            ngx.say(ngx.re.match("h\255llo", "l", "u"))
            ngx.say(ngx.re.match("日本語", "\\x{672C}", "U")[0])
            -- JIT-compiled: the subject is still checked unless U says not to
            ngx.say(ngx.re.match("h\255llo", "l", "ju"))
            ngx.say(ngx.re.match("日本語", "\\x{672C}", "jU")[0])
            ngx.say(ngx.re.match("héllo", "^(.)(.)", "ju")[2])
        }
    }
--- request
GET /t
--- response_body_like chomp
\Aé 2
1
nilpcre_exec\(\) failed: -\d+
本
nilpcre_exec\(\) failed: -\d+
本
é
\z
--- no_error_log
[error]



=== TEST 7: duplicate names with D collect only the groups that matched; without D an unmatched named group is false
--- config
    location /t {
        content_by_lua_block {
            local m = ngx.re.match("b", "(?<n>a)|(?<n>b)", "D")
            ngx.say(#m.n, " ", m.n[1], " ", tostring(m.n[2]))
            m = ngx.re.match("c", "(?<n>a)|(?<n>b)|c", "D")
            ngx.say(tostring(m.n), " ", m[0])
            local m2 = ngx.re.match("b", "(?<x>a)?b")
            ngx.say(tostring(m2.x))
            local m3 = ngx.re.match("b", "(?<n>a)|(?<n>b)")
            ngx.say(m3)
        }
    }
--- request
GET /t
--- response_body
1 b nil
nil c
false
nil
--- no_error_log
[error]



=== TEST 8: J (JavaScript compatibility) accepts \u escapes and unset back references
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.match("A", [[\u0041]], "J")[0])
            local m, err = ngx.re.match("A", [[\u0041]])
            ngx.say(m, " ", err ~= nil)
            ngx.say(ngx.re.match("b", [[(a)?\1b]], "J")[0])
            ngx.say(ngx.re.match("b", [[(a)?\1b]]))
        }
    }
--- request
GET /t
--- response_body
A
nil true
b
nil
--- no_error_log
[error]
