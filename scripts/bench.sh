#!/usr/bin/env bash
# Throughput comparison: our Rust lua module vs Debian's C lua-nginx-module vs
# a plain `return 200` location, all on the same /usr/sbin/nginx binary.
#
#   scripts/bench.sh [--markdown]      ROUNDS=5 DURATION=5 by default
#
# --markdown also writes docs/bench.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
markdown=0
for arg in "$@"; do
    case "$arg" in
        --markdown) markdown=1 ;;
        *) echo "usage: $0 [--markdown]" >&2; exit 2 ;;
    esac
done

nginx_bin=/usr/sbin/nginx
modules_dir=/usr/lib/nginx/modules

# --- comparison tooling ------------------------------------------------------
# wrk and the C module are only needed here, not for building or testing ours,
# so they are installed by this script rather than by build.sh.
missing=()
for p in wrk libnginx-mod-http-lua; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bench.sh: installing ${missing[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

# The package names its files after the upstream modules; resolve them rather
# than hard-coding, so a renamed file fails here instead of at nginx startup.
ndk_so=$(ls "$modules_dir"/ndk_http_module.so 2>/dev/null || true)
c_lua_so=$(ls "$modules_dir"/ngx_http_lua_module.so 2>/dev/null || true)
[ -n "$ndk_so" ] && [ -n "$c_lua_so" ] || {
    echo "bench.sh: C lua module files not found in $modules_dir:" >&2
    ls -l "$modules_dir" >&2 || true
    exit 1
}

# nginx pins its worker to core 0 and wrk runs on core 1, so they do not
# compete for the same CPU; that needs at least two cores.
if [ "$(nproc)" -lt 2 ]; then
    echo "bench.sh: need at least 2 CPUs (nginx on core 0, wrk on core 1)" >&2
    exit 1
fi

# --- our module --------------------------------------------------------------
# build.sh is idempotent; its last stdout line is the .so path.
ours_so=$(bash scripts/build.sh | tail -n1)
[ -f "$ours_so" ] || { echo "bench.sh: build.sh did not produce a .so ($ours_so)" >&2; exit 1; }

# --- nginx instances ---------------------------------------------------------
tmp=$(mktemp -d -t ngx-lua-bench.XXXXXX)
targets=(ours c-module plain)
declare -A port=([ours]=18081 [c-module]=18082 [plain]=18083)

cleanup() {
    local t pidf pid
    for t in "${targets[@]}"; do
        pidf="$tmp/$t/nginx.pid"
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        # nginx removes its pid file on exit; wait for that so rm -rf below
        # does not race a still-running master writing into the prefix.
        # (kill -0 alone is not enough: an exited master can linger as a
        # zombie when PID 1 in a container reaps slowly.)
        for _ in $(seq 50); do
            [ -f "$pidf" ] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs exactly once.
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything nginx may write (pid, logs, temp dirs) lives under the prefix so
# the bench never touches /var/lib/nginx or /var/log/nginx and can run
# alongside a system nginx.
write_conf() {
    local t=$1 dir=$tmp/$1 modules location
    mkdir -p "$dir/conf" "$dir/logs"
    case "$t" in
        ours)
            modules="load_module $ours_so;"
            location='content_by_lua_block { ngx.say("hello") }' ;;
        c-module)
            # Debian's build finds lua-resty-core in /usr/share/lua/5.1 by
            # default, so no lua_package_path is needed (verified with -t and
            # a clean error.log).
            modules="load_module $ndk_so;
load_module $c_lua_so;"
            location='content_by_lua_block { ngx.say("hello") }' ;;
        plain)
            modules=""
            location='return 200 "hello\n";' ;;
    esac
    cat > "$dir/conf/nginx.conf" <<EOF
$modules
worker_processes 1;
daemon on;
master_process on;
worker_cpu_affinity 01;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events { worker_connections 1024; }

http {
    access_log off;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path       $dir/proxy_temp;
    fastcgi_temp_path     $dir/fastcgi_temp;
    uwsgi_temp_path       $dir/uwsgi_temp;
    scgi_temp_path        $dir/scgi_temp;

    server {
        listen 127.0.0.1:${port[$t]};
        location /hello { $location }
    }
}
EOF
}

# -e overrides the compiled-in error log, which nginx opens before it has
# read the config (otherwise it tries /var/log/nginx/error.log).
ngx() { local t=$1; shift; "$nginx_bin" -p "$tmp/$t" -c "$tmp/$t/conf/nginx.conf" -e "$tmp/$t/error.log" "$@"; }

for t in "${targets[@]}"; do
    write_conf "$t"
    if ! ngx "$t" -t -q; then
        echo "bench.sh: nginx -t failed for $t" >&2
        cat "$tmp/$t/error.log" >&2 2>/dev/null || true
        exit 1
    fi
    if curl -s -o /dev/null "http://127.0.0.1:${port[$t]}/" 2>/dev/null; then
        echo "bench.sh: port ${port[$t]} is already in use" >&2
        exit 1
    fi
    ngx "$t"
