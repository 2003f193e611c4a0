#!/usr/bin/env bash
# Reloads under load must not wait for pooled cosocket connections.
#
# nginx with 2 workers whose requests (and a repeating timer) talk to a local
# redis-server over cosockets kept in the keepalive pool (setkeepalive with a
# 10 s idle timeout), wrk loading it, and HUPS (default 20) SIGHUP reloads.
# After each reload the retired workers must be gone within LIMIT_MS
# (default 1000) of the HUP; no request may fail (non-2xx, socket errors).
# WAIT_MS (default 5000) bounds the wait for them (to measure a slow case).
#
#   scripts/reload-pool.sh [--c-module] [HUPS]
#
# --c-module runs the same against Debian's C lua-nginx-module, for
# comparison. Run by scripts/test.sh (which starts redis-server through
# scripts/services.sh); started alone it sources services.sh itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

module=ours
hups=20
for a in "$@"; do
    case "$a" in
        --c-module) module=c-module ;;
        *) [[ "$a" =~ ^[0-9]+$ ]] && ((a > 0 && a <= 200)) || { echo "usage: $0 [--c-module] [HUPS]" >&2; exit 2; }
           hups=$a ;;
    esac
done
limit_ms=${LIMIT_MS:-1000}
# how long to wait for retired workers before giving up on a reload
wait_ms=${WAIT_MS:-5000}

need=()
command -v wrk >/dev/null || need+=(wrk)
[ "$module" = ours ] || dpkg-query -W -f='${Status}' libnginx-mod-http-lua 2>/dev/null |
    grep -q "install ok installed" || need+=(libnginx-mod-http-lua)
