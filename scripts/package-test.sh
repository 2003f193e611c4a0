#!/usr/bin/env bash
# CI: install the .deb of scripts/package.sh with apt on this machine's own
# nginx, serve a Lua response from /usr/sbin/nginx with the stock
# /etc/nginx/nginx.conf, then purge the package, leaving the machine as found.
#
#   scripts/package-test.sh      (root, or sudo)
#   PACKAGE_TEST_REPACK=1 scripts/package-test.sh   restore the C module from
#                                the repack even when a .deb could be had
#
# What it changes and puts back:
# * If Debian's C module (libnginx-mod-http-lua) is installed, our package's
#   Conflicts makes apt remove it. Before installing anything, the test gets
#   that exact version's .deb (apt's cache, else `apt-get download`, else a
#   repack of the installed files with dpkg-deb, so no network is needed) and
#   at the end installs it again with apt, which removes ours in the same step
#   (the packages depending on libnginx-mod-http-lua, nginx-extras and
#   lua-resty-core, are satisfied throughout by our Provides). Its
#   auto/manual mark is restored too.
# * apt must remove nothing but the C module: the install is simulated first
#   and refused otherwise.
# * nginx runs with the stock nginx.conf (its modules-enabled include, so our
#   package's symlink is what loads the module), copied to a temporary dir with
#   the pid file and logs moved there and the sites-enabled include (the
#   default site listens on port 80 on every address) replaced by one server
#   on a free 127.0.0.1 port. /etc/nginx is not written to except by the
#   package's own maintainer scripts (the modules-enabled symlink).
# * A trap stops that nginx (QUIT, then KILL) and restores the packages on any
#   exit; the end compares `dpkg-query` state and apt's manual marks with
#   the start and fails when they differ.
# * One run per machine at a time (a lock in /run/lock); while the C module is
#   away it also holds the lock of the lua-nginx-module comparison suite
#   (/work/shared/upstream-suite, lock in $UPSTREAM_DIR, default
#   /tmp/upstream) when that exists, so a comparison run never sees the C
#   module missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
apt_get() {
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 "$@"
}
say() { echo "package-test: $*" >&2; }

deb=$(bash scripts/package.sh | tail -n 1)
name=$(dpkg-deb -f "$deb" Package)
c_pkg=libnginx-mod-http-lua
arch=$(dpkg --print-architecture)

exec 8>/run/lock/ngx-lua-rs-package-test.lock
flock -w 900 8 || { say "another package test holds /run/lock/ngx-lua-rs-package-test.lock"; exit 1; }
upstream_lock="${UPSTREAM_DIR:-/tmp/upstream}/.run.lock"
if [ -e "$upstream_lock" ]; then
    exec 9>>"$upstream_lock"
    if ! flock -n 9; then
        say "waiting (at most 30 min) for the running upstream comparison suite ($upstream_lock)"
        flock -w 1800 9 || { say "the upstream comparison suite still runs; not removing the C module under it"; exit 1; }
    fi
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
machine_state() {
    dpkg-query -W -f='${Package} ${Version} ${Status}\n' | grep -v ' not-installed$' | sort
    echo "manual:"; apt-mark showmanual | sort
    echo "modules-enabled:"; ls -l /etc/nginx/modules-enabled/ | awk 'NR > 1 { print $9, $10, $11 }'
}

if installed "$name" || dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q config-files; then
    say "$name is already on this machine; remove it first (dpkg --purge $name) so the test can restore a known state"
    exit 1
fi

tmp=$(mktemp -d)
chmod 0755 "$tmp"
before="$tmp/state.before"
machine_state >"$before"

c_version=""
c_auto=false
if installed "$c_pkg"; then
    c_version=$(dpkg-query -W -f='${Version}' "$c_pkg")
    apt-mark showauto | grep -qx "$c_pkg" && c_auto=true
fi

# The C module's .deb of the installed version, to put it back afterwards.
repack_installed() {
    local pkg=$1 dir=$tmp/repack info f
    rm -rf "$dir"; mkdir -p "$dir/DEBIAN"
    dpkg-query -L "$pkg" | while IFS= read -r f; do
        if [ -f "$f" ] || [ -L "$f" ]; then mkdir -p "$dir$(dirname "$f")" && cp -a "$f" "$dir$f"; fi
    done
    dpkg-query -s "$pkg" | awk '
        /^(Status|Config-Version):/ { next }
        /^Conffiles:/ { skip = 1; next }
        skip && /^ / { next }
        { skip = 0; print }' >"$dir/DEBIAN/control"
    for info in "/var/lib/dpkg/info/$pkg" "/var/lib/dpkg/info/$pkg:$arch"; do
        for f in preinst postinst prerm postrm conffiles triggers md5sums; do
            [ -f "$info.$f" ] && cp "$info.$f" "$dir/DEBIAN/$f"
        done
    done
    dpkg-deb --root-owner-group --build "$dir" "$tmp/c-module.deb" >/dev/null
}
c_deb=""
if [ -n "$c_version" ]; then
    cached="/var/cache/apt/archives/${c_pkg}_${c_version/:/%3a}_$arch.deb"
    if [ "${PACKAGE_TEST_REPACK:-0}" = 1 ]; then
        repack_installed "$c_pkg"
    elif [ -f "$cached" ]; then
        cp "$cached" "$tmp/c-module.deb"
    elif ! (cd "$tmp" && timeout 60 apt-get download -q "$c_pkg=$c_version" >/dev/null 2>&1 &&
            mv "$tmp/${c_pkg}_"*.deb "$tmp/c-module.deb"); then
        say "cannot download $c_pkg $c_version; repacking the installed files"
        repack_installed "$c_pkg"
    fi
    c_deb="$tmp/c-module.deb"
    [ "$(dpkg-deb -f "$c_deb" Version)" = "$c_version" ] ||
        { say "no .deb of $c_pkg $c_version to restore it from; not touching the machine"; exit 1; }
    say "$c_pkg $c_version is installed; it will be removed by $name and reinstalled from $c_deb"
