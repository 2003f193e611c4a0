use Test::Nginx::Socket::Lua;

repeat_each(2);
no_long_string();
run_tests();

__DATA__

=== TEST 1: the spawned thread runs first until it yields; a finished thread is a zombie until waited
--- config
    location /t {
        content_by_lua_block {
            local t = ngx.thread.spawn(function(a, b)
                ngx.say("in thread: ", a, " ", b)
                return "r1", "r2"
            end, "x", "y")
            ngx.say("after spawn: ", coroutine.status(t))
            ngx.say(ngx.thread.wait(t))
            ngx.say("waited: ", coroutine.status(t))
        }
    }
--- request
GET /t
--- response_body
in thread: x y
after spawn: zombie
truer1r2
waited: dead
--- no_error_log
[error]



=== TEST 2: threads that sleep run concurrently; wait returns the first to finish
--- config
    location /t {
        content_by_lua_block {
            local order = {}
            local function worker(name, delay)
                ngx.sleep(delay)
                table.insert(order, name)
                return name
            end
            local slow = ngx.thread.spawn(worker, "slow", 0.2)
            local fast = ngx.thread.spawn(worker, "fast", 0.05)
            ngx.say("spawned")
            local ok, res = ngx.thread.wait(slow, fast)
            ngx.say("first: ", ok, " ", res)
            ok, res = ngx.thread.wait(slow)
            ngx.say("second: ", ok, " ", res)
            ngx.say(table.concat(order, ","))
        }
    }
--- request
GET /t
--- response_body
spawned
first: true fast
second: true slow
fast,slow
--- no_error_log
[error]



=== TEST 3: the request ends only when all light threads are done
--- config
    location /t {
        content_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.05)
                ngx.say("thread done")
            end)
            ngx.say("entry done")
        }
    }
--- request
GET /t
--- response_body
entry done
thread done
--- no_error_log
[error]



=== TEST 4: an error in a light thread is logged and does not abort the others
--- config
    location /t {
        content_by_lua_block {
            local bad = ngx.thread.spawn(function()
                ngx.sleep(0.01)
                error("thread failure")
            end)
            local good = ngx.thread.spawn(function()
                ngx.sleep(0.02)
                return "fine"
            end)
            ngx.say(ngx.thread.wait(bad))
            ngx.say(ngx.thread.wait(good))
        }
    }
--- request
GET /t
--- response_body_like chop
^false.*thread failure
truefine$
--- error_log
lua user thread aborted: runtime error:
thread failure



=== TEST 5: ngx.exit in a light thread ends the request and aborts the others
--- config
    location /t {
        content_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.5)
                ngx.log(ngx.ERR, "should never run")
            end)
            ngx.thread.spawn(function()
                ngx.sleep(0.01)
                ngx.say("exiting")
                ngx.exit(200)
            end)
            ngx.sleep(1)
            ngx.say("entry should not get here")
        }
    }
--- request
GET /t
--- response_body
exiting
--- wait: 0.6
--- no_error_log
should never run
entry should not get here



=== TEST 6: kill a pending thread; kill errors
--- config
    location /t {
        content_by_lua_block {
            local t = ngx.thread.spawn(function()
                ngx.sleep(0.2)
                ngx.log(ngx.ERR, "killed thread ran")
            end)
            ngx.say(ngx.thread.kill(t))
            ngx.say(ngx.thread.kill(t))
            local z = ngx.thread.spawn(function() return 1 end)
            ngx.say(ngx.thread.kill(z))
            ngx.say(ngx.thread.wait(z))
        }
    }
--- request
GET /t
--- response_body
1
nilalready waited or killed
nilalready terminated
nilalready waited or killed
--- wait: 0.3
--- no_error_log
killed thread ran



=== TEST 7: only the parent may kill or wait
--- config
    location /t {
        content_by_lua_block {
            local child = ngx.thread.spawn(function() ngx.sleep(0.05) end)
            local other = ngx.thread.spawn(function()
                ngx.say("kill from sibling: ", select(2, ngx.thread.kill(child)))
                local ok, err = pcall(ngx.thread.wait, child)
                ngx.say("wait from sibling: ", err)
            end)
            ngx.thread.wait(child)
        }
    }
