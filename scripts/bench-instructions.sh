#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: unlike req/s,
# the count does not depend on what else the machine is doing.
#
#   scripts/bench-instructions.sh [REQUESTS]    (default 1000)
#
# Same /usr/sbin/nginx, single process, hello world: our module, Debian's C
# lua-nginx-module (libnginx-mod-http-lua, installed here for the comparison
# only) and plain `return 200`. Each request is a new connection (curl), the
# same for all three, so the difference to "plain" is the Lua module's cost.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}

need=()
for p in valgrind curl libnginx-mod-http-lua; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >&2
fi
so=$(bash "$root/scripts/build.sh" | tail -n 1)

dir=$(mktemp -d)
trap 'pkill -f "callgrind.*$dir" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT INT TERM

free_port() {  # a port nothing listens on
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768-)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

measure() {  # name, load_module lines, location body
    local name=$1 load=$2 body=$3 port
    port=$(free_port)
    mkdir -p "$dir/$name/conf" "$dir/$name/logs"
    cat > "$dir/$name/conf/nginx.conf" <<CONF
$load
daemon off; master_process off; worker_processes 1;
error_log logs/error.log warn; pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/$name/cb; proxy_temp_path $dir/$name/px; fastcgi_temp_path $dir/$name/fc;
    uwsgi_temp_path $dir/$name/uw; scgi_temp_path $dir/$name/sc;
    server { listen 127.0.0.1:$port; location /hello { $body } }
}
CONF
    valgrind --tool=callgrind --callgrind-out-file="$dir/$name.out" \
        /usr/sbin/nginx -p "$dir/$name/" -c conf/nginx.conf -e logs/error.log >"$dir/$name.vg" 2>&1 &
    local vg=$!
    for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/hello" && break; sleep 0.1; done
    [ "$(curl -s "http://127.0.0.1:$port/hello")" = "hello" ] || { echo "$name does not answer hello" >&2; exit 1; }
    # Warm up (code caches, JIT, pools), then count only the measured requests.
    seq 50 | xargs -I{} curl -s -o /dev/null "http://127.0.0.1:$port/hello"
    callgrind_control -z "$vg" >/dev/null
    seq "$n" | xargs -I{} curl -s -o /dev/null "http://127.0.0.1:$port/hello"
    callgrind_control -d "$vg" >/dev/null
    kill "$vg"; wait "$vg" 2>/dev/null || true
    local f total
    f=$(ls -t "$dir/$name.out".* | head -1)
    total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    echo $((total / n))
}

mods=/usr/lib/nginx/modules
ours=$(measure ours "load_module $so;" 'content_by_lua_block { ngx.say("hello") }')
c=$(measure c-module "load_module $mods/ndk_http_module.so; load_module $mods/ngx_http_lua_module.so;" \
    'content_by_lua_block { ngx.say("hello") }')
plain=$(measure plain "" 'return 200 "hello\n";')

echo "instructions per request ($n requests, each on a new connection)"
printf '%-10s %8s %16s\n' target total "above plain"
printf '%-10s %8s %16s\n' ours "$ours" "$((ours - plain))"
printf '%-10s %8s %16s\n' c-module "$c" "$((c - plain))"
printf '%-10s %8s %16s\n' plain "$plain" 0
awk -v o="$ours" -v c="$c" -v p="$plain" 'BEGIN {
    printf "ours / c-module: total %.3f, Lua part %.3f\n", o / c, (o - p) / (c - p) }'
