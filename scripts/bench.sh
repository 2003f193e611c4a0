#!/usr/bin/env bash
# Throughput: our module vs Debian's C lua-nginx-module vs plain nginx (and,
# for hello, two content handlers without Lua: the echo module's and
# empty_gif), on the workloads of scripts/bench/workloads.sh, all on the
# same /usr/sbin/nginx.
#
#   scripts/bench.sh [--markdown] [WORKLOAD...]     (default: every workload)
#
# ROUNDS (default 5) alternating rounds of DURATION seconds (default 3) per
# workload and target, after a 1 s warm-up each. Reports per workload the
# median, min and max req/s, the median requests per worker CPU-second
# (utime + stime of the worker from /proc, which discounts time the
# hypervisor stole from it), and the ratios of the medians. Fails when a
# run got a non-2xx answer, a workload's answer is wrong, or an error log
# has an error. BENCH_WORKLOADS_FILE replaces scripts/bench/workloads.sh
# (same interface), for workload sets kept outside the repository.
#
# --markdown also replaces the throughput section at the end of docs/bench.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
markdown=0
selected=()
for arg in "$@"; do
    case "$arg" in
        --markdown) markdown=1 ;;
        -*) echo "usage: $0 [--markdown] [WORKLOAD...]" >&2; exit 2 ;;
        *) selected+=("$arg") ;;
    esac
done
# shellcheck source=bench/workloads.sh
. "${BENCH_WORKLOADS_FILE:-$root/scripts/bench/workloads.sh}"
((${#selected[@]})) && WORKLOADS=("${selected[@]}")
declare -p REFERENCES >/dev/null 2>&1 || REFERENCES=(plain)

nginx_bin=/usr/sbin/nginx
modules_dir=/usr/lib/nginx/modules

# wrk and the C module are only needed here, not for building or testing
# ours, so this script installs them rather than build.sh.
missing=()
for p in wrk curl libnginx-mod-http-lua libnginx-mod-http-echo; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bench.sh: installing ${missing[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

# nginx's worker runs on core 0 and wrk on core 1, so they do not compete
# for one CPU.
if [ "$(nproc)" -lt 2 ]; then
    echo "bench.sh: need at least 2 CPUs (nginx on core 0, wrk on core 1)" >&2
    exit 1
fi

ours_so=${BENCH_SO:-$(bash scripts/build.sh | tail -n1)}
[ -f "$ours_so" ] || { echo "bench.sh: no .so at '$ours_so'" >&2; exit 1; }

tmp=$(mktemp -d -t ngx-lua-bench.XXXXXX)
chmod 755 "$tmp"  # workers run as nobody and serve files from here
# Only the targets that have one of the selected workloads are started.
targets=()
for t in ours c-module "${REFERENCES[@]}"; do
    for w in "${WORKLOADS[@]}"; do workload_exists "$t" "$w" && { targets+=("$t"); break; }; done
done
declare -A load=(
    [ours]="load_module $ours_so;"
    [c-module]="load_module $modules_dir/ndk_http_module.so; load_module $modules_dir/ngx_http_lua_module.so;"
    [plain]=""
    [echo]="load_module $modules_dir/ngx_http_echo_module.so;"
    [gif]=""
)
declare -A port uport

# shellcheck source=lib/free-port.sh
. "$root/scripts/lib/free-port.sh"

master_pid() { cat "$tmp/$1/nginx.pid" 2>/dev/null || true; }

cleanup() {
    local t pid
    for t in "${targets[@]}"; do
        pid=$(master_pid "$t")
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -f "$tmp/$t/nginx.pid" ] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # target: writes its config and starts it (master + 1 pinned worker)
    local t=$1 d=$tmp/$1
    port[$t]=$(free_port)
    uport[$t]=$(free_port)
    mkdir -p "$d/conf" "$d/logs"
    workload_files "$d"
    {
        printf '%s\n' "${load[$t]}"
        echo "worker_processes 1; worker_cpu_affinity 01; daemon on; master_process on;"
        echo "pid $d/nginx.pid; error_log $d/logs/error.log warn;"
        echo "events { worker_connections 1024; }"
        echo "http {"
        workload_conf "$t" "$d" "${port[$t]}" "${uport[$t]}"
        echo "}"
    } >"$d/conf/nginx.conf"
    "$nginx_bin" -p "$d/" -c conf/nginx.conf -e logs/error.log -q || {
        echo "bench.sh: $t did not start" >&2
        cat "$d/logs/error.log" >&2
        exit 1
    }
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/${port[$t]}") 2>/dev/null && return; sleep 0.1; done
    echo "bench.sh: $t does not listen on ${port[$t]}" >&2
    exit 1
}

worker_pid() { pgrep -P "$(master_pid "$1")" | head -n1; }

# The worker's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# A wrong answer (a 500 from a broken handler) would be measured happily by
# wrk, so each workload's answer is checked once before any figure counts.
check_answer() {  # target workload
    local url body
    url="http://127.0.0.1:${port[$1]}$(workload_path "$2")"
    # (tr: empty_gif's body has NUL bytes, which bash would warn about)
    body=$( (curl -s --max-time 5 -w '\n%{http_code}' "$url" || true) | tr -d '\000')
    case "$(tail -n1 <<<"$body")" in 2??) ;; *)
        echo "bench.sh: $1 $2 answered: $(tail -n3 <<<"$body")" >&2; exit 1 ;;
    esac
}

run_wrk() {  # target workload seconds -> "req/s req/cpu-s"
    local t=$1 w=$2 s=$3 pid c0 c1 out rps total
    pid=$(worker_pid "$t")
    c0=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c50 -d"${s}s" "http://127.0.0.1:${port[$t]}$(workload_path "$w")")
    c1=$(cpu_ticks "$pid")
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "bench.sh: $t $w got non-2xx answers:" >&2
        echo "$out" >&2
        exit 1
    fi
    if grep -q 'Socket errors' <<<"$out"; then
        echo "bench.sh: warning: $t $w: $(grep 'Socket errors' <<<"$out" | sed 's/^ *//')" >&2
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    total=$(awk '/ requests in / { print $1 }' <<<"$out")
    [ -n "$rps" ] && [ -n "$total" ] || { echo "bench.sh: unreadable wrk output:" >&2; echo "$out" >&2; exit 1; }
    awk -v r="$rps" -v n="$total" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%s %.0f\n", r, (c > 0 ? n / (c / hz) : 0) }'
}

for t in "${targets[@]}"; do start "$t"; done
for w in "${WORKLOADS[@]}"; do
    for t in "${targets[@]}"; do
        workload_exists "$t" "$w" || continue
        check_answer "$t" "$w"
        run_wrk "$t" "$w" 1 >/dev/null
    done
done

# Rounds alternate over targets within each workload, so drift on the
# machine (steal, noisy neighbours) spreads over all of them.
declare -A rps cpu
for ((r = 1; r <= ROUNDS; r++)); do
    for w in "${WORKLOADS[@]}"; do
        for t in "${targets[@]}"; do
            workload_exists "$t" "$w" || continue
            read -r a b <<<"$(run_wrk "$t" "$w" "$DURATION")"
            rps[$t/$w]+="$a "
            cpu[$t/$w]+="$b "
            printf 'round %d/%d  %-8s %-9s %10s req/s %10s req/cpu-s\n' "$r" "$ROUNDS" "$w" "$t" "$a" "$b" >&2
        done
    done
done

for t in "${targets[@]}"; do
    if grep -E '\[(error|crit|alert|emerg)\]' "$tmp/$t/logs/error.log" >&2; then
        echo "bench.sh: $t logged errors (above)" >&2
        exit 1
    fi
done

stats() {  # "v1 v2 ..." -> "median min max"
    tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '
        { v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f %.0f %.0f\n", m, v[1], v[NR]
        }'
}
ratio() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo "-"; }

