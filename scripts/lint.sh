#!/usr/bin/env bash
# Structural checks that rustc and clippy cannot make.
#
# 1. No Lua error may be raised while a Rust frame is live (LuaJIT unwinds
#    through it and the worker aborts). src/runtime/lua.rs exposes only the
#    non-raising Lua C API as `ffi`; the raising calls stay in that file,
#    and the object-creating calls (which may run a failing `__gc`) are the
#    protected versions of src/runtime/lua_alloc.rs. So no other file may
#    reach mlua's raw API.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if hits=$(grep -rn --include='*.rs' -E 'mlua::ffi|mlua_sys' src | grep -v -E '^src/runtime/(lua|lua_alloc).rs:'); then
    echo "lint: only src/runtime/lua.rs and lua_alloc.rs may use mlua's raw C API (use crate::runtime::lua::ffi):" >&2
    echo "$hits" >&2
    status=1
fi
[ $status -eq 0 ] && echo "lint: ok"
exit $status
