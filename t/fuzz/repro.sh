#!/usr/bin/env bash
# Runs one Lua snippet in one phase on a fresh nginx and says whether the
# worker (or nginx) survived: the reproduction check for fuzzer crashes.
#
#   t/fuzz/repro.sh ours|c PHASE 'LUA CODE'
#
# PHASE: content, rewrite, access, set, header_filter, body_filter, log,
# timer, init, init_worker.  The snippet runs as is (not in pcall), with
# lua_shared_dict dogs 1m available.  Prints "SURVIVED" or "CRASHED: ..."
# and the error.log lines of interest; exit status 0 only when it survived.
set -uo pipefail
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
module=$1 phase=$2 code=$3
case "$module" in
    ours) load="load_module $root_dir/target/release/libngx_http_lua_module.so;" ;;
    c) load="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;" ;;
    *) echo "module: ours or c" >&2; exit 2 ;;
esac
root=$(mktemp -d /tmp/fuzz-repro.XXXXXX)
mkdir -p "$root/logs" "$root/html" "$root/conf"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http="" loc="content_by_lua_block { ngx.say('ok') }"
case "$phase" in
    content) loc="content_by_lua_block { $code
        ngx.say('ok') }" ;;
    rewrite|access) loc="${phase}_by_lua_block { $code
        }
        content_by_lua_block { ngx.say('ok') }" ;;
    set) loc="set_by_lua_block \$x { $code
        return 'ok' }
        return 200 \"\$x\\n\";" ;;
    header_filter|body_filter|log) loc="content_by_lua_block { ngx.say('ok') }
        ${phase}_by_lua_block { $code
        }" ;;
    timer) loc="content_by_lua_block { ngx.timer.at(0, function() $code
        end) ngx.sleep(0.3) ngx.say('ok') }" ;;
    init|init_worker) http="${phase}_by_lua_block { $code
        }" ;;
    *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
cat > "$root/conf/nginx.conf" <<EOF
$load
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
master_process on;
daemon off;
error_log $root/logs/error.log info;
pid $root/logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    lua_shared_dict dogs 1m;
    $http
    server {
        listen 127.0.0.1:$port;
        location = /t {
            $loc
        }
        location = /echo { return 200 "echo\n"; }
    }
}
EOF
/usr/sbin/nginx -p "$root/" -c "$root/conf/nginx.conf" > "$root/logs/stderr.log" 2>&1 &
pid=$!
up=0
for _ in $(seq 1 50); do
    kill -0 $pid 2>/dev/null || break
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/echo"; then up=1; break; fi
    sleep 0.1
done
out=""
if [ $up = 1 ]; then
    out=$(curl -s --max-time 5 "http://127.0.0.1:$port/t")
    sleep 0.5
fi
kill -QUIT $pid 2>/dev/null
for _ in $(seq 1 30); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
status=$?
crash=$(grep -a -E 'exited on signal|panicked|fatal runtime error' "$root/logs/error.log" "$root/logs/stderr.log" | head -3)
if [ $up = 1 ] && [ $status -le 128 ] && [ -n "$crash" ] && ! grep -q -E 'exited on signal|fatal runtime' <<<"$crash"; then
    echo "PANICKED (caught, the worker survived; response: $(echo "$out" | head -c 100 | tr '\n' ' ')): $(grep -a -h -A1 panicked "$root/logs/error.log" | tr '\n' ' ' | cut -c1-200)"
    rc=1
elif [ $up = 0 ] || [ -n "$crash" ] || [ $status -gt 128 ]; then
    sig=$(grep -a -o 'exited on signal [0-9]*' <<<"$crash" | head -1 | grep -o '[0-9]*$')
    [ -z "$sig" ] && [ $status -gt 128 ] && sig=$((status - 128))
    how="worker"
    [ $up = 0 ] && how="startup"
    grep -q 'foreign exceptions' <<<"$crash" && how="$how, Rust cannot catch foreign exceptions"
    echo "CRASHED signal ${sig:-?} ($how)"
    rc=1
else
    echo "SURVIVED (response: $(echo "$out" | head -c 200 | tr '\n' ' '))"
    rc=0
fi
grep -a -E '\[(error|alert|crit|emerg)\]' "$root/logs/error.log" "$root/logs/stderr.log" | grep -v 'exited on signal' |
    sed -e 's/^[^ ]* [^ ]* [^ ]* //' -e 's/, client: .*//' | head -${REPRO_LINES:-3} | cut -c1-300
[ -n "${REPRO_KEEP:-}" ] || rm -rf "$root"
exit $rc
