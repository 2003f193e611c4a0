#!/usr/bin/env bash
# Build nginx 1.28 from the `nginx-src` crate (scripts/nginx-src.sh) into
# build/nginx-1.28-bin, as the second nginx the t/ suite runs on.
#
#   scripts/nginx-1.28.sh        prints the binary's path (last line)
#
# Configure arguments: Debian's conf_flags (the arguments Debian documents for
# building modules against its nginx: --with-compat, --with-debug, pcre-jit,
# ssl, v2, realip, threads, ...) without its paths, which would point at the
# system's /etc/nginx and /var/lib/nginx; plus the static modules of
# Debian's `nginx -V` and the stream module (static here) that the issue asks
# for. The binary's prefix is its own build dir; the t/ runner always passes
# -p and -c. Rebuilt only when the sources or these arguments change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

src=$(bash scripts/nginx-src.sh)
out="$root/build/nginx-1.28-bin"

flags_file=/usr/share/nginx/src/conf_flags
[ -f "$flags_file" ] || { echo "nginx-1.28.sh: $flags_file missing (run scripts/build.sh first: it installs nginx-dev)" >&2; exit 1; }
# shellcheck disable=SC1090
source "$flags_file"
args=(--prefix="$out/prefix" --error-log-path=stderr)
for a in "${NGX_CONF_FLAGS[@]}"; do
    case "$a" in
        --prefix=* | --*-path=*) ;;
        *) args+=("$a") ;;
    esac
done
args+=(--with-cc-opt='-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2'
       --with-ld-opt='-Wl,-z,relro -Wl,-z,now -fPIC'
       --with-http_addition_module --with-http_flv_module --with-http_gunzip_module
       --with-http_gzip_static_module --with-http_mp4_module --with-http_random_index_module
       --with-http_secure_link_module --with-http_sub_module
       --with-stream --with-stream_ssl_module --with-stream_ssl_preread_module
       --with-stream_realip_module)

stamp="$out/.build-args"
want=$(printf '%s\n' "$src" "${args[@]}" | sha256sum)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$out/objs/nginx" ]; then
    echo "nginx-1.28.sh: building nginx from $src in $out" >&2
    rm -rf "$out"
    mkdir -p "$out"
    cp -a "$src/." "$out/"
    (cd "$out" && auto/configure "${args[@]}" >configure.log 2>&1) || {
        echo "nginx-1.28.sh: configure failed, see $out/configure.log" >&2
        tail -20 "$out/configure.log" >&2
        exit 1
    }
    (cd "$out" && make -j"$(nproc)" >make.log 2>&1) || {
        echo "nginx-1.28.sh: make failed, see $out/make.log" >&2
        tail -30 "$out/make.log" >&2
        exit 1
    }
    mkdir -p "$out/prefix/logs"
    echo "$want" >"$stamp"
fi
echo "$out/objs/nginx"
