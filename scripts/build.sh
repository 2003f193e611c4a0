#!/usr/bin/env bash
# Build ngx_http_lua_module.so for an installed nginx binary.
#
#   scripts/build.sh                    for /usr/sbin/nginx (Debian's), release
#   scripts/build.sh --nginx PATH       for the nginx binary at PATH
#   scripts/build.sh [--nginx PATH] ARGS...   ARGS go to `cargo build --release`
#
# The module must be compiled against nginx's sources configured exactly as
# the binary was (struct layouts, the module signature). So this reads
# `PATH -V` (version and configure arguments), takes sources of that version
# (Debian's nginx-dev in /usr/share/nginx/src, or the `nginx-src` crate's
# 1.28 via scripts/nginx-src.sh, or NGINX_SRC=<dir> for anything else),
# configures them with the same arguments, builds, and compares the module
# signature of the .so with the binary's, failing when they differ.
#
# Dirs: /usr/sbin/nginx uses build/nginx and target/ (so a plain
# `cargo build` finds it through .cargo/config.toml); any other binary gets
# build/nginx-<version>-<hash of its arguments> and a target dir of the same
# name under target/.
#
# Idempotent: apt runs only for missing packages, nginx's configure only when
# the version or arguments change, cargo only when sources change.
# The last line printed is the path of the built .so.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

nginx=/usr/sbin/nginx
if [ "${1:-}" = "--nginx" ]; then
    [ $# -ge 2 ] || { echo "build.sh: --nginx needs the path of an nginx binary" >&2; exit 2; }
    nginx=$2
    shift 2
fi

packages=(nginx nginx-dev pkg-config clang libclang-dev libluajit2-5.1-dev
          libpcre2-dev libssl-dev zlib1g-dev make gcc binutils python3)

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

[ -x "$nginx" ] || { echo "build.sh: $nginx is not an executable nginx binary" >&2; exit 1; }
nginx=$(realpath "$nginx")
info=$("$nginx" -V 2>&1) || { echo "build.sh: '$nginx -V' failed:" >&2; echo "$info" >&2; exit 1; }
version=$(sed -n 's|^nginx version: [^/]*/\([0-9.]*\).*|\1|p' <<<"$info")
[ -n "$version" ] || { echo "build.sh: no version in '$nginx -V':" >&2; echo "$info" >&2; exit 1; }

# The configure arguments, one per NUL-terminated item (split as the shell
# would, --with-cc-opt='-g -O2 ...' staying one item). Dropped: dynamic
# modules (--with-X=dynamic, --add-dynamic-module): they are separate .so
# files that need their own libraries (GeoIP, libgd, Perl, libxslt) to
# configure and do not change the layouts or the signature the module is
# checked against.
args_file=$(mktemp)
trap 'rm -f "$args_file"' EXIT
sed -n 's/^configure arguments: //p' <<<"$info" | python3 -c '
import shlex, sys
args = shlex.split(sys.stdin.read())
keep = [a for a in args if not a.endswith("=dynamic") and not a.startswith("--add-dynamic-module")]
sys.stdout.write("".join(a + "\0" for a in keep))
' >"$args_file"
mapfile -d '' conf_args <"$args_file"

src_version() { sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' "$1/src/core/nginx.h" 2>/dev/null || true; }
src=""
if [ -n "${NGINX_SRC:-}" ]; then
    src=$NGINX_SRC
elif [ "$(src_version /usr/share/nginx/src)" = "$version" ]; then
    src=/usr/share/nginx/src
else
    crate_src=$(bash scripts/nginx-src.sh)
    [ "$(src_version "$crate_src")" = "$version" ] && src=$crate_src
fi
if [ -z "$src" ] || [ "$(src_version "$src")" != "$version" ]; then
    echo "build.sh: no nginx $version sources for $nginx" >&2
    echo "  nginx-dev (/usr/share/nginx/src) has '$(src_version /usr/share/nginx/src)'," \
         "the nginx-src crate has '$(src_version "${crate_src:-/nonexistent}")'" >&2
    echo "  set NGINX_SRC to a directory of nginx $version's sources" >&2
    exit 1
fi

if [ "$nginx" = /usr/sbin/nginx ]; then
    build="$root/build/nginx"
    target="$root/target"
else
    key=$( (echo "$version"; cat "$args_file") | sha256sum | cut -c1-10)
    build="$root/build/nginx-$version-$key"
    target="$root/target/nginx-$version-$key"
fi
stamp="$build/.configure-args"
want_stamp=$( (echo "$src"; cat "$args_file") | sha256sum)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ] || [ ! -f "$build/objs/ngx_auto_config.h" ]; then
    echo "build.sh: configuring nginx $version sources ($src) in $build" >&2
    rm -rf "$build"
    mkdir -p "$build"
    cp -a "$src/." "$build/"
    # a release tarball (Debian's) has ./configure; the repository layout
    # (the nginx-src crate) has auto/configure
    configure=./configure
    [ -x "$build/configure" ] || configure=auto/configure
    (cd "$build" && "$configure" "${conf_args[@]}" >configure.log 2>&1) || {
        echo "build.sh: nginx configure failed, see $build/configure.log" >&2
        tail -20 "$build/configure.log" >&2
        exit 1
    }
    echo "$want_stamp" >"$stamp"
fi

NGINX_BUILD_DIR="$build/objs" CARGO_TARGET_DIR="$target" cargo build --release "$@" >&2

so="$target/release/libngx_http_lua_module.so"
[ -f "$so" ] || { echo "build.sh: $so was not produced" >&2; exit 1; }

# The module signature is what nginx compares at load_module; check it here so a
# mismatch fails loudly at build time instead of at nginx start.
bash scripts/module-signature.sh "$so" "$nginx" || { echo "build.sh: not usable with $nginx" >&2; exit 1; }

echo "$so"
