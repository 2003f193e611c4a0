use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: incr on numbers, missing keys, non-numbers
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            dogs:set("n", 10, 0, 3)
            ngx.say("incr: ", dogs:incr("n", 5), " ", select("#", dogs:incr("n", 0)))
            ngx.say("incr neg: ", dogs:incr("n", -2.5))
            ngx.say("get: ", dogs:get("n"))
            ngx.say("string delta: ", dogs:incr("n", "1"))
            ngx.say("missing: ", dogs:incr("m", 1))
            dogs:set("s", "str")
            ngx.say("not a number: ", dogs:incr("s", 1))
            ngx.say("empty key: ", dogs:incr("", 1))
            ngx.say(pcall(dogs.incr, dogs, "n", "x"))
        }
    }
--- request
GET /t
--- response_body_like chomp
\Aincr: 15 1
incr neg: 12.5
get: 12.53
string delta: 13.5
missing: nilnot found
not a number: nilnot a number
empty key: nilempty key
false.*
\z
--- no_error_log
[error]



=== TEST 2: incr with init and init_ttl
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            ngx.say("init: ", dogs:incr("c", 1, 10))
            ngx.say("again: ", dogs:incr("c", 1, 10))
            ngx.say("ttl: ", dogs:ttl("c"))
            ngx.say("init_ttl: ", dogs:incr("t", 2, 0, 0.1))
            local ttl = dogs:ttl("t")
            ngx.say("ttl t: ", ttl > 0 and ttl <= 0.1)
            ngx.say("existing keeps ttl: ", dogs:incr("t", 1, 0, 100), " ", dogs:ttl("t") <= 0.1)
            ngx.sleep(0.15)
            ngx.say("expired: ", dogs:get("t"))
            ngx.say("re-init: ", dogs:incr("t", 1, 5))
            ngx.say(pcall(dogs.incr, dogs, "t", 1, nil, 1))
            ngx.say(pcall(dogs.incr, dogs, "t", 1, 0, -1))
            ngx.say(pcall(dogs.incr, dogs, "t", 1, {}))
            ngx.say(pcall(dogs.incr, dogs, "t", 1, 0, "x"))
        }
    }
--- request
GET /t
--- response_body
init: 11nilfalse
again: 12nilfalse
ttl: 0
init_ttl: 2nilfalse
ttl t: true
existing keeps ttl: 3 true
expired: nil
re-init: 6nilfalse
falsemust provide "init" when providing "init_ttl"
falsebad "init_ttl" argument
falsebad init arg: number expected, got table
falsebad init_ttl arg: number expected, got string
--- no_error_log
[error]



=== TEST 3: lists: push, pop, llen, and type errors
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            ngx.say("lpush: ", dogs:lpush("l", "b"))
            ngx.say("lpush: ", dogs:lpush("l", "a"))
            ngx.say("rpush: ", dogs:rpush("l", 3))
            ngx.say("llen: ", dogs:llen("l"))
            ngx.say("get list: ", dogs:get("l"))
            ngx.say("lpop: ", dogs:lpop("l"))
            ngx.say("rpop: ", dogs:rpop("l"), " ", type(dogs:llen("l")))
            ngx.say("rpop: ", dogs:rpop("l"))
            ngx.say("empty: ", dogs:rpop("l"), " ", dogs:llen("l"))
            ngx.say("list removed when empty: ", #dogs:get_keys())
            dogs:set("s", "str")
            ngx.say("push on string: ", dogs:lpush("s", 1))
            ngx.say("pop on string: ", dogs:lpop("s"))
            ngx.say("llen on string: ", dogs:llen("s"))
            ngx.say("bad value: ", dogs:rpush("l", true))
            ngx.say("bad value: ", dogs:rpush("l", {}))
            ngx.say("empty key: ", dogs:rpush("", 1))
            dogs:rpush("l2", "x")
            ngx.say("set over list: ", dogs:set("l2", "y"), " ", dogs:get("l2"))
            dogs:rpush("l3", "x")
            ngx.say("incr on list: ", dogs:incr("l3", 1))
            ngx.say(pcall(dogs.lpush, dogs, "l3"))
            ngx.say(pcall(dogs.llen, dogs))
        }
    }
--- request
GET /t
--- response_body
lpush: 1
lpush: 2
rpush: 3
llen: 3
get list: nilvalue is a list
lpop: a
rpop: 3 number
rpop: b
empty: nil 0
list removed when empty: 0
push on string: nilvalue not a list
pop on string: nilvalue not a list
llen on string: nilvalue not a list
bad value: nilbad value type
bad value: nilbad value type
empty key: nilempty key
set over list: true y
incr on list: nilnot a number
falseexpecting 3 arguments, but only seen 2
falseexpecting 2 arguments, but only seen 1
--- no_error_log
[error]



=== TEST 4: an expired list is reset by push
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            dogs:rpush("l", 1)
            dogs:rpush("l", 2)
            dogs:expire("l", 0.05)
            ngx.sleep(0.1)
            ngx.say("llen expired: ", dogs:llen("l"))
            ngx.say("push: ", dogs:rpush("l", 9))
            ngx.say("pop: ", dogs:lpop("l"), " ttl: ", dogs:ttl("l"))
            dogs:set("v", "x", 0.05)
            ngx.sleep(0.1)
            ngx.say("push on expired value: ", dogs:lpush("v", "y"), " ", dogs:lpop("v"))
        }
    }
--- request
GET /t
--- response_body
llen expired: 0
push: 1
pop: 9 ttl: nilnot found
push on expired value: 1 y
--- no_error_log
[error]



=== TEST 5: get_keys: default limit 1024, explicit limits, 0 for all, oldest first
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:flush_all()
            dogs:flush_expired()
            for i = 1, 1100 do dogs:set("k" .. i, i) end
            ngx.say("default: ", #dogs:get_keys())
            ngx.say("0: ", #dogs:get_keys(0))
            local k = dogs:get_keys(3)
            ngx.say("3: ", #k, " ", table.concat(k, ","))
            dogs:get("k1")
            ngx.say("after touching k1: ", table.concat(dogs:get_keys(2), ","))
            dogs:set("exp", 1, 0.01)
            ngx.sleep(0.03)
            local found = false
            for _, key in ipairs(dogs:get_keys(0)) do if key == "exp" then found = true end end
            ngx.say("expired listed: ", found)
            ngx.say(pcall(dogs.get_keys, dogs, "x"))
        }
    }
--- request
GET /t
--- response_body
default: 1024
0: 1100
3: 3 k1,k2,k3
after touching k1: k2,k3
expired listed: false
falsebad argument #2 to 'get_keys' (number expected, got string)
--- no_error_log
[error]
