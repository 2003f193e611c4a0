#!/usr/bin/env bash
# Coverage-guided fuzzing of the module's pure parsers (fuzz/): libFuzzer
# through the libfuzzer-sys crate, on stable Rust. cargo-fuzz would add
# -Zsanitizer=address, which needs nightly; the code under test is safe Rust,
# so the coverage instrumentation (stable -C passes/llvm-args flags, as
# cargo-fuzz sets them) is all that is needed, and panics (failed
# properties, overflows: the profile keeps overflow checks) are the crashes.
#
#   scripts/fuzz.sh                    every target, FUZZ_SECONDS each (default 8)
#   FUZZ_SECONDS=600 scripts/fuzz.sh chunked   one target, longer
#   FUZZ_SECONDS=0 scripts/fuzz.sh     replay the corpus and regressions only
#   FUZZ_MERGE=1 scripts/fuzz.sh ...   keep the new inputs that add coverage
#                                      in fuzz/corpus/<target> (minimized)
#   FUZZ_JOBS=2                        parallel fuzzing processes per target
#
# Inputs are read from fuzz/regressions/<target> (inputs that once failed;
# each must pass forever) and fuzz/corpus/<target> (seeds). A failure prints
# the input and stops; its file is kept under fuzz/artifacts/<target>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
secs=${FUZZ_SECONDS:-8}
jobs=${FUZZ_JOBS:-1}
all=(lua_block chunked escape args shdict_codec)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v c++ >/dev/null 2>&1 || {
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq g++ >&2
}
triple=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps these flags off build scripts and proc macros
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
export CARGO_TARGET_DIR="$root/fuzz/target"
cargo fmt --check
cargo build --release --target "$triple" --bins
cargo clippy --release --target "$triple" --all-targets -- -D warnings
bin="$CARGO_TARGET_DIR/$triple/release"

total_runs=0
for t in "${targets[@]}"; do
    [ -x "$bin/$t" ] || { echo "fuzz.sh: no target $t (have: ${all[*]})" >&2; exit 2; }
    mkdir -p "corpus/$t" "regressions/$t" "artifacts/$t"
    new=$(mktemp -d)
    log=$(mktemp)
    # libFuzzer writes new inputs into the first directory only: a scratch
    # one, so a CI run leaves the repository as it was.
    opts=(-artifact_prefix="artifacts/$t/" -max_len=4096 -rss_limit_mb=2048 -timeout=10
          -print_final_stats=1)
    if [ "$secs" = 0 ]; then
        opts+=(-runs=0)
    else
        opts+=(-max_total_time="$secs")
    fi
    [ "$jobs" -gt 1 ] && opts+=(-fork="$jobs")
    start=$(date +%s%N)
    if ! "$bin/$t" "${opts[@]}" "$new" "regressions/$t" "corpus/$t" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz.sh: $t FAILED; the input is in fuzz/artifacts/$t/ (replay: $bin/$t <file>;" \
             "once fixed, add it to fuzz/regressions/$t/)" >&2
        rm -rf "$new" "$log"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    inputs=$(find "regressions/$t" "corpus/$t" -type f | wc -l)
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf 'fuzz %-13s %9s runs in %d.%03ds (%s, %s corpus/regression inputs replayed)\n' \
        "$t" "${runs:-?}" $((ms / 1000)) $((ms % 1000)) "${cov:-cov: ?}" "$inputs"
    total_runs=$((total_runs + ${runs:-0}))
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ -n "$(ls -A "$new")" ]; then
        "$bin/$t" -merge=1 -max_len=4096 "corpus/$t" "$new" >"$log" 2>&1
        echo "fuzz.sh: $t corpus now $(find "corpus/$t" -type f | wc -l) inputs"
    fi
    rm -rf "$new" "$log"
done
echo "fuzz: ${#targets[@]} targets, $total_runs runs, no failure"
