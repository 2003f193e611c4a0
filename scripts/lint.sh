#!/usr/bin/env bash
# Structural checks that rustc and clippy cannot make.
#
# 1. No Lua error may be raised while a Rust frame is live (LuaJIT unwinds
#    through it and the worker aborts). src/lua/mod.rs exposes only the
#    non-raising Lua C API as `ffi`; the raising calls stay in that file,
#    and the object-creating calls (which may run a failing `__gc`) are the
#    protected versions of src/lua/alloc.rs. So no other file may
#    reach mlua's raw API.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if hits=$(grep -rn --include='*.rs' -E 'mlua::ffi|mlua_sys' src | grep -v -E '^src/lua/(mod|alloc).rs:'); then
    echo "lint: only src/lua/mod.rs and src/lua/alloc.rs may use mlua's raw C API (use crate::lua::ffi):" >&2
    echo "$hits" >&2
    status=1
fi
[ $status -eq 0 ] && echo "lint: ok"
exit $status
