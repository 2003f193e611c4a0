#!/usr/bin/env bash
# Worker memory over many requests of the API mix workload
# (scripts/bench/workloads.sh), ours and Debian's C lua-nginx-module on the
# same /usr/sbin/nginx, one after the other:
#
#   scripts/mix-rss.sh [REQUESTS] [MAX_SECONDS]   (default 1000000, 600)
#
# One worker (master_process on, access_log off), 2 s of warm-up with wrk,
# then wrk rounds of ROUND seconds (default 10, 2 threads, 50 connections)
# until REQUESTS requests answered or MAX_SECONDS spent. Prints, per module,
# the worker's VmRSS after the warm-up and after the last round, its VmHWM
# (peak), its anonymous memory at the end (`Anonymous:` of
# /proc/PID/smaps_rollup: heap, Lua VM, pools; RSS also counts the pages of
# the binaries and libraries the worker runs, which the page cache holds
# once for every process) and the requests done; fails on a non-2xx answer, a socket error
# or an error in the error log. PMAP_DIR=DIR keeps each worker's `pmap -x`
# at the end in DIR/<module>.pmap, to see which mappings hold the memory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
total=${1:-1000000}
max_seconds=${2:-600}
round=${ROUND:-10}
# shellcheck source=bench/workloads.sh
. "$root/scripts/bench/workloads.sh"
command -v wrk >/dev/null || { echo "mix-rss: wrk is needed" >&2; exit 1; }
so=${BENCH_SO:-$(bash "$root/scripts/build.sh" | tail -n 1)}
mods=/usr/lib/nginx/modules
[ -f "$mods/ngx_http_lua_module.so" ] || { echo "mix-rss: Debian's libnginx-mod-http-lua is needed" >&2; exit 1; }

dir=$(mktemp -d)
pidfile=""
cleanup() {
    [ -n "$pidfile" ] && [ -f "$pidfile" ] && kill -QUIT "$(cat "$pidfile")" 2>/dev/null || true
    sleep 0.3
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# shellcheck source=lib/free-port.sh
. "$root/scripts/lib/free-port.sh"
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
anon_kb() { awk '$1 == "Anonymous:" {print $2}' "/proc/$1/smaps_rollup"; }
requests() { awk '/requests in/ {print $1}' <<<"$1"; }
check() {  # wrk output
    if grep -qE "Non-2xx|Socket errors" <<<"$1"; then
        echo "mix-rss: wrk reported errors: $1" >&2
        exit 1
    fi
}

run() {  # target, load_module lines
    local target=$1 load=$2 d=$dir/$1 port uport master worker done=0 start out before url
    port=$(free_port); uport=$(free_port)
    mkdir -p "$d/conf" "$d/logs"
    workload_files "$d"
    {
        printf '%s\n' "$load"
        echo "worker_processes 1; error_log logs/error.log warn; pid logs/nginx.pid;"
        echo "events { worker_connections 1024; }"
        echo "http {"
        workload_conf "$target" "$d" "$port" "$uport"
        echo "}"
    } >"$d/conf/nginx.conf"
    pidfile=$d/logs/nginx.pid
    /usr/sbin/nginx -p "$d/" -c conf/nginx.conf -e logs/error.log
    for _ in $(seq 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
    master=$(cat "$pidfile")
    worker=""
    for _ in $(seq 50); do worker=$(pgrep -P "$master" | head -1 || true); [ -n "$worker" ] && break; sleep 0.1; done
    url="http://127.0.0.1:$port$(workload_path mix)"
    out=$(wrk -t2 -c50 -d2s "$url"); check "$out"
    before=$(status_kb "$worker" VmRSS)
    start=$SECONDS
    while [ "$done" -lt "$total" ] && [ $((SECONDS - start)) -lt "$max_seconds" ]; do
        out=$(wrk -t2 -c50 -d"${round}s" --timeout 5s "$url"); check "$out"
        done=$((done + $(requests "$out")))
    done
    awk -v t="$target" -v n="$done" -v a="$before" -v b="$(status_kb "$worker" VmRSS)" \
        -v h="$(status_kb "$worker" VmHWM)" -v p="$(anon_kb "$worker")" -v s=$((SECONDS - start)) \
        'BEGIN { printf "| %s | %d | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %d |\n", t, n, a / 1000, b / 1000, h / 1000, p / 1000, s }'
    [ -z "${PMAP_DIR:-}" ] || pmap -x "$worker" >"$PMAP_DIR/$target.pmap"
    if grep -E '\[(error|crit|alert|emerg)\]' "$d/logs/error.log"; then
        echo "mix-rss: $target logged errors (above)" >&2
        exit 1
    fi
    kill -QUIT "$master"
    for _ in $(seq 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
    pidfile=""
}

echo "| module | requests | RSS after warm-up | RSS at the end | peak RSS | anonymous at the end | seconds |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run ours "load_module $so;"
run c-module "load_module $mods/ndk_http_module.so; load_module $mods/ngx_http_lua_module.so;"