--- request
GET /t
--- response_body_like
kill from sibling: killer not parent
wait from sibling: .*only the parent coroutine can wait on the thread
--- no_error_log
[error]



=== TEST 8: light threads in rewrite and access phases
--- config
    location /t {
        set $v "";
        rewrite_by_lua_block {
            local t = ngx.thread.spawn(function() ngx.sleep(0.01) return "rw" end)
            local _, r = ngx.thread.wait(t)
            ngx.var.v = r
        }
        access_by_lua_block {
            local t = ngx.thread.spawn(function() return "ac" end)
            local _, r = ngx.thread.wait(t)
            ngx.var.v = ngx.var.v .. r
        }
        content_by_lua_block { ngx.say(ngx.var.v) }
    }
--- request
GET /t
--- response_body
rwac
--- no_error_log
[error]



=== TEST 9: a thread spawned inside a user coroutine is waited from it
--- config
    location /t {
        content_by_lua_block {
            local f = coroutine.wrap(function()
                local t = ngx.thread.spawn(function() ngx.sleep(0.01) return "inner" end)
                return select(2, ngx.thread.wait(t))
            end)
            ngx.say(f())
        }
    }
--- request
GET /t
--- response_body
inner
--- no_error_log
[error]



=== TEST 10: spawn needs a function
--- config
    location /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(ngx.thread.spawn, 42)))
        }
    }
--- request
GET /t
--- response_body_like
bad argument #1 to 'spawn' \(function expected, got number\)
--- no_error_log
[error]



=== TEST 11: an entry thread error while light threads wait aborts them
--- config
    location /t {
        content_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.3)
                ngx.log(ngx.ERR, "orphan ran")
            end)
            error("entry failure")
        }
    }
--- request
GET /t
--- error_code: 500
--- wait: 0.4
--- error_log
entry failure
--- no_error_log
orphan ran



