#!/usr/bin/env bash
# Long-running API fuzzer (t/fuzz/api_fuzz.lua) against nginx with the module.
#
#   scripts/fuzz-api.sh [DURATION] [SEED]        e.g. scripts/fuzz-api.sh 30m 1
#   scripts/fuzz-api.sh sweep CLASS...           e.g. scripts/fuzz-api.sh sweep raise_index wrong_self
#
# DURATION: seconds, or with s/m/h suffix (default 60s).  SEED: first seed
# (default 1); every request uses the next one.  The phases are driven in
# turn (one request each, /fuzz/<phase>?seed=S&calls=N&budget=B); init_by_lua,
# init_worker_by_lua and exit_worker_by_lua run at every (re)start.
#
# Sweep mode calls every function once per argument position with a value
# of each CLASS (see SWEEP in t/fuzz/api_fuzz.lua: raise_index, yield_index,
# raise_newindex, raise_tostring, yield_tostring, raise_len, raise_eq,
# self_ref, deep, yield_cb, raise_cb, co_yield_cb, huge_str, nan, neg_huge,
# null, udata, wrong_self) and lists the functions that crash.
#
# Reproduce one crash on a fresh nginx: t/fuzz/repro.sh ours|c PHASE 'LUA'
#
# Environment:
#   FUZZ_MODULE=ours|c|PATH  module under test (default ours: target/release/...so;
#                          a path: that .so, e.g. a copy that later builds leave alone);
#                          c = Debian's lua-nginx-module (with NDK), the control
#   FUZZ_PORT              listen port (default: a free one)
#   FUZZ_ROOT              server root (default /tmp/fuzz-api.<module>)
#   FUZZ_CALLS             calls per request run (default 3000)
#   FUZZ_BUDGET            seconds per request run (default 1)
#   FUZZ_PHASES            phases to drive (default: all of them)
#   FUZZ_INIT=0            no fuzzing in init_by_lua / init_worker_by_lua / exit_worker
#   FUZZ_AUTOSKIP=N        after N crashes attributed to one function, add it
#                          to logs/fuzz-skip.txt so other crashes can surface
#                          (default 2; 0 = never)
#   FUZZ_SWEEP_START       sweep mode: first target index (default 1)
#   FUZZ_SKIP              file of entries to skip from the start: function
#                          names as the trace prints them, "kind:NAME" for a
#                          generated value kind or family (kind:tbl_raise),
#                          "wrong_self", "inner_yield" (known classes set aside)
#
# At the end it prints the calls per phase, the crashes (error.log lines
# "exited on signal", nginx's own death, Rust panics) and, for each, the last
# calls the crashed process made (its trace ring) with the seed to replay it:
#   curl 'http://127.0.0.1:PORT/fuzz/<phase>?seed=S&calls=N'
set -uo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)

sweep_classes=""
if [ "${1:-}" = sweep ]; then
    # scripts/fuzz-api.sh sweep CLASS...: every target with one value of each
    # class at each argument position (see run_sweep in t/fuzz/api_fuzz.lua)
    shift
    sweep_classes="$*"
    set -- 1s 1
fi
dur=${1:-60s}
seed=${2:-1}
case "$dur" in
    *h) secs=$(( ${dur%h} * 3600 )) ;;
    *m) secs=$(( ${dur%m} * 60 )) ;;
    *s) secs=${dur%s} ;;
    *) secs=$dur ;;
esac

