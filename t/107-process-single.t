use Test::Nginx::Socket::Lua;

# ngx.process without a master process (master_off applies to the whole file).
master_off();
repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: ngx.process.type() is "single" everywhere and the process is its own master
--- http_config
    init_by_lua_block {
        INIT_TYPE = require("ngx.process").type()
    }
--- config
    location /t {
        content_by_lua_block {
            local process = require "ngx.process"
            ngx.say(INIT_TYPE, " ", process.type(), " ", process.get_master_pid() == ngx.worker.pid())
        }
    }
--- request
GET /t
--- response_body
single single true
--- no_error_log
[error]
