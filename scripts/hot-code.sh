#!/usr/bin/env bash
# Regenerates src/link/hot_code.ld, the list of functions build.rs has the
# linker put first in .text (why: docs/internals.md, "Code layout").
#
#   scripts/hot-code.sh [REQUESTS]   (per workload, default 300)
#
# Runs the workloads of scripts/bench/workloads.sh and of
# scripts/bench/one-off.sh on /usr/sbin/nginx with our module under
# callgrind (master process on, one worker), then lists every function of
# our .so that the worker ran after the fork (not what only the master
# runs: reading the configuration, creating the Lua VM): init_worker and
# the request paths (requests from scripts/bench/client.py, then from wrk if it is
# installed). Rebuild afterwards; scripts/test.sh checks the built .so against
# the list (scripts/hot-code.py check) and fails once renames have made
# most of it stale.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-300}
command -v valgrind >/dev/null || { echo "hot-code: valgrind is needed" >&2; exit 1; }
so=$(bash "$root/scripts/build.sh" | tail -n 1)
dir=$(mktemp -d)
chmod 755 "$dir"
trap 'rm -rf "$dir"' EXIT INT TERM
# shellcheck source=lib/free-port.sh
. "$root/scripts/lib/free-port.sh"
# shellcheck source=lib/nginx-conf.sh
. "$root/scripts/lib/nginx-conf.sh"

outputs=()
for set in workloads one-off; do
    (
        # shellcheck source=/dev/null
        . "$root/scripts/bench/$set.sh"
        d=$dir/$set port=$(free_port) uport=$(free_port)
        mkdir -p "$d/conf" "$d/logs"
        chmod 777 "$d"  # the worker, running as nobody, writes its callgrind output here
        workload_files "$d"
        workload_nginx_conf "load_module $so;" on ours "$d" "$port" "$uport" >"$d/conf/nginx.conf"
        valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no \
            --callgrind-out-file="$d/cg.%p" \
            /usr/sbin/nginx -p "$d/" -c conf/nginx.conf -e logs/error.log >"$d/vg.log" 2>&1 &
        master=$!
        trap 'pkill -9 -P "$master" 2>/dev/null; kill -9 "$master" 2>/dev/null' EXIT
        for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
        for w in "${WORKLOADS[@]}"; do
            python3 "$root/scripts/bench/client.py" "$port" "$(workload_path "$w")" "$n" >/dev/null
            # wrk's requests differ from the client's (headers, pipelining
            # of connections) and take a few more functions
            if command -v wrk >/dev/null; then
                wrk -t1 -c4 -d2 "http://127.0.0.1:$port$(workload_path "$w")" >/dev/null
            fi
        done
        kill "$master"
        wait "$master" || true
        trap - EXIT
        if grep -E '\[(error|crit|alert|emerg)\]' "$d/logs/error.log"; then
            echo "hot-code: $set logged errors (above)" >&2; exit 1
        fi
        worker=$(find "$d" -name 'cg.*' ! -name "cg.$master" | head -n 1)
        [ -n "$worker" ] || { echo "hot-code: no callgrind output of the worker ($set)" >&2; exit 1; }
        mv "$d/cg.$master" "$d/master.out"
        mv "$worker" "$d/worker.out"
    )
    outputs+=("$dir/$set/master.out" "$dir/$set/worker.out")
done
python3 "$root/scripts/hot-code.py" write "$so" "$root/src/link/hot_code.ld" "${outputs[@]}"