module=${FUZZ_MODULE:-ours}
case "$module" in
    ours)
        so="$root_dir/target/release/libngx_http_lua_module.so"
        [ -f "$so" ] || so=$(bash "$root_dir/scripts/build.sh" | tail -n 1)
        load="load_module $so;" ;;
    c)
        load="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;" ;;
    /*.so) so=$module; load="load_module $so;" ;;
    *) echo "FUZZ_MODULE must be ours, c or the absolute path of a .so" >&2; exit 2 ;;
esac

root=${FUZZ_ROOT:-/tmp/fuzz-api.$module}
port=${FUZZ_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
calls=${FUZZ_CALLS:-3000}
budget=${FUZZ_BUDGET:-1}
autoskip=${FUZZ_AUTOSKIP:-2}
phases=${FUZZ_PHASES:-"content rewrite access set header_filter body_filter log timer balancer server_rewrite sub terminal"}
init_on=${FUZZ_INIT:-1}

rm -rf "$root"
mkdir -p "$root/logs" "$root/html" "$root/conf"
echo "static file" > "$root/html/static.txt"
: > "$root/logs/fuzz-skip.txt"
[ -n "${FUZZ_SKIP:-}" ] && cat "$FUZZ_SKIP" >> "$root/logs/fuzz-skip.txt"

# init-time runs use their own seed, changed at every restart
write_conf() {
    local iseed=$1 init_calls=400
    [ "$init_on" = 1 ] || init_calls=0
    cat > "$root/conf/nginx.conf" <<EOF
$load
$( [ "$(id -u)" = 0 ] && echo "user root;  # workers write their trace files under logs/" )
worker_processes 1;
master_process on;
daemon off;
error_log $root/logs/error.log notice;
pid $root/logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $root/client_body_temp;
    proxy_temp_path $root/proxy_temp;
    fastcgi_temp_path $root/fastcgi_temp;
    uwsgi_temp_path $root/uwsgi_temp;
    scgi_temp_path $root/scgi_temp;
$(sed -e "s|@FUZZDIR@|$root_dir/t/fuzz|g" -e "s|@ISEED@|$iseed|g" -e "s|@ICALLS@|$init_calls|g" \
      "$root_dir/t/fuzz/http.conf")
    server {
        listen 127.0.0.1:$port;
        root $root/html;
$(cat "$root_dir/t/fuzz/server.conf")
    }
}
EOF
}

start_nginx() {
    write_conf "$1"
    /usr/sbin/nginx -p "$root/" -c "$root/conf/nginx.conf" >>"$root/logs/stderr.log" 2>&1 &
    ngx_pid=$!
    # the master must be up; its workers may still be crashing (init_worker)
    for _ in $(seq 1 50); do
        kill -0 "$ngx_pid" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/static.txt" && return 0
        sleep 0.1
    done
    kill -0 "$ngx_pid" 2>/dev/null
}

stop_nginx() {
    [ -n "${ngx_pid:-}" ] || return 0
    kill -QUIT "$ngx_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$ngx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ngx_pid" 2>/dev/null
    wait "$ngx_pid" 2>/dev/null
    ngx_pid=
}
trap 'stop_nginx' EXIT INT TERM

crashes="$root/logs/crashes.txt"
: > "$crashes"
declare -A crash_count
log_pos=0

# The newest records of a process's trace ring (sorted by sequence number).
last_calls() {
    local f="$root/logs/fuzz-trace.$1"
    [ -f "$f" ] || { echo "    (no trace for pid $1)"; return; }
    tr -d '\000' < "$f" | grep -a -E '^[0-9]{10} ' | sort | tail -n "${2:-3}" | sed -e 's/ *$//' -e 's/^/    /'
}

# Looks at the error.log lines since the last check; records crashes.
check_log() {
    local what=$1 seed_now=$2
    local size
    size=$(stat -c %s "$root/logs/error.log" 2>/dev/null || echo 0)
    [ "$size" -gt "$log_pos" ] || return 0
    local new
    new=$(tail -c +$((log_pos + 1)) "$root/logs/error.log" | head -c $((size - log_pos)) | tr -d '\000')
    log_pos=$size
    while IFS= read -r line; do
        local pid sig
        pid=$(sed -n 's/.*worker process \([0-9]*\) exited on signal \([0-9]*\).*/\1/p' <<<"$line")
        sig=$(sed -n 's/.*exited on signal \([0-9]*\).*/\1/p' <<<"$line")
        [ -n "$pid" ] || continue
        [ "$sig" = 9 ] && continue # our own kill of a hung worker (hangs.txt)
        local last fn
        last=$(last_calls "$pid" 1)
        fn=$(sed -n 's/.* call=[0-9]* \([^(]*\)(.*/\1/p' <<<"$last")
        {
            echo "CRASH signal $sig, worker $pid, during request $what (seed $seed_now)"
            echo "  $line"
            echo "  last calls of the worker:"
            last_calls "$pid" 3
            echo
        } >> "$crashes"
        echo "crash: signal $sig in $what seed $seed_now: ${fn:-?}" >&2
        count_crash "$fn"
    done <<<"$(grep -a -E 'exited on signal|panicked|fatal runtime error' <<<"$new")"
}

