use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: sub and gsub with templates
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.sub("hello, world", "o", "0"))
            ngx.say(ngx.re.gsub("hello, world", "o", "0"))
            ngx.say(ngx.re.gsub("hello, world", "([a-z])([a-z]+)", "[$0|$1|${2}x]"))
            ngx.say(ngx.re.gsub("john smith", "(?<first>\\w+) (?<last>\\w+)", "${last}, ${first} $$5"))
            ngx.say(ngx.re.gsub("ab", "(a)|(b)", "<$2>"))
            ngx.say(ngx.re.gsub("abc", "b", "$9"))
            ngx.say(ngx.re.sub("abc", "z", "y"))
            ngx.say(ngx.re.gsub(123, 2, 7))
        }
    }
--- request
GET /t
--- response_body
hell0, world1
hell0, w0rld2
[hello|h|ellox], [world|w|orldx]2
smith, john $51
<><b>2
ac1
abc0
1731
--- no_error_log
[error]



=== TEST 2: bad templates (with lua-nginx-module's error log lines), compile errors, bad arguments
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.gsub("abc", "b", "$x"))
            ngx.say(ngx.re.gsub("abc", "b", "${1"))
            ngx.say(ngx.re.gsub("abc", "b", "x$"))
            ngx.say(ngx.re.gsub("abc", "b", "${nope}"))
            ngx.say(ngx.re.sub("abc", "(b", "x"))
            local ok, err = pcall(ngx.re.gsub, "abc", "b")
            ngx.say(err)
            ok, err = pcall(ngx.re.sub, "abc", "b", {})
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\Anilnilfailed to compile the replacement template
nilnilfailed to compile the replacement template
nilnilfailed to compile the replacement template
nilnilfailed to compile the replacement template
nilnilpcre2_compile\(\) failed: missing closing parenthesis in "\(b"
.*bad argument #3 to 'gsub' \(string expected, got nil\)
.*bad argument #3 to 'sub' \(string expected, got table\)
\z
--- error_log
attempt to use named capturing variable "x" (named captures not supported yet)
the closing bracket in "1" variable is missing
lua script: invalid capturing variable name found in "x$"
attempt to use named capturing variable "nope" (named captures not supported yet)



=== TEST 3: function replacements get the captures table
--- config
    location /t {
        content_by_lua_block {
            local s, n = ngx.re.gsub("a1 b22 c", "(?<l>[a-z])(\\d*)", function(m)
                return m.l:upper() .. (m[2] == "" and "-" or #m[2])
            end)
            ngx.say(s, " ", n)
            ngx.say(ngx.re.sub("x5y", "\\d", function(m) return m[0] * 2 end))
            -- the function may run ngx.re itself, on the same cached regex
            ngx.say(ngx.re.gsub("a-b-c", "[a-z]", function(m)
                return ngx.re.gsub(m[0], "[a-z]", "<$0>", "o")
            end, "o"))
        }
    }
--- request
GET /t
--- response_body
A1 B2 C- 3
x10y1
<a>-<b>-<c>3
--- no_error_log
[error]



=== TEST 4: errors in the replacement function propagate unchanged
--- config
    location /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.re.gsub, "abc", "b", function() error({code = 7}) end)
            ngx.say(ok, " ", type(err), " ", err.code)
            ok, err = pcall(ngx.re.gsub, "abc", "b", function() error("boom") end)
            ngx.say(ok, " ", err)
            ok, err = pcall(function() local s = ngx.re.gsub("abc", "b", function() end) return s end)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\Afalse table 7
false content_by_lua\(nginx.conf:\d+\):4: boom
false content_by_lua\(nginx.conf:\d+\):6: attempt to use a nil value as the replacement of 'gsub'
\z
--- no_error_log
[error]



=== TEST 5: gsub on empty matches and UTF-8
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.gsub("abc", "", "-"))
            ngx.say(ngx.re.gsub("baaac", "a*", "-"))
            ngx.say(ngx.re.gsub("héllo", "", "|", "u"))
            ngx.say(ngx.re.gsub("", "x*", "E"))
            ngx.say(ngx.re.sub("abc", "$", "!"))
        }
    }
--- request
GET /t
--- response_body
-a-b-c-4
-b--c-4
|h|é|l|l|o|6
E1
abc!1
--- no_error_log
[error]



=== TEST 6: gsub on a big subject
--- config
    location /t {
        content_by_lua_block {
            local big = string.rep("ab1", 100000)
            local s, n = ngx.re.gsub(big, "\\d", "", "jo")
            ngx.say(#s, " ", n, " ", s == string.rep("ab", 100000))
            local count = 0
            for m in ngx.re.gmatch(big, "b(\\d)", "jo") do count = count + 1 end
            ngx.say(count)
            local m = ngx.re.match(big .. "zz", "z+$", "jo")
            ngx.say(m[0])
        }
    }
--- request
GET /t
--- response_body
200000 100000 true
100000
zz
--- no_error_log
[error]



=== TEST 7: templates put parts of every length together byte for byte (text around the match, literals, captures, $$), as string.gsub does
--- config
    location /t {
        content_by_lua_block {
            local bad = 0
            for n = 0, 40 do
                for m = 0, 20 do
                    -- a subject with n bytes before and after a match, and a
                    -- template literal of m bytes around the captures
                    local pre, post = ("abcdefghij"):rep(5):sub(1, n), ("KLMNOPQRST"):rep(5):sub(1, n)
                    local lit = ("0123456789"):rep(3):sub(1, m)
                    local word = ("wxyz"):rep(10):sub(1, m + 1)
                    local subj = pre .. "<" .. word .. "=" .. lit .. ">" .. post
                    local tmpl = lit .. "[$2|$1]$$" .. lit
                    local got, count = ngx.re.sub(subj, [[<(\w+)=(\d*)>]], tmpl, "jo")
                    local want = string.gsub(subj, "<(%w+)=(%d*)>", function(a, b)
                        return lit .. "[" .. b .. "|" .. a .. "]$" .. lit
                    end)
                    local gall, gcount = ngx.re.gsub(subj .. subj, [[<(\w+)=(\d*)>]], tmpl, "jo")
                    local gwant = string.gsub(subj .. subj, "<(%w+)=(%d*)>", function(a, b)
                        return lit .. "[" .. b .. "|" .. a .. "]$" .. lit
                    end)
                    if got ~= want or count ~= 1 or gall ~= gwant or gcount ~= 2 then
                        bad = bad + 1
                        if bad == 1 then ngx.say(n, " ", m, ": ", got, " ~= ", want) end
                    end
                end
            end
            ngx.say("mismatches: ", bad)
        }
    }
--- request
GET /t
--- response_body
mismatches: 0
--- no_error_log
[error]
