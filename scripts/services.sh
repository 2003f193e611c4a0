#!/usr/bin/env bash
# Backends for the cosocket suites (t/3xx-*.t): redis-server and memcached on
# fixed local ports (the next free one if taken), installed with apt when
# missing (as are lua-resty-lrucache, which t/106 loads, and the lua-nginx-*
# libraries and lua-cjson of t/308). Source it: it starts
# them and a DNS stub (scripts/dns_stub.py), exports TEST_NGINX_REDIS_PORT,
# TEST_NGINX_MEMCACHED_PORT and TEST_NGINX_DNS_PORT, and stops them when the
# sourcing shell exits.
services_dir=$(mktemp -d /tmp/ngx_lua_services.XXXXXX)
export TEST_NGINX_REDIS_PORT=${TEST_NGINX_REDIS_PORT:-16379}
export TEST_NGINX_MEMCACHED_PORT=${TEST_NGINX_MEMCACHED_PORT:-11219}
export TEST_NGINX_DNS_PORT=${TEST_NGINX_DNS_PORT:-15353}

services_install() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v memcached >/dev/null || missing+=(memcached)
    command -v python3 >/dev/null || missing+=(python3)
    # t/106-resty-core-modules.t runs Debian's unmodified lua-resty-lrucache
    [ -f /usr/share/lua/5.1/resty/lrucache.lua ] || missing+=(lua-resty-lrucache)
    # t/308-debian-libs.t runs Debian's packaged OpenResty libraries as installed
    local pkg
    for pkg in redis memcached websocket dns string cookie; do
        dpkg-query -W -f='${Status}' "lua-nginx-$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("lua-nginx-$pkg")
    done
    dpkg-query -W -f='${Status}' lua-cjson 2>/dev/null | grep -q "install ok installed" || missing+=(lua-cjson)
    # t/108-ndk-set-var.t calls Debian's set-misc directives (it pulls in NDK)
    [ -f /usr/lib/nginx/modules/ngx_http_set_misc_module.so ] || missing+=(libnginx-mod-http-set-misc)
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
    # Debian starts its own instances on the default ports; ours use others.
}

services_stop() {
    local f pid i
    for f in "$services_dir"/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || continue
        # wait until it is gone, so a next run can bind the same port
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
    done
    rm -rf "$services_dir"
}

services_wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "services.sh: nothing listens on port $1" >&2
    return 1
}

# The first port from $1 on that nothing listens on (another run on this
# machine may hold the default one).
services_free_port() {
    local p=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
        p=$((p + 1))
    done
    echo "$p"
}

services_start() {
    services_install
    TEST_NGINX_REDIS_PORT=$(services_free_port "$TEST_NGINX_REDIS_PORT")
    TEST_NGINX_MEMCACHED_PORT=$(services_free_port "$TEST_NGINX_MEMCACHED_PORT")
    local user=()
    [ "$(id -u)" -eq 0 ] && user=(-u root)
    redis-server --port "$TEST_NGINX_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$services_dir/redis.pid" --dir "$services_dir" \
        --logfile "$services_dir/redis.log"
    memcached -d "${user[@]}" -l 127.0.0.1 -p "$TEST_NGINX_MEMCACHED_PORT" -U 0 -m 16 \
        -P "$services_dir/memcached.pid"
    # the DNS stub (UDP): a port no other run uses, checked with ss
    while ss -Hlun "sport = :$TEST_NGINX_DNS_PORT" 2>/dev/null | grep -q .; do
        TEST_NGINX_DNS_PORT=$((TEST_NGINX_DNS_PORT + 1))
    done
    python3 "$(dirname "${BASH_SOURCE[0]}")/dns_stub.py" "$TEST_NGINX_DNS_PORT" "$services_dir/dns.pid" &
    services_wait_port "$TEST_NGINX_REDIS_PORT"
    services_wait_port "$TEST_NGINX_MEMCACHED_PORT"
    local i
    for i in $(seq 1 100); do
        [ -s "$services_dir/dns.pid" ] && break
        sleep 0.05
    done
}

trap services_stop EXIT
services_start
