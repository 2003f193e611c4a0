#!/usr/bin/env bash
# Reloads under load, run by scripts/test.sh: nginx with our module and two
# workers serves Lua handlers that use a shared dict (a counter incremented
# per request, set/get of rotating keys), a timer per request
# (ngx.timer.at), and a cosocket per request (PING to redis-server, through
# the keepalive pool), driven by wrk for HUP_LOAD_SECONDS (default 60) while
# the master gets a SIGHUP every HUP_INTERVAL seconds (default 0.5).
#
# Passes when: wrk saw no socket error and no non-2xx response; error.log has
# no crash ("exited on signal") and no [alert]/[crit]/[emerg]; the keys
# written before the first HUP are all there with their values; the request
# counter equals the requests wrk completed (plus at most one in flight per
# connection when wrk stopped); every timer that was accepted ran; the master
# is alive with two workers once the old ones are gone.
#
# wrk sends "Connection: close": with keepalive, a worker that a reload
# retires closes its idle connections, and a request the client sent on one
# at that moment is lost. That is how nginx itself reloads (clients retry),
# not something a module can change, so the check would only measure luck.
#
#   HUP_LOAD_SECONDS=10 scripts/hup-load.sh     a shorter local run
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so=${TEST_NGINX_LUA_MODULE:-$root/target/release/libngx_http_lua_module.so}
secs=${HUP_LOAD_SECONDS:-60}
interval=${HUP_INTERVAL:-0.5}
conns=${HUP_LOAD_CONNECTIONS:-32}

if ! command -v wrk >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk >&2
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

dir=$(mktemp -d)
cleanup() {
    [ -n "${hup_pid:-}" ] && kill "$hup_pid" 2>/dev/null || true
    if [ -f "$dir/logs/nginx.pid" ]; then
        kill -QUIT "$(cat "$dir/logs/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 100); do [ -f "$dir/logs/nginx.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    [ "$(type -t services_stop)" = function ] && services_stop
    return 0
}
trap cleanup EXIT INT TERM
# redis-server: the one scripts/test.sh started, or our own
if [ -z "${TEST_NGINX_REDIS_PORT:-}" ] || ! (exec 3<>"/dev/tcp/127.0.0.1/$TEST_NGINX_REDIS_PORT") 2>/dev/null; then
    unset TEST_NGINX_REDIS_PORT
    # shellcheck source=services.sh
    . "$root/scripts/services.sh"
    trap cleanup EXIT INT TERM
fi
redis=$TEST_NGINX_REDIS_PORT

# shellcheck source=lib/free-port.sh
. "$root/scripts/lib/free-port.sh"
port=$(free_port)
mkdir -p "$dir/conf" "$dir/logs"
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"
cat > "$dir/conf/nginx.conf" <<CONF
load_module $so;
$user
worker_processes 2;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 4096; accept_mutex off; }
http {
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    lua_shared_dict hup 8m;
    lua_socket_log_errors on;
    server {
        listen 127.0.0.1:$port backlog=4096;
        # Keys that must survive every reload.
        location = /seed {
            content_by_lua_block {
                local d = ngx.shared.hup
                for i = 1, 500 do
                    local ok, err = d:set("seed:" .. i, "value " .. i .. " " .. ngx.var.arg_tag, 0, i)
                    if not ok then ngx.status = 500 ngx.say(err) return end
                end
                ngx.say("seeded")
            }
        }
        location = /verify {
            content_by_lua_block {
                local d = ngx.shared.hup
                local bad = 0
                for i = 1, 500 do
                    local v, flags = d:get("seed:" .. i)
                    if v ~= "value " .. i .. " " .. ngx.var.arg_tag or flags ~= i then
                        bad = bad + 1
                    end
                end
                ngx.say("bad=", bad, " hits=", d:get("hits") or 0, " timers=", d:get("timers") or 0,
                        " refused=", d:get("timer_refused") or 0)
            }
        }
        location = /work {
            content_by_lua_block {
                local d = ngx.shared.hup
                local n, err = d:incr("hits", 1, 0)
                if not n then ngx.status = 500 ngx.say("incr: ", err) return end
                local key = "rot:" .. n % 997
                local ok, err = d:set(key, n)
                if not ok then ngx.status = 500 ngx.say("set: ", err) return end
                local v = d:get(key)
                if type(v) ~= "number" then ngx.status = 500 ngx.say("get: ", tostring(v)) return end
                -- a worker retired by a reload refuses new timers
                -- ("process exiting"): counted, not a failure
                local ok, err = ngx.timer.at(0, function()
                    ngx.shared.hup:incr("timers", 1, 0)
                end)
                if not ok then
                    if err ~= "process exiting" then ngx.status = 500 ngx.say("timer: ", err) return end
                    d:incr("timer_refused", 1, 0)
                end
                local sock = ngx.socket.tcp()
                sock:settimeout(5000)
                local ok, err = sock:connect("127.0.0.1", $redis)
                if not ok then ngx.status = 500 ngx.say("connect: ", err) return end
                local ok, err = sock:send("PING\r\n")
                if not ok then ngx.status = 500 ngx.say("send: ", err) return end
                local line, err = sock:receive()
                if line ~= "+PONG" then ngx.status = 500 ngx.say("receive: ", line or err) return end
                sock:setkeepalive(30000, 32)
                ngx.say(n)
            }
        }
    }
}
CONF
/usr/sbin/nginx -p "$dir/" -c conf/nginx.conf -e logs/error.log
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
master=$(cat "$dir/logs/nginx.pid")

