#!/usr/bin/env bash
# Concurrency and leak check, run by scripts/test.sh:
#  1. 2000 concurrent connections on a location whose Lua code sleeps: every
#     request must succeed (each sleeping request holds a timer and a thread);
#  2. waits cancelled by clients that go away (lua_check_client_abort) must not
#     crash or leak;
#  3. the worker's memory after a warm-up stays flat over further rounds of
#     requests (ROUND_SECONDS each, default 5: about 200k requests a round).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so=${TEST_NGINX_LUA_MODULE:-$root/target/release/libngx_http_lua_module.so}
round=${ROUND_SECONDS:-5}

if ! command -v wrk >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk >&2
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

dir=$(mktemp -d)
free_port() {  # a port nothing listens on
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768-)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
port=$(free_port)
cleanup() {
    [ -f "$dir/logs/nginx.pid" ] && kill -QUIT "$(cat "$dir/logs/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$dir/logs/nginx.pid" ] || break; sleep 0.1; done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
mkdir -p "$dir/conf" "$dir/logs"
cat > "$dir/conf/nginx.conf" <<CONF
load_module $so;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location /sleep { content_by_lua_block { ngx.sleep(0.2) ngx.say("ok") } }
        location /abort {
            lua_check_client_abort on;
            content_by_lua_block { ngx.sleep(5) ngx.say("late") }
        }
        location /hello {
            content_by_lua_block {
                ngx.ctx.x = ngx.var.uri
                local t = ngx.thread.spawn(function() return 1 end)
                ngx.thread.wait(t)
                ngx.say("hello")
            }
        }
    }
}
CONF
/usr/sbin/nginx -p "$dir/" -c conf/nginx.conf -e logs/error.log
sleep 0.3
worker=$(pgrep -P "$(cat "$dir/logs/nginx.pid")" | head -1)

fail() { echo "soak: FAILED: $*"; tail -20 "$dir/logs/error.log"; exit 1; }
check_wrk() {  # output, minimum requests
    local out=$1 min=$2 n
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    grep -q "Non-2xx" <<<"$out" && fail "non-2xx responses: $out"
    grep -q "Socket errors" <<<"$out" && fail "socket errors: $out"
    [ "${n:-0}" -ge "$min" ] || fail "only ${n:-0} requests: $out"
    echo "$n"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$worker/status"; }

n=$(check_wrk "$(wrk -t2 -c2000 -d3s --timeout 5s "http://127.0.0.1:$port/sleep")" 2000)
echo "soak: 2000 concurrent sleeping connections: $n requests, all 200"

# Clients that give up while their request sleeps.
for _ in $(seq 200); do
    curl -s -m 0.05 "http://127.0.0.1:$port/abort" >/dev/null 2>&1 &
done
wait
sleep 0.2

wrk -t2 -c50 -d2s "http://127.0.0.1:$port/hello" >/dev/null
before=$(rss)
total=0
for _ in 1 2 3; do
    out=$(wrk -t2 -c50 -d"${round}s" --timeout 5s "http://127.0.0.1:$port/hello")
    total=$((total + $(check_wrk "$out" 1000)))
done
after=$(rss)
echo "soak: $total requests with spawn/wait and ngx.ctx; worker RSS ${before} kB -> ${after} kB"
[ $((after - before)) -le $((before / 10 + 2048)) ] || fail "worker memory grew from $before kB to $after kB"
grep -E "\[(alert|crit|emerg)\]|signal" "$dir/logs/error.log" | grep -v "signal process started" && fail "alerts in error.log"
[ -d "/proc/$worker" ] || fail "the worker died"
echo "soak: passed"