# Counts a crash attributed to function $1; with FUZZ_AUTOSKIP, a function
# that crashed often enough goes to the skip list.
count_crash() {
    local fn=$1
    [ -n "$fn" ] || return 0
    crash_count[$fn]=$(( ${crash_count[$fn]:-0} + 1 ))
    if [ "$autoskip" -gt 0 ] && [ "${crash_count[$fn]}" -ge "$autoskip" ] &&
        ! grep -qxF "$fn" "$root/logs/fuzz-skip.txt"; then
        echo "$fn" >> "$root/logs/fuzz-skip.txt"
        echo "autoskip: $fn" >&2
    fi
}

# nginx (the master) died: the init-time runs crashed it, or a worker took it down.
master_died() {
    local iseed=$1 status=$2
    if [ "$status" -eq 0 ]; then
        # a fuzzed call made nginx quit (seen with the C module in init_worker)
        echo "nginx exited with status 0 (init seed $iseed): restarting" | tee -a "$root/logs/requests.txt" >&2
        return 0
    fi
    if [ "$status" -lt 128 ]; then
        echo "nginx exited with status $status (not a signal): $(tail -n 3 "$root/logs/stderr.log" | tr '\n' ' ')" >&2
        echo "see $root/logs/stderr.log and error.log" >&2
        exit 2
    fi
    local tp
    tp=$(ls -t "$root"/logs/fuzz-trace.* 2>/dev/null | head -1)
    local last fn
    last=$(tail -c 2000000 "$tp" 2>/dev/null | tr -d '\000' | grep -a -E '^[0-9]{10} ' | sort | tail -n 1)
    fn=$(sed -n 's/.* call=[0-9]* \([^(]*\)(.*/\1/p' <<<"$last")
    {
        echo "CRASH nginx exited with status $status (init seed $iseed)"
        echo "  stderr: $(tail -n 3 "$root/logs/stderr.log" | tr '\n' ' ')"
        echo "  last calls ($tp):"
        tail -c 2000000 "$tp" 2>/dev/null | tr -d '\000' | grep -a -E '^[0-9]{10} ' | sort | tail -n 3 |
            sed -e 's/ *$//' -e 's/^/    /'
        echo
    } >> "$crashes"
    echo "crash: nginx died (status $status): ${fn:-?}" >&2
    count_crash "$fn"
}

# A request timed out: if a worker is busy or blocked, keep its stack and
# last calls, then kill it (the master starts another one).
check_hang() {
    local what=$1 seed_now=$2 w
    for w in $(pgrep -P "$ngx_pid"); do
        local st
        st=$(awk '{print $3}' "/proc/$w/stat" 2>/dev/null)
        [ -n "$st" ] || continue
        # a worker of ours that still answers is not hung
        curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$port/static.txt" && return 0
        {
            echo "HANG worker $w (state $st, wchan $(cat /proc/$w/wchan 2>/dev/null), $(grep VmRSS "/proc/$w/status" | tr -s ' ')) during request $what (seed $seed_now)"
            echo "  last calls of the worker:"
            last_calls "$w" 3
            echo "  stack:"
            timeout 30 gdb -p "$w" -batch -ex "bt 80" 2>/dev/null | grep -E '^#' | sed 's/^/    /'
            echo
        } >> "$hangs"
        echo "hang: worker $w in $what seed $seed_now" >&2
        kill -KILL "$w"
        sleep 0.5
    done
    log_pos=$(stat -c %s "$root/logs/error.log" 2>/dev/null || echo 0)
}

