use Test::Nginx::Socket::Lua;

# The API fuzzer (t/fuzz/api_fuzz.lua) with fixed seeds, bounded in calls
# and time, in every phase where Lua runs: whatever it calls with whatever
# arguments, the worker must survive.  The fuzzed responses are not checked
# (the fuzzer sets headers and status, prints, discards, ...); what is
# checked is in error.log: every run logs its call count when it ends (the
# init_by_lua run's line goes to stderr, so its count is checked in the
# report, which the worker inherits), and /report compares the worker's pid
# with the first one seen (a respawned worker means a crash).  The runner also fails a block on any
# "exited on signal" line, and a request that hangs beyond --- timeout fails.
# Long runs with varying seeds: scripts/fuzz-api.sh.

master_on();
repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: API fuzz in init, init_worker, request phases, subrequests, timers, balancer, exit_worker
--- http_config
    lua_package_path "$TEST_NGINX_SERVER_ROOT/../fuzz/?.lua;;";
    lua_shared_dict fuzz_a 1m;
    lua_shared_dict fuzz_b 64k;
    lua_shared_dict fuzz_guard 64k;
    lua_max_pending_timers 1024;
    lua_max_running_timers 32;
    lua_regex_match_limit 100000;
    lua_socket_log_errors off;
    # The fuzzer may set $limit_rate to a few bytes a second: the response
    # would then trickle for hours, each piece within the read timeout.
    limit_rate_after 1024m;
    init_by_lua_block {
        require("api_fuzz").run_phase("init", { seed = 11, calls = 3000, budget = 0.5 })
    }
    init_worker_by_lua_block {
        local fuzz = require "api_fuzz"
        fuzz.guard_pid()
        fuzz.run_phase("init_worker", { seed = 12, calls = 3000, budget = 0.5 })
    }
    exit_worker_by_lua_block {
        require("api_fuzz").run_phase("exit_worker", { seed = 13, calls = 2000, budget = 0.5 })
    }
    upstream fuzz_balancer {
        server 0.0.0.1;
        balancer_by_lua_block {
            local port = tonumber(ngx.var.server_port)
            require("api_fuzz").run_phase("balancer")
            require("ngx.balancer").set_current_peer("127.0.0.1", port)
        }
    }
--- config
    set $fuzz_var "v";
    server_rewrite_by_lua_block {
        if ngx.var.uri == "/fuzz/server_rewrite" then
            require("api_fuzz").run_phase("server_rewrite")
        end
    }
    location = /static.txt { return 200 "static\n"; }
    location = /echo { content_by_lua_block { ngx.say("echo") } }
    location = /fuzz/content {
        content_by_lua_block { require("api_fuzz").run_phase("content") }
    }
    location = /fuzz/sub {
        content_by_lua_block {
            local res = ngx.location.capture("/fuzz/content", { args = ngx.var.args })
            ngx.say("subrequest status ", res.status)
        }
    }
    location = /fuzz/server_rewrite { content_by_lua_block { ngx.say("ok") } }
    location = /fuzz/rewrite {
        rewrite_by_lua_block { require("api_fuzz").run_phase("rewrite") }
        content_by_lua_block { ngx.say("ok") }
    }
    location = /fuzz/access {
        access_by_lua_block { require("api_fuzz").run_phase("access") }
        content_by_lua_block { ngx.say("ok") }
    }
    location = /fuzz/set {
        set_by_lua_block $fuzz_res { return require("api_fuzz").run_phase("set") }
        return 200 "$fuzz_res\n";
    }
    location = /fuzz/header_filter {
        content_by_lua_block { ngx.say("header filter") }
        header_filter_by_lua_block { require("api_fuzz").run_phase("header_filter") }
    }
    location = /fuzz/body_filter {
        content_by_lua_block { ngx.say("body filter") }
        body_filter_by_lua_block { require("api_fuzz").run_phase("body_filter") }
    }
    location = /fuzz/log {
        content_by_lua_block { ngx.say("log") }
        log_by_lua_block { require("api_fuzz").run_phase("log") }
    }
    location = /fuzz/timer {
        content_by_lua_block {
            local fuzz = require "api_fuzz"
            local args = ngx.req.get_uri_args()
            fuzz.start_timer({ seed = args.seed, calls = args.calls, budget = args.budget,
                                              port = ngx.var.server_port })
            ngx.say("timer run ended: ", fuzz.wait_timers((tonumber(args.budget) or 1) + 10))
        }
    }
    # Each try runs the fuzzer (a second of the worker's time) and the
    # fuzzer may ask for more tries and tiny timeouts: without a bound the
    # retries keep the worker from every other request.
    location = /fuzz/balancer {
        proxy_next_upstream_tries 3;
        proxy_pass http://fuzz_balancer/echo;
    }
    location = /fuzz/terminal { content_by_lua_block { require("api_fuzz").run_terminal() } }
    location = /report { content_by_lua_block { require("api_fuzz").report() } }