done

# A wrong body (e.g. a 500 from a broken handler) would otherwise be measured
# happily by wrk, so check the response before trusting any numbers.
for t in "${targets[@]}"; do
    body=""
    for _ in $(seq 20); do
        body=$(curl -s --max-time 2 "http://127.0.0.1:${port[$t]}/hello" || true)
        [ "$body" = "hello" ] && break
        sleep 0.1
    done
    if [ "$body" != "hello" ]; then
        echo "bench.sh: $t on port ${port[$t]} answered '$body', expected 'hello'" >&2
        cat "$tmp/$t/error.log" >&2 2>/dev/null || true
        exit 1
    fi
done

# --- measurement -------------------------------------------------------------
wrk_cmd="taskset -c 1 wrk -t1 -c50 -d${DURATION}s http://127.0.0.1:PORT/hello"

run_wrk() {  # target duration -> prints Requests/sec
    local t=$1 d=$2 out rps
    out=$(taskset -c 1 wrk -t1 -c50 -d"$d" "http://127.0.0.1:${port[$t]}/hello")
    # Non-2xx means we measured an error path, not the handler: fatal.
    # Socket errors are only warned about: they show up transiently when the
    # machine is loaded by something else, and make that run suspect rather
    # than the whole bench invalid.
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "bench.sh: wrk got non-2xx responses from $t:" >&2
        echo "$out" >&2
        exit 1
    fi
    if grep -q 'Socket errors' <<<"$out"; then
        echo "bench.sh: warning: $t ($d): $(grep 'Socket errors' <<<"$out" | sed 's/^ *//')" >&2
    fi
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    [ -n "$rps" ] || { echo "bench.sh: could not parse wrk output for $t:" >&2; echo "$out" >&2; exit 1; }
    echo "$rps"
}

# Warm up each target once (LuaJIT traces, page cache, TCP state) so the
# first measured round is not penalised.
for t in "${targets[@]}"; do run_wrk "$t" 1s >/dev/null; done

# Rounds alternate over the targets so slow drift on the machine (thermal,
# noisy neighbours) spreads over all of them instead of biasing one.
declare -A results=()
for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${targets[@]}"; do
        rps=$(run_wrk "$t" "${DURATION}s")
        results[$t]+="$rps "
        printf 'round %d/%d  %-9s %12s req/s\n' "$r" "$ROUNDS" "$t" "$rps" >&2
    done
done

# Nothing should have been logged at warn level during the runs; if it was,
# the numbers may include error paths.
for t in "${targets[@]}"; do
    if [ -s "$tmp/$t/error.log" ]; then
        echo "bench.sh: warning: $t error.log is not empty:" >&2
        tail -n 5 "$tmp/$t/error.log" >&2
    fi
done

# --- report ------------------------------------------------------------------
stats() {  # "v1 v2 ..." -> "median min max"
    tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '
        { v[NR] = $1 }
        END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.2f %.2f %.2f\n", m, v[1], v[NR]
        }'
}

declare -A med mn mx
for t in "${targets[@]}"; do
    read -r med[$t] mn[$t] mx[$t] <<<"$(stats "${results[$t]}")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
r_c=$(ratio "${med[ours]}" "${med[c-module]}")
r_plain=$(ratio "${med[ours]}" "${med[plain]}")

table=$(
    echo "| target   | median req/s | min req/s | max req/s |"
    echo "|----------|-------------:|----------:|----------:|"
    for t in "${targets[@]}"; do
        printf '| %-8s | %12s | %9s | %9s |\n' "$t" "${med[$t]}" "${mn[$t]}" "${mx[$t]}"
    done
    echo
    echo "ours / c-module (median): $r_c"
    echo "ours / plain    (median): $r_plain"
)
echo "$table"

if ((markdown)); then
    mkdir -p docs
    {
        echo "# Benchmark: hello via content_by_lua_block"
        echo
        echo "Generated by \`scripts/bench.sh --markdown\` on $(date -u '+%Y-%m-%d %H:%M:%S UTC')."
        echo
        echo "- nginx: \`$("$nginx_bin" -V 2>&1 | head -n1)\`"
        echo "- nproc: $(nproc)"
        echo "- C module: \`libnginx-mod-http-lua $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua)\`"
        echo "- nginx: 1 worker pinned to core 0, access_log off; one instance measured at a time"
        echo "- wrk: \`$wrk_cmd\` (PORT 18081 ours, 18082 c-module, 18083 plain)"
        echo "- $ROUNDS alternating rounds after a 1 s warm-up per target"
        echo "- ours: \`ngx.say(\"hello\")\` via our .so; c-module: the same via Debian's module; plain: \`return 200 \"hello\\n\"\`"
        echo
        echo "$table"
    } > docs/bench.md
    echo "bench.sh: wrote docs/bench.md" >&2
fi
