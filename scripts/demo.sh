#!/usr/bin/env bash
# Build the module and run nginx with it on nginx-conf/demo.conf, at
# http://127.0.0.1:8080/ . Stop it with: scripts/demo.sh stop
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="$root/demo"

stop() {
    if [ -f "$prefix/logs/nginx.pid" ]; then
        /usr/sbin/nginx -p "$prefix/" -c conf/nginx.conf -s quit 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$prefix/logs/nginx.pid" ] || break; sleep 0.1; done
    fi
}

if [ "${1:-}" = "stop" ]; then
    stop
    echo "demo stopped"
    exit 0
fi

so=$(bash "$root/scripts/build.sh" | tail -n 1)
# A reload would keep the old .so mapped (dlopen returns the loaded one):
# always stop and start.
stop
mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/temp"
sed "s|__MODULE__|$so|" "$root/nginx-conf/demo.conf" > "$prefix/conf/nginx.conf"
/usr/sbin/nginx -p "$prefix/" -c conf/nginx.conf -t
/usr/sbin/nginx -p "$prefix/" -c conf/nginx.conf
echo "nginx with ngx_http_lua_module is running on http://127.0.0.1:8080/ (logs in $prefix/logs)"
echo "try: curl 'http://127.0.0.1:8080/hello?name=you'"
echo "stop it with: scripts/demo.sh stop"
