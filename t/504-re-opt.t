use Test::Nginx::Socket::Lua;

# The JIT stack may change only while the regex cache is empty: a block
# that caches a regex cannot run twice in the same worker.
repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.re.opt sets the JIT stack; unknown options fail
--- config
    location /t {
        content_by_lua_block {
            local ngx_re = require "ngx.re"
            local subj = string.rep("a", 10000)
            ngx.say(select(2, ngx.re.match(subj, "(a|b)*", "j")))
            ngx_re.opt("jit_stack_size", 1024 * 1024)
            local m, err = ngx.re.match(subj, "(a|b)*", "j")
            ngx.say(m and #m[0], err)
            local ok, err = pcall(ngx_re.opt, "nope", 1)
            ngx.say(err)
            ngx.re.match("a", "a", "o")
            ok, err = pcall(ngx_re.opt, "jit_stack_size", 64 * 1024)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like chomp
\Apcre_exec\(\) failed: -46
10000nil
.*unrecognized option name
.*changing jit stack size is not allowed when some regexs have already been compiled and cached
\z
--- no_error_log
[error]