--- request eval
[
"GET /fuzz/content?seed=21&calls=20000&budget=3",
"GET /fuzz/sub?seed=22&calls=10000&budget=2",
"POST /fuzz/content?seed=40&calls=10000&budget=2\na=1&b=%ZZ&c=" . ("x" x 3000),
"GET /fuzz/server_rewrite?seed=23&calls=10000&budget=2",
"GET /fuzz/rewrite?seed=24&calls=10000&budget=2",
"GET /fuzz/access?seed=25&calls=10000&budget=2",
"GET /fuzz/set?seed=26&calls=10000&budget=1",
"GET /fuzz/header_filter?seed=27&calls=10000&budget=1",
"GET /fuzz/body_filter?seed=28&calls=10000&budget=1",
"GET /fuzz/log?seed=29&calls=10000&budget=1",
"GET /fuzz/timer?seed=30&calls=10000&budget=2",
"GET /fuzz/balancer?seed=31&calls=10000&budget=1",
"GET /fuzz/terminal?seed=32",
"GET /fuzz/terminal?seed=33",
"GET /fuzz/terminal?seed=34",
"GET /fuzz/terminal?seed=35",
"GET /fuzz/terminal?seed=36",
"GET /fuzz/terminal?seed=37",
"GET /fuzz/terminal?seed=38",
"GET /fuzz/terminal?seed=39",
"GET /report"
]
--- ignore_response
--- timeout: 30
--- log_level: notice
--- error_log eval
[
qr/api_fuzz: phase=init_worker seed=12 calls=[1-9]/,
qr/api_fuzz: phase=content seed=21 calls=[1-9]/,
qr/api_fuzz: phase=content seed=22 calls=[1-9]/,
qr/api_fuzz: phase=content seed=40 calls=[1-9]/,
qr/api_fuzz: phase=server_rewrite seed=23 calls=[1-9]/,
qr/api_fuzz: phase=rewrite seed=24 calls=[1-9]/,
qr/api_fuzz: phase=access seed=25 calls=[1-9]/,
qr/api_fuzz: phase=set seed=26 calls=[1-9]/,
qr/api_fuzz: phase=header_filter seed=27 calls=[1-9]/,
qr/api_fuzz: phase=body_filter seed=28 calls=[1-9]/,
qr/api_fuzz: phase=log seed=29 calls=[1-9]/,
qr/api_fuzz: phase=timer seed=30 calls=[1-9]/,
qr/api_fuzz: phase=balancer seed=31 calls=[1-9]/,
qr/api_fuzz: phase=terminal seed=39 started/,
qr/api_fuzz report: pid \d+ \(first fuzzed pid \d+\): pid unchanged; calls total=[1-9]\d* .* init=[1-9]\d* init_worker=[1-9]/,
]
--- no_error_log eval
[
qr/PID CHANGED/,
qr/fatal runtime error/,
qr/panicked/,
]
--- shutdown_error_log eval
qr/api_fuzz: phase=exit_worker seed=13 calls=[1-9]/
--- no_shutdown_error_log
exited on signal