if ((${#need[@]})); then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >&2
fi
if [ -z "${TEST_NGINX_REDIS_PORT:-}" ] || ! (exec 3<>"/dev/tcp/127.0.0.1/$TEST_NGINX_REDIS_PORT") 2>/dev/null; then
    unset TEST_NGINX_REDIS_PORT
    # shellcheck disable=SC1091
    . "$root/scripts/services.sh"
fi
redis_port=$TEST_NGINX_REDIS_PORT

case "$module" in
    ours) modules="load_module ${TEST_NGINX_LUA_MODULE:-$root/target/release/libngx_http_lua_module.so};" ;;
    c-module) modules="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;" ;;
esac

dir=$(mktemp -d -t ngx-lua-reload.XXXXXX)
wrk_pid=
cleanup() {
    [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null || true
    if [ -f "$dir/logs/nginx.pid" ]; then
        local m; m=$(cat "$dir/logs/nginx.pid")
        kill -QUIT "$m" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$m" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$m" 2>/dev/null || true
    fi
    rm -rf "$dir"
    # services.sh's own EXIT trap was replaced by this one
    if declare -F services_stop >/dev/null; then services_stop; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    return 1
}
port=$(free_port)
mkdir -p "$dir/conf" "$dir/logs"
# One redis round trip on a pooled connection; used by requests and by a
# repeating timer, which also runs (premature) when its worker retires.
cat > "$dir/conf/nginx.conf" <<EOF
$modules
worker_processes 2;
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    init_worker_by_lua_block {
        function redis_ping()
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            local ok, err = sock:connect("127.0.0.1", $redis_port)
            if not ok then return nil, "connect: " .. err end
            local _, err = sock:send("PING\\r\\n")
            if err then return nil, "send: " .. err end
            local line, err = sock:receive()
            if line ~= "+PONG" then return nil, "receive: " .. tostring(line or err) end
            local reused = sock:getreusedtimes()
            ok, err = sock:setkeepalive(10000, 32)
            if not ok then return nil, "setkeepalive: " .. err end
            return reused
        end
        ngx.timer.every(0.05, function(premature)
            local ok, err = redis_ping()
            if not ok then ngx.log(ngx.ERR, "timer (premature ", premature, "): ", err) end
        end)
    }
    server {
        listen 127.0.0.1:$port;
        location /t {
            content_by_lua_block {
                local reused, err = redis_ping()
                if not reused then
                    ngx.log(ngx.ERR, "request: ", err)
                    return ngx.exit(502)
                end
                ngx.say("reused ", reused)
            }
        }
    }
}
EOF
/usr/sbin/nginx -p "$dir/" -c conf/nginx.conf -e logs/error.log
fail() { echo "reload-pool ($module): FAILED: $*"; tail -20 "$dir/logs/error.log"; exit 1; }

master=
for _ in $(seq 100); do
    master=$(cat "$dir/logs/nginx.pid" 2>/dev/null || true)
    [ -n "$master" ] && [ "$(pgrep -c -P "$master" || true)" -ge 2 ] && break
    sleep 0.05
done
[ -n "$master" ] || fail "nginx did not start"
body=$(curl -s --max-time 5 "http://127.0.0.1:$port/t" || true)
[[ "$body" == "reused "* ]] || fail "GET /t answered '$body'"

now_ms() { date +%s%3N; }
# wrk stops by itself after its duration at the latest (bounded even if a
# reload hangs); it is interrupted (SIGINT: it prints its summary) once
# the reloads are done. "Connection: close": a retiring worker closes its
# keepalive client connections after their current request, and wrk, which
# writes its next request at once, would count those closes as read errors
# whatever the module (seen with the C module too).
wrk -t2 -c16 -d120s --timeout 3s -H "Connection: close" "http://127.0.0.1:$port/t" >"$dir/wrk.out" 2>&1 &
wrk_pid=$!
sleep 0.5

max_ms=0
sum_ms=0
slow=0
for i in $(seq "$hups"); do
    old=$(pgrep -P "$master" | tr '\n' ' ')
    t0=$(now_ms)
    kill -HUP "$master"
    gone_ms=
    while (($(now_ms) - t0 < wait_ms)); do
        alive=0
        for p in $old; do kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && alive=1; done
        ((alive)) || { gone_ms=$(($(now_ms) - t0)); break; }
        sleep 0.01
    done
    [ -n "$gone_ms" ] || fail "reload $i: old workers ($old) still alive $wait_ms ms after the HUP"
    ((gone_ms > max_ms)) && max_ms=$gone_ms
    sum_ms=$((sum_ms + gone_ms))
    ((gone_ms > limit_ms)) && slow=$((slow + 1)) && echo "reload $i: old workers took $gone_ms ms" >&2
    # the new workers serve (and fill their pools) before the next reload
    for _ in $(seq 100); do
        [ "$(pgrep -c -P "$master" || true)" -ge 2 ] && break
        sleep 0.02
    done
    sleep 0.3
done
kill -INT "$wrk_pid"
wait "$wrk_pid" || true
wrk_pid=
out=$(cat "$dir/wrk.out")
requests=$(awk '/requests in/ {print $1}' <<<"$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
sockerr=$(grep 'Socket errors' <<<"$out" | sed 's/^ *//' || true)
echo "reload-pool ($module): $hups reloads under load: old-worker lifetime after HUP mean $((sum_ms / hups)) ms," \
    "max ${max_ms} ms (limit $limit_ms), requests ${requests:-0}, non-2xx ${non2xx:-0}, ${sockerr:-socket errors 0}"
((slow == 0)) || fail "$slow of $hups reloads left old workers alive longer than $limit_ms ms"
[ "${requests:-0}" -gt 0 ] || fail "wrk made no request: $out"
[ -z "$non2xx" ] || fail "non-2xx responses: $out"
[ -z "$sockerr" ] || fail "$sockerr"
if grep -E '\[(error|alert|crit|emerg)\]' "$dir/logs/error.log" >&2; then
    fail "errors in error.log (above)"
fi
grep -q 'exited on signal' "$dir/logs/error.log" && fail "a worker crashed"
echo "reload-pool ($module): ok"
