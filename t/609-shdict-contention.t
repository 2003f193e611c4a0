use Test::Nginx::Socket::Lua;

# The zone's mutex under contention: glue/shmtx.rs takes and releases it
# inline and must keep nginx's protocol, so that a worker that went to
# sleep on the mutex's semaphore (after nginx's spinning) is woken up.
workers(2);
repeat_each(1);
no_long_string();
run_tests();

__DATA__

=== TEST 1: two workers write one dict while long scans hold the lock
# Each worker, from a timer, sets 20000 keys of its own, deletes every
# other one and counts in a shared counter; every 2000th step it lists
# all the keys, holding the mutex for milliseconds, so the other worker
# spins, then sleeps on the semaphore. A lost wake-up leaves that worker
# asleep (its "done" never comes); a broken mutual exclusion corrupts
# the tree or the LRU queue (keys lost or found twice, counts off).
--- http_config
    lua_shared_dict dogs 16m;
    init_by_lua_block {
        local dogs = ngx.shared.dogs
        for i = 1, 20000 do
            dogs:set("key" .. i, i)
        end
    }
    init_worker_by_lua_block {
        ngx.timer.at(0, function()
            local dogs = ngx.shared.dogs
            local p = "w" .. ngx.worker.id() .. ":"
            for i = 1, 20000 do
                dogs:incr("n", 1, 0)
                dogs:set(p .. i, i)
                if i % 2 == 0 then
                    dogs:delete(p .. (i - 1))
                end
                if i % 2000 == 0 then
                    dogs:get_keys(0)
                end
            end
            dogs:incr("done", 1, 0)
        end)
    }
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            for _ = 1, 500 do
                if dogs:get("done") == 2 then
                    break
                end
                ngx.sleep(0.05)
            end
            local listed = {}
            for _, k in ipairs(dogs:get_keys(0)) do
                local w = k:match("^(w%d):")
                if w then
                    listed[w] = (listed[w] or 0) + 1
                end
            end
            local bad = 0
            for w = 0, 1 do
                for i = 1, 20000 do
                    local want = i % 2 == 0 and i or nil
                    if dogs:get("w" .. w .. ":" .. i) ~= want then
                        bad = bad + 1
                    end
                end
            end
            ngx.say("done: ", dogs:get("done"), " n: ", dogs:get("n"),
                    " listed: ", listed.w0, " ", listed.w1, " bad: ", bad)
        }
    }
--- request
GET /t
--- response_body
done: 2 n: 40000 listed: 10000 10000 bad: 0
--- timeout: 30
--- no_error_log
[error]
[alert]