hangs="$root/logs/hangs.txt"
: > "$hangs"

# Sweep mode: resume after each crash at the next target.
run_sweeps() {
    local class start body idx fn sig line
    FUZZ_INIT=0
    init_on=0
    start_nginx 1 || { echo "nginx does not start" >&2; return 1; }
    log_pos=$(stat -c %s "$root/logs/error.log")
    for class in $sweep_classes; do
        start=${FUZZ_SWEEP_START:-1}
        for _ in $(seq 1 2000); do
            local w
            w=$(pgrep -P "$ngx_pid" | head -1)
            body=$(curl -s --max-time 120 "http://127.0.0.1:$port/fuzz/sweep?class=$class&start=$start&budget=60&call_timeout=0.3")
            idx=$(sed -n 's/^next=\([0-9a-z]*\) of .*/\1/p' <<<"$body")
            [ -n "$idx" ] || idx=$(tail -c +$((log_pos + 1)) "$root/logs/error.log" | tr -d '\000' |
                sed -n "s/.*api_fuzz sweep: class=$class next=\([0-9a-z]*\) of .*/\1/p" | tail -1)
            log_pos=$(stat -c %s "$root/logs/error.log")
            if [ "$idx" = done ]; then
                echo "sweep $class: done ($(grep -o 'calls=[0-9]*' <<<"$body"))" >&2
                break
            elif [ -n "$idx" ]; then
                start=$idx
                continue
            fi
            # no answer: the worker died (or hung); its trace names the call
            sleep 0.5
            line=$(last_calls "$w" 1)
            idx=$(sed -n 's/.* sweep=\([0-9]*\) class=.*/\1/p' <<<"$line")
            sig=$(tr -d '\000' < "$root/logs/error.log" | grep -a -o "worker process $w exited on signal [0-9]*" | grep -o '[0-9]*$' | head -1)
            log_pos=$(stat -c %s "$root/logs/error.log")
            if [ -z "$sig" ] && kill -0 "$w" 2>/dev/null; then
                sig="none (hung, killed)"
                {
                    echo "HANG worker $w (state $(awk '{print $3}' "/proc/$w/stat")) in sweep $class"
                    last_calls "$w" 3
                    timeout 30 gdb -p "$w" -batch -ex "bt 80" 2>/dev/null | grep -E '^#' | sed 's/^/    /'
                    echo
                } >> "$hangs"
                kill -KILL "$w"
                sleep 0.5
                log_pos=$(stat -c %s "$root/logs/error.log")
            fi
            fn=$(sed -n 's/.* class=[a-z_]* \([^(]*\)(.*/\1/p' <<<"$line")
            echo "SWEEP CRASH class=$class signal=${sig:-?} target=$fn" >> "$crashes"
            echo "   ${line#    }" >> "$crashes"
            echo "sweep $class: crash in $fn (signal ${sig:-?})" >&2
            [ -n "$idx" ] || { echo "sweep $class: cannot tell where it crashed; stopping" >&2; break; }
            start=$((idx + 1))
        done
    done
    stop_nginx
    echo "== sweep crashes (class, signal, target):"
    grep -a '^SWEEP CRASH' "$crashes" | sed 's/^SWEEP CRASH //' | sort | uniq -c
}
if [ -n "$sweep_classes" ]; then
    run_sweeps
    exit 0
fi

