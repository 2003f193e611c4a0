use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: an item with exptime expires; get_stale still sees it
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            dogs:set("short", "v", 0.1, 7)
            dogs:set("long", "w", 10)
            dogs:set("never", "x")
            ngx.say("before: ", dogs:get("short"))
            ngx.say("stale before: ", dogs:get_stale("short"))
            ngx.sleep(0.15)
            ngx.say("after: ", dogs:get("short"), " ", select("#", dogs:get("short")))
            ngx.say("stale after: ", dogs:get_stale("short"))
            ngx.say("long: ", dogs:get("long"), " never: ", dogs:get("never"))
            ngx.say("stale never: ", dogs:get_stale("never"))
            ngx.say("stale missing: ", dogs:get_stale("missing"), " ", select("#", dogs:get_stale("missing")))
        }
    }
--- request
GET /t
--- response_body
before: v7
stale before: v7false
after: nil 1
stale after: v7true
long: w never: x
stale never: xnilfalse
stale missing: nil 1
--- no_error_log
[error]



=== TEST 2: ttl and expire
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            dogs:set("a", 1, 10)
            dogs:set("b", 2)
            local t = dogs:ttl("a")
            ngx.say("ttl a: ", t > 9.9 and t <= 10)
            ngx.say("ttl b: ", dogs:ttl("b"))
            ngx.say("ttl missing: ", dogs:ttl("c"))
            ngx.say("ttl empty: ", dogs:ttl(""))
            ngx.say("expire b: ", dogs:expire("b", 0.1))
            t = dogs:ttl("b")
            ngx.say("ttl b: ", t > 0 and t <= 0.1)
            ngx.say("expire a never: ", dogs:expire("a", 0))
            ngx.say("ttl a: ", dogs:ttl("a"))
            ngx.say("expire missing: ", dogs:expire("c", 1))
            ngx.say(pcall(dogs.expire, dogs, "a"))
            ngx.sleep(0.15)
            ngx.say("b gone: ", dogs:get("b"), " a kept: ", dogs:get("a"))
        }
    }
--- request
GET /t
--- response_body
ttl a: true
ttl b: 0
ttl missing: nilnot found
ttl empty: nilempty key
expire b: true
ttl b: true
expire a never: true
ttl a: 0
expire missing: nilnot found
falsebad "exptime" argument
b gone: nil a kept: 1
--- no_error_log
[error]



=== TEST 3: set on an expired key, add over an expired key, replace of an expired key
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            dogs:set("a", "x", 0.05)
            dogs:set("b", "y", 0.05)
            dogs:set("c", "z", 0.05)
            ngx.sleep(0.1)
            ngx.say("add: ", dogs:add("a", "new"))
            ngx.say("get: ", dogs:get("a"))
            ngx.say("replace: ", dogs:replace("b", "new"))
            ngx.say("set: ", dogs:set("c", "longer value"))
            ngx.say("get: ", dogs:get("c"), " ttl: ", dogs:ttl("c"))
        }
    }
--- request
GET /t
--- response_body
add: truenilfalse
get: new
replace: falsenot foundfalse
set: truenilfalse
get: longer value ttl: 0
--- no_error_log
[error]



=== TEST 4: flush_all hides everything; flush_expired removes expired items, up to a count
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            for i = 1, 10 do dogs:set("k" .. i, i) end
            ngx.say("flush_all: ", select("#", dogs:flush_all()))
            -- flush_all frees a few items now and marks the rest expired
            ngx.say("flush_expired(3): ", dogs:flush_expired(3))
            ngx.say("flush_expired(): ", dogs:flush_expired())
            ngx.say("flush_expired() again: ", dogs:flush_expired())
            local n = 0
            for i = 1, 10 do if dogs:get("k" .. i) then n = n + 1 end end
            ngx.say("left: ", n, " keys: ", #dogs:get_keys(0))
            for i = 1, 5 do dogs:set("e" .. i, i, 0.01) end
            dogs:set("keep", 1)
            ngx.sleep(0.05)
            ngx.say("flush_expired(0): ", dogs:flush_expired(0))
            ngx.say("keep: ", dogs:get("keep"))
        }
    }
--- request
GET /t
--- response_body_like chomp
\Aflush_all: 0
flush_expired\(3\): 3
flush_expired\(\): 4
flush_expired\(\) again: 0
left: 0 keys: 0
flush_expired\(0\): 5
keep: 1
\z
--- no_error_log
[error]



=== TEST 5: bad exptime raises an error with the caller's position
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.shared.dogs:set("k", 1, -1)
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/content_by_lua\(nginx.conf:\d+\):2: bad "exptime" argument/
