use Test::Nginx::Socket::Lua;

# ndk.set_var runs other modules' set-var directives (Debian's set-misc,
# built on the Nginx Development Kit) from Lua; this module needs NDK only
# for those directives to exist. Debian's set-misc is built for Debian's
# nginx only, hence the skip on others.

repeat_each(1);
run_tests();

__DATA__

=== TEST 1: set-misc directives called from Lua, each looked up by name
--- main_config
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
--- config
    location /t {
        content_by_lua_block {
            local set_var = ndk.set_var
            ngx.say(set_var.set_escape_uri("a b&c"))
            ngx.say(set_var.set_unescape_uri("x%2Fy"))
            ngx.say(set_var.set_quote_sql_str("it's"))
            ngx.say(set_var.set_encode_base32("hi"))
            ngx.say(set_var.set_escape_uri(12))
        }
    }
--- request
GET /t
--- response_body
a%20b%26c
x/y
'it\'s'
d1kg====
12
--- skip_nginx: 2: > 1.22.1
--- no_error_log
[error]



=== TEST 2: an unknown directive, a directive that is not a set-var one, and assignment are errors
--- main_config
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
--- config
    location /t {
        content_by_lua_block {
            ngx.say(pcall(function() return ndk.set_var.set_no_such_thing end))
            ngx.say(pcall(function() return ndk.set_var.content_by_lua end))
            ngx.say(pcall(function() ndk.set_var.set_escape_uri = print end))
            ngx.say(require("ndk") == ndk)
        }
    }
--- request
GET /t
--- response_body_like chomp
^false.*ndk.set_var: directive "set_no_such_thing" not found or does not use ndk_set_var_value
false.*ndk.set_var: directive "content_by_lua" not found or does not use ndk_set_var_value
false.*not allowed
true$
--- skip_nginx: 2: > 1.22.1
--- no_error_log
[error]
