#!/usr/bin/env bash
# Build a Debian package of the module for this machine's nginx, laid out as
# Debian's own nginx module packages (libnginx-mod-*):
#
#   /usr/lib/nginx/modules/ngx_http_lua_rs_module.so
#   /usr/share/nginx/modules-available/mod-http-lua.conf   (its load_module line)
#   /etc/nginx/modules-enabled/50-mod-http-lua.conf        (symlink, made by postinst)
#
#   scripts/package.sh        prints the .deb's path (last line)
#
# It replaces Debian's C module: Provides/Conflicts/Replaces
# libnginx-mod-http-lua, so `apt-get install ./<deb>` swaps the C module out,
# and packages that depend on libnginx-mod-http-lua (nginx-extras,
# lua-resty-core) stay installed. The Provides carries the version of the
# lua-nginx-module API we implement (0.10.23, Debian 12's), so versioned
# dependencies such as lua-resty-core's (>= 1:0.10.23, << 1:0.10.23.1~) hold.
# It depends on the exact nginx ABI it was built for (nginx-abi-*, which
# Debian's nginx package provides) and on the packages of the shared
# libraries the .so links. The .so is the one scripts/build.sh builds and
# checks against /usr/sbin/nginx, with its debug info stripped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

so=$(bash scripts/build.sh | tail -n 1)

name=libnginx-mod-http-lua-rs
module_file=ngx_http_lua_rs_module.so
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
version="$crate_version-1"
arch=$(dpkg --print-architecture)
provides_version="1:0.10.23-1+rs"

abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p' | head -1)
[ -n "$abi" ] || { echo "package.sh: the installed nginx package provides no nginx-abi-*" >&2; exit 1; }

# one dependency per shared library the .so needs (libc, LuaJIT, PCRE2):
# the package that owns the library file, at least at the installed version
# (upstream part), as dpkg-shlibdeps would say without a symbols file
lib_deps=()
libs=$(ldconfig -p)
for lib in $(objdump -p "$so" | awk '$1 == "NEEDED" { print $2 }'); do
    path=$(awk -v l="$lib" '$1 == l && /x86-64|AArch64|64bit/ { print $NF; exit }' <<<"$libs")
    [ -n "$path" ] || path=$(awk -v l="$lib" '$1 == l { print $NF; exit }' <<<"$libs")
    [ -n "$path" ] || { echo "package.sh: $lib (needed by the module) not found by ldconfig" >&2; exit 1; }
    # dpkg knows the path as the package installed it (/lib or /usr/lib)
    pkg=""
    for p in "$path" "$(realpath "$path")"; do
        [ -n "$pkg" ] || pkg=$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 || true)
    done
    [ -n "$pkg" ] || { echo "package.sh: no package owns $path ($lib)" >&2; exit 1; }
    pkg_version=$(dpkg-query -W -f='${Version}' "$pkg" | sed 's/-[^-]*$//')
    lib_deps+=("$pkg (>= $pkg_version)")
done
depends="$abi"
for d in $(printf '%s\n' "${lib_deps[@]}" | sort -u | tr ' ' '@'); do depends+=", ${d//@/ }"; done

out="$root/target/debian"
stage="$out/$name"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/lib/nginx/modules" \
         "$stage/usr/share/nginx/modules-available" "$stage/usr/share/doc/$name"
objcopy --strip-debug "$so" "$stage/usr/lib/nginx/modules/$module_file"
chmod 0644 "$stage/usr/lib/nginx/modules/$module_file"
echo "load_module modules/$module_file;" >"$stage/usr/share/nginx/modules-available/mod-http-lua.conf"
cat >"$stage/usr/share/doc/$name/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ngx_http_lua_module (Rust)

Files: *
License: BSD-2-Clause
COPYRIGHT
gzip -9n -c README.md >"$stage/usr/share/doc/$name/README.md.gz"

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: ngx_http_lua_module (Rust) maintainers <root@localhost>
Installed-Size: $installed_size
Depends: $depends
Recommends: nginx
Provides: libnginx-mod-http-lua (= $provides_version)
Conflicts: libnginx-mod-http-lua
Replaces: libnginx-mod-http-lua
Section: httpd
Priority: optional
Description: Lua module for nginx, written in Rust (replaces libnginx-mod-http-lua)
 A drop-in replacement for OpenResty's lua-nginx-module (ngx_http_lua_module,
 API of 0.10.23) as one nginx dynamic module: LuaJIT embedded in nginx, with
 the ngx.* API and lua-resty-core's built in, no NDK needed.
CONTROL

# The maintainer scripts do what Debian's dh_nginx scripts do for a module:
# link modules-enabled/50-mod-http-lua.conf on a fresh install (or when a
# removal had parked the link as .removed), park the link on remove, delete
# it on purge (unless the C module's package owns the conf again), and ask
# nginx (if running) to reload through its trigger.
link=/etc/nginx/modules-enabled/50-mod-http-lua.conf
conf=/usr/share/nginx/modules-available/mod-http-lua.conf
cat >"$stage/DEBIAN/postinst" <<SCRIPT
#!/bin/sh
set -e
if [ "\$1" = "configure" ]; then
	removed=false
	if [ -L $link.removed ]; then
		rm $link.removed
		removed=true
	fi
	if [ -z "\$2" ] || [ "\$removed" = "true" ]; then
		mkdir -p /etc/nginx/modules-enabled
		ln -sf $conf $link
	fi
	if command -v dpkg-trigger >/dev/null 2>&1; then
		dpkg-trigger --no-await nginx-reload
	fi
fi
SCRIPT
cat >"$stage/DEBIAN/prerm" <<SCRIPT
#!/bin/sh
set -e
if [ "\$1" = "remove" ] || [ "\$1" = "deconfigure" ]; then
	if [ -L $link ]; then
		mv $link $link.removed
	fi
fi
SCRIPT
cat >"$stage/DEBIAN/postrm" <<SCRIPT
#!/bin/sh
set -e
# The link's name and target are Debian's C module's too: when that package
# owns $conf again (it replaced this one), the link is its.
if [ "\$1" = "purge" ] && [ ! -e $conf ]; then
	rm -f $link $link.removed
fi
if [ "\$1" = "remove" ]; then
	if command -v dpkg-trigger >/dev/null 2>&1; then
		dpkg-trigger --no-await nginx-reload
	fi
fi
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

deb="$out/${name}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
