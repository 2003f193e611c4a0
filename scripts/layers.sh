#!/usr/bin/env bash
# The layering check of DESIGN.md: a file may name (`use crate::x`, or a
# `crate::x::...` path in code) only its own layer or a lower one.
#
#   module, directives   src/lib.rs, module.rs, exports.rs, c_api.rs,
#                        src/directives/
#   phase                src/phase/
#   api                  src/api/
#   runtime              src/runtime/
#   conf                 src/conf/
#   lua                  src/lua/
#   glue                 src/glue/
#
# lua and glue are DESIGN.md's leaves; glue sits under lua because the Lua
# leaf logs through nginx's error log (lua/alloc.rs), and glue names no
# other layer at all.
#
# Comments are skipped. Grouped paths (`use crate::{a, b}`) are refused so
# that every reference names its layer where this check can see it.
set -euo pipefail
cd "$(dirname "$0")/.."

rank() {
    case "$1" in
        lib | module | exports | c_api | directives) echo 0 ;;
        phase) echo 1 ;;
        api) echo 2 ;;
        runtime) echo 3 ;;
        conf) echo 4 ;;
        lua) echo 5 ;;
        glue) echo 6 ;;
        *) echo -1 ;;
    esac
}

status=0
files=0
while IFS= read -r f; do
    files=$((files + 1))
    rel=${f#src/}
    layer=${rel%%/*}
    layer=${layer%.rs}
    own=$(rank "$layer")
    if [ "$own" -lt 0 ]; then
        echo "layers: $f is in no layer of DESIGN.md" >&2
        status=1
        continue
    fi
    # line number and code of each line, comments cut off
    while IFS=: read -r line target; do
        if [ "$target" = "{" ]; then
            echo "layers: $f:$line: grouped crate path (write one path per layer)" >&2
            status=1
            continue
        fi
        to=$(rank "$target")
        if [ "$to" -lt 0 ]; then
            echo "layers: $f:$line: crate::$target is in no layer" >&2
            status=1
        elif [ "$to" -lt "$own" ]; then
            echo "layers: $f:$line: $layer names the higher layer crate::$target" >&2
            status=1
        fi
    done < <(sed -e 's#//.*##' "$f" | grep -noE 'crate::([a-z_0-9]+|\{)' | sed -E 's/:crate::/:/' || true)
done < <(find src -name '*.rs' | sort)

[ $status -eq 0 ] && echo "layers: ok ($files files)"
exit $status
