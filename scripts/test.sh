#!/usr/bin/env bash
# Run every test: build (installing what is missing), lints, the runner's
# unit tests and the t/ suites against the real nginx with our module.
#   scripts/test.sh                 everything
#   scripts/test.sh 001-sleep       one file (TEST_BLOCK=3 for one block)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
so=$(bash scripts/build.sh | tail -n 1)
export TEST_NGINX_LUA_MODULE="$so"
# redis-server and memcached for the cosocket suites (stopped on exit)
. "$root/scripts/services.sh"
if [ $# -eq 0 ]; then
    cargo fmt --check
    bash scripts/lint.sh
    cargo clippy --release --all-targets -- -D warnings
    cargo test --release --test runner_unit
    # The runner against stock nginx features only, so a runner bug cannot
    # hide behind a module bug.
    TEST_NGINX_T_DIR=t/runner_selftest TEST_NGINX_LUA_MODULE=none cargo test --release --test t
fi
cargo test --release --test t -- "$@"
if [ $# -eq 0 ]; then
    bash scripts/soak.sh
    # a 64 MiB streamed response must not grow the worker (buffers reused)
    bash scripts/stream-rss.sh --check
    # reloads under load: retired workers must not wait for pooled cosockets
    bash scripts/reload-pool.sh
fi