start=$(date +%s)
end=$((start + secs))
s=$seed
iseed=$seed
requests=0
restarts=0
read -r -a phase_list <<<"$phases"
ngx_pid=
while [ "$(date +%s)" -lt "$end" ]; do
    if [ -z "$ngx_pid" ] || ! kill -0 "$ngx_pid" 2>/dev/null; then
        if [ -n "$ngx_pid" ]; then
            wait "$ngx_pid"; st=$?
            master_died "$iseed" "$st"
            ngx_pid=
        fi
        iseed=$((iseed + 1))
        restarts=$((restarts + 1))
        if ! start_nginx "$iseed"; then
            wait "$ngx_pid" 2>/dev/null; st=$?
            master_died "$iseed" "$st"
            ngx_pid=
            if [ "$restarts" -gt 50 ]; then echo "nginx keeps dying at start; giving up" >&2; break; fi
            continue
        fi
        log_pos=$(stat -c %s "$root/logs/error.log" 2>/dev/null || echo 0)
        check_log "startup" "$iseed"
    fi
    for ph in "${phase_list[@]}"; do
        [ "$(date +%s)" -lt "$end" ] || break
        s=$((s + 1))
        requests=$((requests + 1))
        # every other request has a body (read_body, get_post_args, req socket)
        body=()
        [ $((s % 2)) -eq 0 ] && body=(--data-binary "a=1&b=%ZZ&c=$(head -c 3000 /dev/zero | tr '\0' x)")
        curl -s -o /dev/null --max-time $((budget * 2 + 20)) "${body[@]}" \
            "http://127.0.0.1:$port/fuzz/$ph?seed=$s&calls=$calls&budget=$budget"
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "request /fuzz/$ph seed $s: curl status $rc" >> "$root/logs/requests.txt"
            [ $rc -eq 28 ] && check_hang "/fuzz/$ph" "$s"
        fi
        check_log "/fuzz/$ph" "$s"
        kill -0 "$ngx_pid" 2>/dev/null || break
    done
done
# the report (timers finished), then a graceful stop (exit_worker runs)
curl -s --max-time 15 "http://127.0.0.1:$port/report" > "$root/logs/report.txt"
stop_nginx
check_log "shutdown" "-"

echo "== api fuzz: module=$module duration=${secs}s first seed=$seed last seed=$s requests=$requests nginx starts=$restarts"
echo "== calls per phase (from error.log 'api_fuzz: phase=' lines):"
grep -a -o 'api_fuzz: phase=[a-z_]* seed=[0-9]* calls=[0-9]*' "$root/logs/error.log" |
    awk '{split($2,p,"="); split($4,c,"="); n[p[2]]+=c[2]; r[p[2]]++; t+=c[2]}
         END {for (k in n) printf "   %-15s %9d calls in %d runs\n", k, n[k], r[k]; printf "   total %d calls\n", t}' | sort
echo "== report: $(cat "$root/logs/report.txt" 2>/dev/null)"
ncrash=$(grep -c '^CRASH' "$crashes")
echo "== crashes: $ncrash (details in $crashes)"
grep -a -E 'exited on signal|panicked|fatal runtime error' "$root/logs/error.log" "$root/logs/stderr.log" | head -5
if [ "$ncrash" -gt 0 ]; then
    echo "== crashing functions (last call before each crash):"
    awk '/^CRASH/ {want=1} /^    [0-9]+ phase=/ {last=$0} /^$/ {if (want && last != "") print last; want=0; last=""}' "$crashes" |
        grep -a -o 'call=[0-9]* [^(]*' | awk '{print $2}' | sort | uniq -c | sort -rn
    echo "== skipped after repeated crashes: $(tr '\n' ' ' < "$root/logs/fuzz-skip.txt")"
fi
nhang=$(grep -c '^HANG' "$hangs")
echo "== hung workers: $nhang (details in $hangs)"
[ "$ncrash" -eq 0 ] && [ "$nhang" -eq 0 ]