fail() { echo "hup-load: FAILED: $*"; grep -v "\[notice\]" "$dir/logs/error.log" | tail -20; exit 1; }
tag=$RANDOM$RANDOM
[ "$(curl -s "http://127.0.0.1:$port/seed?tag=$tag")" = seeded ] || fail "seeding the shared dict"
# One request through everything before the load: the handler works.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/work")" = 200 ] ||
    fail "GET /work: $(curl -s "http://127.0.0.1:$port/work")"

hups="$dir/hups"
(
    n=0
    end=$(($(date +%s) + secs))
    while [ "$(date +%s)" -lt "$end" ]; do
        sleep "$interval"
        kill -HUP "$master" || break
        n=$((n + 1))
        echo "$n" > "$hups"
    done
) &
hup_pid=$!
out=$(wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -H "Connection: close" "http://127.0.0.1:$port/work")
wait "$hup_pid" || true
hup_pid=
nhup=$(cat "$hups" 2>/dev/null || echo 0)
requests=$(awk '/requests in/ {print $1}' <<<"$out")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
sockerr=$(sed -n 's/.*Socket errors: *//p' <<<"$out")
echo "hup-load: ${secs}s, ${conns} connections, 2 workers: ${requests:-0} requests (${rps:-0} req/s)," \
     "$nhup HUPs, non-2xx: ${non2xx:-0}, socket errors: ${sockerr:-none}"

# Let the last reload settle: the old workers finish their requests and
# exit (well before the pool's 30 s keepalive timeout: a retired worker
# must not park connections), timers run.
settle_start=$(date +%s%N)
for _ in $(seq 50); do
    [ "$(pgrep -c -P "$master" || true)" -le 2 ] && break
    sleep 0.1
done
settle_ms=$(( ($(date +%s%N) - settle_start) / 1000000 ))
sleep 0.5
verify=$(curl -s "http://127.0.0.1:$port/verify?tag=$tag")
echo "hup-load: after the load: $verify"
hits=$(sed -n 's/.*hits=\([0-9]*\).*/\1/p' <<<"$verify")
timers=$(sed -n 's/.*timers=\([0-9]*\).*/\1/p' <<<"$verify")
refused=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' <<<"$verify")

[ -n "$requests" ] && [ "$requests" -gt 0 ] || fail "wrk completed no request: $out"
[ -z "$non2xx" ] || fail "$non2xx non-2xx responses"
[ -z "$sockerr" ] || fail "socket errors: $sockerr"
[ "$nhup" -ge 1 ] || fail "no HUP was sent"
grep -q "bad=0 " <<<"$verify" || fail "shared dict data lost across reloads: $verify"
# one request before the load; wrk may stop with one in flight per connection
[ "$hits" -ge $((requests + 1)) ] && [ "$hits" -le $((requests + 1 + conns)) ] ||
    fail "the request counter is $hits but wrk completed $requests requests (+1 before)"
[ $((timers + refused)) -eq "$hits" ] ||
    fail "$hits requests, $timers timers ran and $refused were refused: $((hits - timers - refused)) lost"
kill -0 "$master" 2>/dev/null || fail "the master died"
workers=$(pgrep -c -P "$master" || true)
[ "$workers" -eq 2 ] ||
    fail "$workers worker processes ${settle_ms} ms after the last reload (want 2: the retired ones linger)"
if grep -E "exited on signal|\[(alert|crit|emerg)\]" "$dir/logs/error.log" | head -5 | grep .; then
    fail "crashes or alerts in error.log"
fi
echo "hup-load: passed ($(grep -c 'SIGHUP' "$dir/logs/error.log") HUPs received by the master;" \
     "the last retired workers exited within ${settle_ms} ms)"
