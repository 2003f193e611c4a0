#!/usr/bin/env bash
# Build ngx_http_lua_module.so for the nginx installed on this machine.
#
#   scripts/build.sh            install what is missing, configure, build (release)
#
# Idempotent: apt runs only for missing packages, nginx's configure only when
# /usr/share/nginx/src/conf_flags changes, cargo only when sources change.
# The last line printed is the path of the built .so.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(nginx nginx-dev pkg-config clang libclang-dev libluajit2-5.1-dev
          libpcre2-dev libssl-dev zlib1g-dev make gcc binutils)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "build.sh: installing ${missing[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "build.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }

# nginx's build dir, configured exactly as Debian configured /usr/sbin/nginx so
# that struct layouts and the module signature match the installed binary.
src=/usr/share/nginx/src
build="$root/build/nginx"
stamp="$build/.conf_flags"
if ! cmp -s "$src/conf_flags" "$stamp" || [ ! -f "$build/objs/ngx_auto_config.h" ]; then
    echo "build.sh: configuring nginx sources in $build" >&2
    rm -rf "$build"
    mkdir -p "$build"
    cp -a "$src/." "$build/"
    # shellcheck disable=SC1090,SC1091
    source "$src/conf_flags"
    (cd "$build" && ./configure "${NGX_CONF_FLAGS[@]}" >configure.log 2>&1) || {
        echo "build.sh: nginx configure failed, see $build/configure.log" >&2
        tail -20 "$build/configure.log" >&2
        exit 1
    }
    cp "$src/conf_flags" "$stamp"
fi

cargo build --release "$@" >&2

so="$root/target/release/libngx_http_lua_module.so"
[ -f "$so" ] || { echo "build.sh: $so was not produced" >&2; exit 1; }

# The module signature is what nginx compares at load_module; check it here so a
# mismatch fails loudly at build time instead of at nginx start.
sig_of() { strings -a "$1" | grep -E '^[0-9]+,[0-9]+,[0-9]+,[01]{30,}$' | head -1 || true; }
so_sig=$(sig_of "$so")
nginx_sig=$(sig_of /usr/sbin/nginx)
if [ -z "$so_sig" ] || [ "$so_sig" != "$nginx_sig" ]; then
    echo "build.sh: module signature mismatch" >&2
    echo "  module: ${so_sig:-<none found>}" >&2
    echo "  nginx:  ${nginx_sig:-<none found>}" >&2
    exit 1
fi

echo "$so"
