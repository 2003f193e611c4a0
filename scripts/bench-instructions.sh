#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: unlike req/s,
# the count does not depend on what else the machine is doing.
#
#   scripts/bench-instructions.sh [REQUESTS] [WORKLOAD...]   (default 2000, all)
#
# Same /usr/sbin/nginx (master_process off, one process), the workloads of
# scripts/bench/workloads.sh, for our module, Debian's C lua-nginx-module
# (libnginx-mod-http-lua with its lua-resty-core, installed here for the
# comparison only) and plain nginx where it has an equivalent (`return`,
# and the content handlers of the echo module and of empty_gif for hello). One
# keep-alive client connection per workload: WARMUP requests (code caches,
# JIT traces, pools, keepalive connections), then the counters are zeroed
# and REQUESTS requests counted.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-2000}
shift || true
warmup=${WARMUP:-500}
# BENCH_WORKLOADS_FILE replaces the workload set (same interface), for sets
# kept outside the repository.
# shellcheck source=bench/workloads.sh
. "${BENCH_WORKLOADS_FILE:-$root/scripts/bench/workloads.sh}"
[ $# -gt 0 ] && WORKLOADS=("$@")
declare -p REFERENCES >/dev/null 2>&1 || REFERENCES=(plain)

need=()
for p in valgrind python3 libnginx-mod-http-lua libnginx-mod-http-echo; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >&2
fi
so=${BENCH_SO:-$(bash "$root/scripts/build.sh" | tail -n 1)}

dir=$(mktemp -d)
vg=""
trap '[ -n "$vg" ] && kill -9 "$vg" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT INT TERM

# shellcheck source=lib/free-port.sh
. "$root/scripts/lib/free-port.sh"
# shellcheck source=lib/nginx-conf.sh
. "$root/scripts/lib/nginx-conf.sh"

stop() {  # a valgrind'ed nginx: TERM, then KILL if it lingers
    kill "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

declare -A result
measure() {  # target, load_module lines
    local target=$1 load=$2 port uport d w path out before any=""
    for w in "${WORKLOADS[@]}"; do workload_exists "$target" "$w" && any=1; done
    [ -n "$any" ] || return 0
    port=$(free_port); uport=$(free_port)
    d=$dir/$target
    mkdir -p "$d/conf" "$d/logs"
    workload_files "$d"
    workload_nginx_conf "$load" off "$target" "$d" "$port" "$uport" >"$d/conf/nginx.conf"
    valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
        /usr/sbin/nginx -p "$d/" -c conf/nginx.conf -e logs/error.log >"$d/vg.log" 2>&1 &
    vg=$!
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    for w in "${WORKLOADS[@]}"; do
        workload_exists "$target" "$w" || continue
        path=$(workload_path "$w")
        python3 "$root/scripts/bench/client.py" "$port" "$path" "$warmup" >/dev/null
        callgrind_control -z "$vg" >/dev/null 2>&1
        python3 "$root/scripts/bench/client.py" "$port" "$path" "$n" >/dev/null
        before=$(find "$d" -name 'cg.out.*' | wc -l)
        callgrind_control -d "$vg" >/dev/null 2>&1
        [ "$(find "$d" -name 'cg.out.*' | wc -l)" -gt "$before" ] || { echo "no callgrind dump for $target $w" >&2; exit 1; }
        out=$(ls -t "$d"/cg.out.* | head -1)
        result[$target/$w]=$(awk -v n="$n" '/^totals:/ { printf "%d", $2 / n }' "$out")
    done
    stop "$vg"; vg=""
    if grep -E '\[(error|crit|alert|emerg)\]' "$d/logs/error.log"; then
        echo "$target logged errors (above)" >&2; exit 1
    fi
}

mods=/usr/lib/nginx/modules
measure ours "load_module $so;"
measure c-module "load_module $mods/ndk_http_module.so; load_module $mods/ngx_http_lua_module.so;"
declare -A ref_load=([plain]="" [echo]="load_module $mods/ngx_http_echo_module.so;" [gif]="")
for t in "${REFERENCES[@]}"; do measure "$t" "${ref_load[$t]}"; done

echo "instructions per request ($n requests per workload after $warmup warm-up, one keep-alive connection)"
# One column per target, then ours against each of the others.
head="| workload | ours | c-module" rule="|---|---:|---:"
for t in "${REFERENCES[@]}"; do head+=" | $t"; rule+="|---:"; done
head+=" | ours / C" rule+="|---:"
for t in "${REFERENCES[@]}"; do head+=" | ours / $t"; rule+="|---:"; done
echo "$head |"
echo "$rule|"
for w in "${WORKLOADS[@]}"; do
    o=${result[ours/$w]} c=${result[c-module/$w]}
    row="| $w | $o | $c" ratios=$(awk -v o="$o" -v c="$c" 'BEGIN { printf " | %.2f", o / c }')
    for t in "${REFERENCES[@]}"; do
        p=${result[$t/$w]:-}
        row+=" | ${p:--}"
        ratios+=$( [ -n "$p" ] && awk -v o="$o" -v p="$p" 'BEGIN { printf " | %.2f", o / p }' || echo " | -")
    done
    echo "$row$ratios |"
done
