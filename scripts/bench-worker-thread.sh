#!/usr/bin/env bash
# Requests per second of a handler doing ~1 ms of CPU work (repeated
# ngx.sha1_bin), done inline in the request's Lua thread vs offloaded with
# ngx.run_worker_thread to an nginx thread pool; nginx with 2 workers.
#
#   scripts/bench-worker-thread.sh        DURATION=5 CONNS=32 THREADS=4 by default
#
# Also measures a trivial /ping location while each load runs: offloading
# keeps the event loop free, so other requests are not queued behind the
# hashing (the throughput of CPU-bound work itself is bounded by the cores
# either way).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-4}

command -v wrk >/dev/null || { echo "bench-worker-thread: wrk is needed (apt-get install wrk)" >&2; exit 2; }
so=$(bash "$root/scripts/build.sh" | tail -n 1)

dir=$(mktemp -d)
pidfile="$dir/logs/nginx.pid"
cleanup() {
    if [ -f "$pidfile" ]; then
        kill -QUIT "$(cat "$pidfile")" 2>/dev/null || true
        sleep 0.5
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=0
while :; do
    port=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done

mkdir -p "$dir/conf" "$dir/logs" "$dir/lua"
# nginx workers run as "nobody" when started as root: they must read the module.
chmod 755 "$dir" "$dir/lua"
cat > "$dir/lua/work.lua" <<'LUA'
local sha1 = ngx.sha1_bin
local _M = {}
-- n rounds of SHA-1 over the previous digest.
function _M.hash(n)
    local s = "seed"
    for _ = 1, n do
        s = sha1(s)
    end
    return ngx.encode_base64(s)
end
return _M
LUA
cat > "$dir/conf/nginx.conf" <<CONF
load_module $so;
worker_processes 2;
thread_pool bench threads=$THREADS;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    lua_package_path "$dir/lua/?.lua;;";
    server {
        listen 127.0.0.1:$port;
        location /calibrate {
            content_by_lua_block {
                local work = require "work"
                work.hash(2000)
                ngx.update_time()
                local t0 = ngx.now()
                work.hash(200000)
                ngx.update_time()
                ngx.print(math.floor(200000 * 0.001 / math.max(ngx.now() - t0, 0.001)))
            }
        }
        location /inline {
            content_by_lua_block {
                ngx.print(require("work").hash(tonumber(ngx.var.arg_n)))
            }
        }
        location /thread {
            content_by_lua_block {
                local ok, res = ngx.run_worker_thread("bench", "work", "hash", tonumber(ngx.var.arg_n))
                if not ok then
                    ngx.status = 500
                end
                ngx.print(res)
            }
        }
        location /ping { return 200 "pong"; }
    }
}
CONF
/usr/sbin/nginx -p "$dir/" -c conf/nginx.conf
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break
    sleep 0.1
done

n=$(curl -s "http://127.0.0.1:$port/calibrate")
echo "rounds of sha1 per ~1 ms: $n"
for path in inline thread; do
    body=$(curl -s "http://127.0.0.1:$port/$path?n=$n")
    [ -n "$body" ] || { echo "bench-worker-thread: /$path gave nothing" >&2; exit 1; }
done

run() {  # path
    local out ping
    wrk -t2 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/$1?n=$n" > "$dir/wrk.txt" 2>&1 &
    local w=$!
    sleep 1
    ping=$(wrk -t1 -c1 -d"$((DURATION - 2))s" --latency "http://127.0.0.1:$port/ping" 2>&1 |
        awk '/ 50%/ {p50=$2} / 99%/ {p99=$2} END {print "ping p50 " p50 ", p99 " p99}')
    wait "$w"
    out=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk.txt")
    printf '%-8s %10s req/s   (%s while loaded)\n' "$1" "$out" "$ping"
}
echo "2 workers, $THREADS pool threads each, $CONNS connections, ${DURATION}s each:"
run inline
run thread
