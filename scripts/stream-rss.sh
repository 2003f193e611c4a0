#!/usr/bin/env bash
# Memory of a streamed response: one request whose Lua code sends N MiB with
# ngx.print of 1 MiB chunks, each followed by ngx.flush(true), to curl
# reading as fast as it can (-o /dev/null). The worker's peak RSS (VmHWM of
# /proc/<worker>/status) is sampled for our module and for Debian's C module
# on the same /usr/sbin/nginx in the same run.
#
#   scripts/stream-rss.sh [MIB ...]     default: 1024
#   scripts/stream-rss.sh --check       CI: ours only, 64 MiB, growth < 8 MB
#
# Prints one line per size and module, then the ratio ours / C. A module
# that keeps every buffer it sent grows by about N MiB; one that reuses its
# buffers stays near its idle size whatever N is. --check (run by
# scripts/test.sh) fails when our worker's peak RSS grows by MAX_GROWTH_KB
# (default 8000) or more over its RSS before the 64 MiB response.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

check=0
sizes=()
for a in "$@"; do
    case "$a" in
        --check) check=1 ;;
        *) [[ "$a" =~ ^[0-9]+$ ]] && ((a > 0 && a <= 65536)) ||
               { echo "usage: $0 [--check] [MIB ...] (1..65536)" >&2; exit 2; }
           sizes+=("$a") ;;
    esac
done
targets=(ours c-module)
if ((check)); then
    targets=(ours)
    ((${#sizes[@]})) || sizes=(64)
fi
((${#sizes[@]})) || sizes=(1024)
max_growth_kb=${MAX_GROWTH_KB:-8000}

modules_dir=/usr/lib/nginx/modules
if ((!check)) && ! dpkg-query -W -f='${Status}' libnginx-mod-http-lua 2>/dev/null | grep -q "install ok installed"; then
    echo "stream-rss.sh: installing libnginx-mod-http-lua (the C module, for comparison)" >&2
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libnginx-mod-http-lua >&2
fi
ours_so=${TEST_NGINX_LUA_MODULE:-$(bash scripts/build.sh | tail -n1)}

tmp=$(mktemp -d -t ngx-lua-stream.XXXXXX)
cleanup() {
    local t pid
    for t in "${targets[@]}"; do
        [ -f "$tmp/$t/nginx.pid" ] || continue
        pid=$(cat "$tmp/$t/nginx.pid" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {  # a port nothing listens on, below the ephemeral range
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo "stream-rss.sh: no free port" >&2
    return 1
}

declare -A port
start() {  # target
    local t=$1 dir=$tmp/$1 modules
    mkdir -p "$dir/conf" "$dir/logs"
    case "$t" in
        ours) modules="load_module $ours_so;" ;;
        c-module) modules="load_module $modules_dir/ndk_http_module.so;
load_module $modules_dir/ngx_http_lua_module.so;" ;;
    esac
    port[$t]=$(free_port)
    cat > "$dir/conf/nginx.conf" <<EOF
$modules
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    init_by_lua_block {
        function stream()
            local n = tonumber(ngx.var.arg_mib) or 1
            local chunk = string.rep("x", 1048576)
            for _ = 1, n do
                local ok, err = ngx.print(chunk)
                if not ok then ngx.log(ngx.ERR, "print: ", err) return end
                ok, err = ngx.flush(true)
                if not ok then ngx.log(ngx.ERR, "flush: ", err) return end
            end
        end
    }
    server {
        listen 127.0.0.1:${port[$t]};
        location /stream {
            content_by_lua_block { stream() }
        }
        # the same through a body filter that replaces every chunk
        location /filtered {
            content_by_lua_block { stream() }
            body_filter_by_lua_block { ngx.arg[1] = ngx.arg[1] }
        }
    }
}
EOF
    /usr/sbin/nginx -p "$dir/" -c conf/nginx.conf -e logs/error.log
}

worker_of() {  # target -> pid of its (single) worker
    local master w
    for _ in $(seq 50); do
        master=$(cat "$tmp/$1/nginx.pid" 2>/dev/null || true)
        if [ -n "$master" ]; then
            w=$(pgrep -P "$master" | head -1 || true)
            [ -n "$w" ] && { echo "$w"; return; }
        fi
        sleep 0.1
    done
    echo "stream-rss.sh: no worker for $1" >&2
    return 1
}

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

stream() {  # target path mib -> "rss_before_kib hwm_after_kib seconds"
    local t=$1 path=$2 n=$3 w got t0 t1 before
    w=$(worker_of "$t")
    before=$(kib "$w" VmRSS)
    t0=$(date +%s.%N)
    got=$(curl -s -o /dev/null --max-time 300 -w '%{http_code} %{size_download}' \
        "http://127.0.0.1:${port[$t]}$path?mib=$n")
    t1=$(date +%s.%N)
    if [ "$got" != "200 $((n * 1048576))" ]; then
        echo "stream-rss.sh: $t $path: expected '200 $((n * 1048576))', got '$got'" >&2
        tail -5 "$tmp/$t/logs/error.log" >&2
        return 1
    fi
    echo "$before $(kib "$w" VmHWM) $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
}

# VmHWM is the peak since the worker started, so every measurement gets a
# fresh worker, warmed up by one small request (Lua VM, code, first buffers).
fresh() {
    local t=$1 master
    if [ -f "$tmp/$t/nginx.pid" ]; then
        master=$(cat "$tmp/$t/nginx.pid")
        kill -QUIT "$master"
        for _ in $(seq 100); do kill -0 "$master" 2>/dev/null || break; sleep 0.05; done
    fi
    start "$t"
    stream "$t" /stream 1 >/dev/null
}

printf '%-9s %-10s %6s %14s %14s %9s\n' module location MiB "RSS before" "peak RSS" seconds
for n in "${sizes[@]}"; do
    for path in /stream /filtered; do
        declare -A peak=()
        for t in "${targets[@]}"; do
            fresh "$t"
            read -r before hwm secs <<<"$(stream "$t" "$path" "$n")"
            peak[$t]=$hwm
            awk -v t="$t" -v p="$path" -v n="$n" -v b="$before" -v h="$hwm" -v s="$secs" \
                'BEGIN {printf "%-9s %-10s %6d %11.1f MB %11.1f MB %9s\n", t, p, n, b / 1000, h / 1000, s}'
            if ((check)) && ((hwm - before >= max_growth_kb)); then
                echo "stream-rss.sh: FAILED: a $n MiB response ($path) grew the worker's peak RSS by" \
                    "$((hwm - before)) kB (limit $max_growth_kb kB): sent buffers are not reused" >&2
                exit 1
            fi
        done
        ((check)) && continue
        awk -v n="$n" -v p="$path" -v a="${peak[ours]}" -v b="${peak[c-module]}" \
            'BEGIN {printf "ratio ours / c-module peak RSS, %s, %d MiB: %.2f\n", p, n, a / b}'
    done
done
for t in "${targets[@]}"; do
    if grep -E '\[(alert|emerg|crit|error)\]' "$tmp/$t/logs/error.log" >&2; then
        echo "stream-rss.sh: $t logged errors (above)" >&2
        exit 1
    fi
done