table=$(
    echo "| workload | target | median req/s | min | max | median req/CPU-s |"
    echo "|---|---|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        for t in "${targets[@]}"; do
            workload_exists "$t" "$w" || continue
            read -r med lo hi <<<"$(stats "${rps[$t/$w]}")"
            read -r cmed _ _ <<<"$(stats "${cpu[$t/$w]}")"
            echo "| $w | $t | $med | $lo | $hi | $cmed |"
        done
    done
    echo
    head="| workload | ours / C req/s | ours / C req/CPU-s" rule="|---|---:|---:"
    for t in "${REFERENCES[@]}"; do head+=" | ours / $t req/s"; rule+="|---:"; done
    echo "$head |"
    echo "$rule|"
    for w in "${WORKLOADS[@]}"; do
        read -r o _ _ <<<"$(stats "${rps[ours/$w]}")"
        read -r oc _ _ <<<"$(stats "${cpu[ours/$w]}")"
        read -r cm _ _ <<<"$(stats "${rps[c-module/$w]}")"
        read -r cc _ _ <<<"$(stats "${cpu[c-module/$w]}")"
        row="| $w | $(ratio "$o" "$cm") | $(ratio "$oc" "$cc")"
        for t in "${REFERENCES[@]}"; do
            p=""
            workload_exists "$t" "$w" && read -r p _ _ <<<"$(stats "${rps[$t/$w]}")"
            row+=" | $(ratio "$o" "$p")"
        done
        echo "$row |"
    done
)
echo "$table"

if ((markdown)); then
    marker='<!-- scripts/bench.sh --markdown writes from here to the end -->'
    head=$(awk -v m="$marker" '$0 == m { exit } { print }' docs/bench.md 2>/dev/null || true)
    {
        [ -n "$head" ] && printf '%s\n\n' "$head"
        echo "$marker"
        echo "# Throughput: requests per second"
        echo
        echo "\`scripts/bench.sh --markdown\` on $(date -u '+%Y-%m-%d %H:%M UTC'): \`$("$nginx_bin" -v 2>&1)\`,"
        echo "C module \`libnginx-mod-http-lua $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua)\`."
        echo "One worker pinned to core 0, \`wrk -t1 -c50\` pinned to core 1, $ROUNDS alternating"
        echo "rounds of ${DURATION} s per workload and target after a 1 s warm-up. req/CPU-s divides"
        echo "the requests by the worker's own CPU time, which discounts hypervisor steal."
        echo
        echo "$table"
    } >docs/bench.md.new
    mv docs/bench.md.new docs/bench.md
    echo "bench.sh: wrote docs/bench.md" >&2
fi