=== TEST 12: coroutine.status of a light thread waiting on I/O or after a bare coroutine.yield is "running" (lua-nginx-module's view)
--- config
    location /t {
        content_by_lua_block {
            local sleeper = ngx.thread.spawn(function() ngx.sleep(0.05) return "slept" end)
            ngx.say("sleeping thread: ", coroutine.status(sleeper))
            local yielder = ngx.thread.spawn(function() coroutine.yield() return "yielded" end)
            ngx.say("yielding thread: ", coroutine.status(yielder))
            ngx.say(ngx.thread.wait(sleeper))
            ngx.say(ngx.thread.wait(yielder))
            ngx.say("after: ", coroutine.status(sleeper))
        }
    }
--- request
GET /t
--- response_body
sleeping thread: running
yielding thread: running
trueslept
trueyielded
after: dead
--- no_error_log
[error]



=== TEST 13: a failed thread hands its waiter the error value as error() got it, then the error with its position
--- config
    location /t {
        content_by_lua_block {
            local t = ngx.thread.spawn(function()
                ngx.sleep(0.001)
                error("went wrong")
            end)
            local ok, raw, full = ngx.thread.wait(t)
            ngx.say(tostring(ok), "|", raw, "|", full)
        }
    }
--- request
GET /t
--- response_body_like chop
^false\|went wrong\|content_by_lua\(nginx\.conf:\d+\):4: went wrong$
--- error_log
lua user thread aborted: runtime error:



=== TEST 14: waiting on or killing a coroutine that never was a light thread
--- config
    location /t {
        content_by_lua_block {
            local co = coroutine.create(function() coroutine.yield() end)
            coroutine.resume(co)
            ngx.say("kill: ", ngx.thread.kill(co))
            local ok, err = pcall(ngx.thread.wait, co)
            ngx.say("wait: ", tostring(ok), " ", err)
        }
    }
--- request
GET /t
--- response_body
kill: nilnot user thread
wait: false attempt to wait on a coroutine that is not a user thread
--- no_error_log
[error]



=== TEST 15: a spawner resumes after the threads already waiting for a turn: nested spawns finish outermost first
--- config
    location /t {
        content_by_lua_block {
            local out = {}
            local function leaf() out[#out + 1] = "leaf runs" end
            local function middle()
                out[#out + 1] = "middle starts"
                ngx.thread.spawn(leaf)
                out[#out + 1] = "middle resumes"
            end
            out[#out + 1] = "entry starts"
            ngx.thread.spawn(middle)
            out[#out + 1] = "entry resumes"
            ngx.sleep(0.001)
            ngx.say(table.concat(out, ", "))
        }
    }
--- request
GET /t
--- response_body
entry starts, middle starts, leaf runs, entry resumes, middle resumes



=== TEST 16: bare coroutine.yield in light threads takes turns with the entry thread in spawn order
--- config
    location /t {
        content_by_lua_block {
            local function worker(name)
                for i = 1, 3 do
                    ngx.print(name, i, " ")
                    coroutine.yield()
                end
            end
            ngx.thread.spawn(worker, "a")
            ngx.thread.spawn(worker, "b")
            ngx.print("entry ")
        }
    }
--- request
GET /t
--- response_body chomp
a1 b1 a2 entry b2 a3 b3 



=== TEST 17: a thread waiting for a subrequest cannot be killed; a sleeping one can, and its timer goes
--- config
    location /slow {
        content_by_lua_block {
            ngx.sleep(0.05)
            ngx.say("slow done")
        }
    }
    location /t {
        content_by_lua_block {
            local got
            local fetcher = ngx.thread.spawn(function()
                got = ngx.location.capture("/slow").body
            end)
            local sleeper = ngx.thread.spawn(function()
                ngx.sleep(10)
                ngx.say("sleeper woke up")
            end)
            ngx.say("kill fetcher: ", select(2, ngx.thread.kill(fetcher)))
            ngx.say("kill sleeper: ", ngx.thread.kill(sleeper))
            ngx.thread.wait(fetcher)
            ngx.print("fetcher got: ", got)
        }
    }
--- request
GET /t
--- response_body
kill fetcher: pending subrequests
kill sleeper: 1
fetcher got: slow done
--- log_level: debug
--- error_log
lua clean up the timer for pending ngx.sleep
--- no_error_log
[error]



=== TEST 18: a thread named by an earlier wait that ended with another one does not wake its parent later
--- config
    location /t {
        content_by_lua_block {
            local function work(name, delay)
                ngx.sleep(delay)
                return name
            end
            local a = ngx.thread.spawn(work, "a", 0.01)
            local b = ngx.thread.spawn(work, "b", 0.05)
            local _, first = ngx.thread.wait(a, b)
            ngx.say("first: ", first)
            ngx.update_time()
            local t0 = ngx.now()
            -- b ends during this sleep: the sleep still lasts its time
            ngx.sleep(0.15)
            ngx.update_time()
            ngx.say("slept: ", ngx.now() - t0 >= 0.14)
            ngx.say("b: ", coroutine.status(b))
            ngx.say(ngx.thread.wait(b))
        }
    }
--- request
GET /t
--- response_body
first: a
slept: true
b: zombie
trueb
--- no_error_log
[error]



=== TEST 19: a hundred sleeping threads, one killed while it sleeps, one spawned after it; each gets its own results
--- config
    location /t {
        content_by_lua_block {
            local ts = {}
            for i = 1, 100 do
                ts[i] = ngx.thread.spawn(function(n)
                    for _ = 1, 3 do ngx.sleep(0.001 * (n % 3)) end
                    return n
                end, i)
            end
            ngx.say("kill: ", ngx.thread.kill(ts[50]))
            local late = ngx.thread.spawn(function()
                ngx.sleep(0.01)
                return "late"
            end)
            local sum = 0
            for i = 1, 100 do
                if i ~= 50 then
                    local ok, n = ngx.thread.wait(ts[i])
                    if ok and n == i then sum = sum + n end
                end
            end
            ngx.say("sum: ", sum)
            ngx.say(ngx.thread.wait(late))
        }
    }
--- request
GET /t
--- response_body
kill: 1
sum: 5000
truelate
--- no_error_log
[error]



=== TEST 20: a thread that waits 70,000 times (more than a coroutine's stack holds) leaves nothing behind on its stack
--- config
    location /t {
        content_by_lua_block {
            local t = ngx.thread.spawn(function()
                for i = 1, 35000 do
                    ngx.sleep(0)
                    coroutine.yield()
                end
                return select("#", 1, 2, 3)
            end)
            for i = 1, 100 do ngx.sleep(0) end
            ngx.say(ngx.thread.wait(t))
        }
    }
--- request
GET /t
--- response_body
true3
--- no_error_log
[error]