fi

nginx_pid=""
restore() {
    local status=$?
    set +e
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        local workers
        workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
        $sudo_cmd kill -QUIT "$nginx_pid"
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$nginx_pid" 2>/dev/null; then
            say "nginx did not quit in 5 s; killing its master and workers ($nginx_pid $workers)"
            # shellcheck disable=SC2086
            $sudo_cmd kill -KILL "$nginx_pid" $workers
        fi
    fi
    if installed "$name" || dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q config-files; then
        if [ -n "$c_deb" ] && ! installed "$c_pkg"; then
            say "reinstalling $c_pkg $c_version (apt removes $name for it)"
            apt_get install -y -q "$c_deb" >&2 || status=1
            $c_auto && $sudo_cmd apt-mark auto "$c_pkg" >/dev/null
        fi
        $sudo_cmd dpkg --purge "$name" >&2 || status=1
    fi
    machine_state >"$tmp/state.after"
    if ! diff -u "$before" "$tmp/state.after" >&2; then
        say "FAILED: the machine's packages differ from before the test (diff above)"
        status=1
    fi
    rm -rf "$tmp"
    exit $status
}
trap restore EXIT
trap 'exit 1' INT TERM HUP

# apt may remove the C module and nothing else
sim=$(apt_get -s install "$deb")
removals=$(awk '$1 == "Remv" { print $2 }' <<<"$sim" | sort | tr '\n' ' ')
if [ -n "$removals" ] && [ "$removals" != "$c_pkg " ]; then
    say "apt would remove more than $c_pkg: $removals; refusing"
    echo "$sim" >&2
    exit 1
fi

say "apt-get install $deb"
apt_get install -y -q "$deb" >&2
installed "$name" || { say "FAILED: $name is not installed after apt-get install"; exit 1; }
link=/etc/nginx/modules-enabled/50-mod-http-lua.conf
[ "$(readlink "$link")" = /usr/share/nginx/modules-available/mod-http-lua.conf ] ||
    { say "FAILED: $link is not the package's symlink"; ls -l /etc/nginx/modules-enabled >&2; exit 1; }
grep -q "ngx_http_lua_rs_module.so" /usr/share/nginx/modules-available/mod-http-lua.conf ||
    { say "FAILED: modules-available/mod-http-lua.conf does not load our module"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="lua-rs-$$-$RANDOM"
cat >"$tmp/server.conf" <<CONF
server {
    listen 127.0.0.1:$port;
    location = /lua {
        content_by_lua_block {
            ngx.say("$token ", ngx.config.subsystem, " ", 6 * 7, " ", ngx.var.request_method)
        }
    }
}
CONF
sed -e "s|^\\(\\s*\\)pid .*|\\1pid $tmp/nginx.pid;|" \
    -e "s|^\\(\\s*\\)error_log .*|\\1error_log $tmp/error.log;|" \
    -e "s|^\\(\\s*\\)access_log .*|\\1access_log $tmp/access.log;|" \
    -e "s|^\\(\\s*\\)include /etc/nginx/sites-enabled/\\*;|\\1include $tmp/server.conf;|" \
    /etc/nginx/nginx.conf >"$tmp/nginx.conf"
grep -q "include $tmp/server.conf;" "$tmp/nginx.conf" ||
    { say "FAILED: the stock nginx.conf has no 'include /etc/nginx/sites-enabled/*;' to replace"; exit 1; }
grep -q "^\\s*include /etc/nginx/modules-enabled/\\*.conf;" "$tmp/nginx.conf" ||
    { say "FAILED: the stock nginx.conf does not include modules-enabled"; exit 1; }

$sudo_cmd /usr/sbin/nginx -t -q -c "$tmp/nginx.conf" ||
    { say "FAILED: nginx -t"; cat "$tmp/error.log" >&2 2>/dev/null; exit 1; }
$sudo_cmd /usr/sbin/nginx -c "$tmp/nginx.conf"
for _ in $(seq 50); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$tmp/nginx.pid" 2>/dev/null || true)
[ -n "$nginx_pid" ] || { say "FAILED: nginx did not start"; cat "$tmp/error.log" >&2; exit 1; }

body=$(python3 - "$port" <<'PY'
import sys, time, urllib.request
url = "http://127.0.0.1:%s/lua" % sys.argv[1]
for attempt in range(50):
    try:
        print(urllib.request.urlopen(url, timeout=5).read().decode(), end="")
        break
    except OSError as e:
        err = e
        time.sleep(0.1)
else:
    sys.exit("request failed: %s" % err)
PY
) || { say "FAILED: no response"; cat "$tmp/error.log" >&2; exit 1; }
expected="$token http 42 GET"
if [ "$body" != "$expected" ]; then
    say "FAILED: expected '$expected', got '$body'"
    cat "$tmp/error.log" >&2
    exit 1
fi
if grep -E '\[(alert|emerg|crit)\]|exited on signal' "$tmp/error.log" >&2; then
    say "FAILED: error.log has the lines above"
    exit 1
fi
say "ok: /usr/sbin/nginx with the stock nginx.conf and $name served '$body'"
# restore() stops nginx, purges the package and puts the C module back
