use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: with a cache of 2 entries, many distinct o patterns still match
--- http_config
    lua_regex_cache_max_entries 2;
--- config
    location /t {
        content_by_lua_block {
            local ok = 0
            for round = 1, 3 do
                for i = 1, 50 do
                    local m = ngx.re.match("x" .. i .. "y", "x(" .. i .. ")y", "o")
                    if m and m[1] == tostring(i) then ok = ok + 1 end
                    local s = ngx.re.gsub("a" .. i, "a(\\d+)", "<$1>", "jo")
                    if s == "<" .. i .. ">" then ok = ok + 1 end
                end
            end
            ngx.say(ok)
        }
    }
--- request
GET /t
--- response_body
300
--- no_error_log
[error]



=== TEST 2: lua_regex_cache_max_entries 0 caches nothing (the JIT stack may still change)
--- http_config
    lua_regex_cache_max_entries 0;
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.match("abc", "b", "o")[0])
            local ok, err = pcall(require("ngx.re").opt, "jit_stack_size", 64 * 1024)
            ngx.say(ok)
        }
    }
--- request
GET /t
--- response_body
b
true
--- no_error_log
[error]



=== TEST 3: o regexes are cached by default
--- config
    location /t {
        content_by_lua_block {
            ngx.say(ngx.re.match("abc", "b", "o")[0])
            local ok, err = pcall(require("ngx.re").opt, "jit_stack_size", 64 * 1024)
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\Ab
false .*changing jit stack size is not allowed when some regexs have already been compiled and cached
\z
--- no_error_log
[error]



=== TEST 4: lua_regex_match_limit stops runaway backtracking
--- http_config
    lua_regex_match_limit 1000;
--- config
    location /t {
        content_by_lua_block {
            local subj = string.rep("a", 12) .. "!"
            ngx.say(ngx.re.match(subj, "^(a|a?)+$"))
            ngx.say(ngx.re.find(subj, "^(a|a?)+$", "o"))
            ngx.say(ngx.re.gsub(subj, "^(a|a?)+$", ""))
            ngx.say(ngx.re.match("aaab", "a+b")[0])
        }
    }
--- request
GET /t
--- response_body
nilpcre_exec() failed: -47
nilnilpcre_exec() failed: -47
nilnilpcre_exec() failed: -47
aaab
--- no_error_log
[error]



=== TEST 5: without lua_regex_match_limit the same pattern runs to a no-match
--- config
    location /t {
        content_by_lua_block {
            local subj = string.rep("a", 12) .. "!"
            ngx.say(ngx.re.match(subj, "^(a|a?)+$"))
        }
    }
--- request
GET /t
--- response_body
nil
--- no_error_log
[error]



=== TEST 6: d (DFA) finds the longest match and has no captures; j gives the same results
--- config
    location /t {
        content_by_lua_block {
            local m = ngx.re.match("abcd", "(a|ab|abc)", "d")
            ngx.say(m[0], " ", tostring(m[1]))
            ngx.say(ngx.re.match("abcd", "(a|ab|abc)")[0])
            ngx.say(ngx.re.find("xxabcd", "ab|abc", "d"))
            ngx.say(ngx.re.gsub("abcabc", "a|abc", "-", "d"))
            ngx.say(ngx.re.match("abcd", "(a|ab|abc)", "j")[1])
        }
    }
--- request
GET /t
--- response_body
abc nil
a
35
--2
a
--- no_error_log
[error]



=== TEST 7: ngx.re works in init_by_lua, init_worker_by_lua, timers and set_by_lua
--- http_config
    init_by_lua_block {
        init_result = ngx.re.gsub("init", "i", "I")
    }
    init_worker_by_lua_block {
        worker_result = ngx.re.match("worker 7", "\\d", "jo")[0]
    }
--- config
    location /t {
        set_by_lua_block $v { return ngx.re.sub("set", "s", "S") }
        content_by_lua_block {
            local done
            ngx.timer.at(0, function() done = ngx.re.find("timer", "m") end)
            ngx.sleep(0.01)
            ngx.say(init_result, " ", worker_result, " ", ngx.var.v, " ", done)
        }
    }
--- request
GET /t
--- response_body
InIt 7 Set 3
--- no_error_log
[error]



=== TEST 8: a cached regex is found again by its pattern and its options both: the same pattern with other options, in any order, is another regex
--- http_config
    lua_regex_cache_max_entries 2;
--- config
    location /t {
        content_by_lua_block {
            local out = {}
            local calls = {
                { "ABC", "abc", "jo" }, { "ABC", "abc", "jo" }, { "ABC", "abc", "ijo" },
                { "ABC", "abc", "ijo" }, { "ABC", "abc", "jo" }, { "a\nb", "^b", "jo" },
                { "a\nb", "^b", "mjo" }, { "a\nb", "^b", "jo" }, { "ABC", "abc", "ijo" },
                { "abc", "abc", "jo" },
            }
            for _, c in ipairs(calls) do
                local m = ngx.re.match(c[1], c[2], c[3])
                out[#out + 1] = m and m[0] or "-"
            end
            ngx.say(table.concat(out, " "))
        }
    }
--- request
GET /t
--- response_body
- - ABC ABC - - b - ABC abc
--- no_error_log
[error]
