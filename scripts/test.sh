#!/usr/bin/env bash
# Run every test: build (installing what is missing), lints, the README's
# compatibility table check, the runner's
# unit tests, the fuzz targets (a few seconds each), the t/ suites against the
# real nginx with our module, on Debian's /usr/sbin/nginx (1.22.1) and on
# nginx 1.28 built from the nginx-src crate (scripts/nginx-1.28.sh), the soak,
# reloads under load, a few t/ files under valgrind, and the Debian package
# installed with apt on the machine's nginx (scripts/package-test.sh).
#   scripts/test.sh                 everything
#   scripts/test.sh 001-sleep       one file (TEST_BLOCK=3 for one block), on
#                                   /usr/sbin/nginx only unless NGINX_TARGETS says
# NGINX_TARGETS: the nginxes the t/ files run on, "system 1.28" for a full run,
# "system" for one file; e.g. NGINX_TARGETS=1.28 scripts/test.sh 001-sleep.
# Longer or shorter runs: FUZZ_SECONDS (per fuzz target, default 8),
# HUP_LOAD_SECONDS (default 60), VALGRIND_FILES (the t/ files run under
# valgrind; "none" skips that step).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
so=$(bash scripts/build.sh | tail -n 1)
export TEST_NGINX_LUA_MODULE="$so"
# The runner evaluates the .t files' Perl with Test::Base (t/runner/blocks.pl,
# which prints through the core JSON::PP); Debian's package brings both.
if ! perl -MTest::Base -MJSON::PP -e1 >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libtest-base-perl >&2
fi
# redis-server and memcached for the cosocket suites (stopped on exit)
. "$root/scripts/services.sh"
if [ $# -eq 0 ]; then
    cargo fmt --check
    bash scripts/lint.sh
    # no file may import from a higher layer (DESIGN.md)
    bash scripts/layers.sh
    # README's compatibility table against the directives and functions the
    # built module has
    python3 scripts/compat-table.py "$so"
    # the functions the workers run sit together at the start of .text
    # (src/link/hot_code.ld): applied, and not gone stale
    python3 scripts/hot-code.py check "$so" src/link/hot_code.ld
    cargo clippy --release --all-targets -- -D warnings
    cargo test --release --test runner_unit
    # The runner against stock nginx features only, so a runner bug cannot
    # hide behind a module bug.
    TEST_NGINX_T_DIR=t/runner_selftest TEST_NGINX_LUA_MODULE=none cargo test --release --test t
    bash scripts/fuzz.sh
fi
if [ $# -eq 0 ]; then targets=${NGINX_TARGETS:-system 1.28}; else targets=${NGINX_TARGETS:-system}; fi
for target in $targets; do
    case "$target" in
        system)
            start=$SECONDS
            cargo test --release --test t -- "$@"
            echo "test.sh: t/ on /usr/sbin/nginx ($(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||')): $((SECONDS - start)) s" >&2
            ;;
        1.28)
            nginx128=$(bash scripts/nginx-1.28.sh | tail -n 1)
            so128=$(bash scripts/build.sh --nginx "$nginx128" | tail -n 1)
            # the signature check of build.sh must refuse a module whose
            # signature differs in one bit
            bad_so=$(mktemp)
            python3 - "$so128" "$bad_so" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
sig = re.search(rb"\x00([0-9]+,[0-9]+,[0-9]+,[01]{30,})\x00", data).group(1)
flipped = sig[:-1] + (b"0" if sig[-1:] == b"1" else b"1")
open(sys.argv[2], "wb").write(data.replace(sig, flipped, 1))
PY
            if bash scripts/module-signature.sh "$bad_so" "$nginx128" 2>/dev/null; then
                echo "test.sh: module-signature.sh accepts a module whose signature differs" >&2
                exit 1
            fi
            rm -f "$bad_so"
            python3 scripts/hot-code.py check "$so128" src/link/hot_code.ld
            if [ $# -eq 0 ]; then
                # clippy on the code that only nginx >= 1.23 compiles
                # (src/glue/ngx_version.rs); build.sh names the target dir
                # after the configured build dir
                key=$(basename "$(dirname "$(dirname "$so128")")")
                NGINX_BUILD_DIR="$root/build/$key/objs" CARGO_TARGET_DIR="$root/target/$key" \
                    cargo clippy --release --lib -- -D warnings
            fi
            start=$SECONDS
            TEST_NGINX_BINARY="$nginx128" TEST_NGINX_LUA_MODULE="$so128" cargo test --release --test t -- "$@"
            echo "test.sh: t/ on $nginx128 ($("$nginx128" -v 2>&1 | sed 's|.*/||')): $((SECONDS - start)) s" >&2
            ;;
        *) echo "test.sh: NGINX_TARGETS: unknown '$target' (system, 1.28)" >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    bash scripts/soak.sh
    # a 64 MiB streamed response must not grow the worker (buffers reused)
    bash scripts/stream-rss.sh --check
    # reloads under load: retired workers must not wait for pooled cosockets
    bash scripts/reload-pool.sh
    bash scripts/hup-load.sh
    vg_files=${VALGRIND_FILES:-000-sanity 001-sleep 010-uthread 023-code-cache-off 302-tcp-clients 202-capture 500-re-match 505-re-conf 024-ngx-ctx}
    if [ "$vg_files" != none ]; then
        if ! command -v valgrind >/dev/null 2>&1; then
            sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
            $sudo_cmd apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq valgrind >&2
        fi
        # shellcheck disable=SC2086
        TEST_NGINX_USE_VALGRIND=1 cargo test --release --test t -- $vg_files
    fi
    # the .deb, installed with apt on the system nginx and removed again
    bash scripts/package-test.sh
fi
