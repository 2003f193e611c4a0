#!/usr/bin/env bash
# TLS handshakes per second: a certificate set by ssl_certificate_by_lua
# (DER certificate and key read from a shared dict on every handshake)
# against the same certificate as a static ssl_certificate, on the same
# nginx (two servers, one worker). Full handshakes only (no session reuse),
# TLS 1.2 with ECDHE and the P-256 key of t/cert/dyn.*, measured by
# `openssl s_time -new` (the client's own crypto included), the two servers
# alternately so machine noise hits both. When Debian's C module is
# installed (libnginx-mod-http-lua, for the comparison only), the same
# configuration runs on it too.
#
#   scripts/bench-ssl-cert.sh [SECONDS] [ROUNDS]    (default 5 s, 3 rounds)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
rounds=${2:-3}
so=$(bash "$root/scripts/build.sh" | tail -n 1)
cert="$root/t/cert"

dir=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

free_port() {  # a port nothing listens on
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

start_nginx() {  # name, load_module lines; sets pid, static, dynamic
    local name=$1 load=$2 d="$dir/$1" subject
    static=$(free_port)
    dynamic=$(free_port)
    while [ "$dynamic" = "$static" ]; do dynamic=$(free_port); done
    mkdir -p "$d/conf" "$d/logs"
    cat > "$d/conf/nginx.conf" <<CONF
$load
daemon off; master_process off; worker_processes 1;
error_log logs/error.log warn; pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/cb; proxy_temp_path $d/px; fastcgi_temp_path $d/fc;
    uwsgi_temp_path $d/uw; scgi_temp_path $d/sc;
    lua_shared_dict certs 1m;
    ssl_protocols TLSv1.2;
    ssl_session_cache off;
    ssl_session_tickets off;
    init_by_lua_block {
        local ssl = require "ngx.ssl"
        local function slurp(p)
            local f = assert(io.open(p)) local s = f:read("*a") f:close() return s
        end
        ngx.shared.certs:set("cert", assert(ssl.cert_pem_to_der(slurp("$cert/dyn.crt"))))
        ngx.shared.certs:set("key", assert(ssl.priv_key_pem_to_der(slurp("$cert/dyn.key"))))
    }
    server {
        listen 127.0.0.1:$static ssl;
        ssl_certificate $cert/dyn.crt;
        ssl_certificate_key $cert/dyn.key;
        location / { return 200 "static"; }
    }
    server {
        listen 127.0.0.1:$dynamic ssl;
        ssl_certificate $cert/test.crt;
        ssl_certificate_key $cert/test.key;
        ssl_certificate_by_lua_block {
            local ssl = require "ngx.ssl"
            local certs = ngx.shared.certs
            ssl.clear_certs()
            assert(ssl.set_der_cert(certs:get("cert")))
            assert(ssl.set_der_priv_key(certs:get("key")))
        }
        location / { return 200 "dynamic"; }
    }
}
CONF
    /usr/sbin/nginx -p "$d/" -c conf/nginx.conf -e logs/error.log &
    pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$dynamic") 2>/dev/null && break
        sleep 0.1
    done
    # The Lua server must really hand out dyn.test's certificate.
    subject=$(openssl s_client -connect "127.0.0.1:$dynamic" -servername dyn.test </dev/null 2>/dev/null \
              | openssl x509 -noout -subject 2>/dev/null || true)
    case "$subject" in
        *dyn.test*) ;;
        *) echo "bench-ssl-cert: $name: the Lua server did not serve dyn.test's certificate ($subject)" >&2
           tail -5 "$d/logs/error.log" >&2; exit 1 ;;
    esac
}

stop_nginx() {  # name
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    if grep -q '\[error\]\|\[alert\]\|\[crit\]' "$dir/$1/logs/error.log"; then
        echo "bench-ssl-cert: $1: errors in error.log:" >&2
        grep '\[error\]\|\[alert\]\|\[crit\]' "$dir/$1/logs/error.log" | head -5 >&2
        exit 1
    fi
}

rate() {  # port -> handshakes per second
    openssl s_time -connect "127.0.0.1:$1" -new -time "$secs" 2>/dev/null \
        | awk '/connections in .* real seconds/ { n = $1; for (i = 1; i <= NF; i++) if ($i == "in") t = $(i + 1) }
               END { if (t > 0) printf "%.1f", n / t; else print 0 }'
}

measure() {  # name, load_module lines
    local name=$1 s_total=0 d_total=0 s d r
    start_nginx "$name" "$2"
    for r in $(seq "$rounds"); do
        s=$(rate "$static")
        d=$(rate "$dynamic")
        echo "$name round $r: static ssl_certificate $s handshakes/s, ssl_certificate_by_lua $d handshakes/s"
        s_total=$(awk -v a="$s_total" -v b="$s" 'BEGIN { print a + b }')
        d_total=$(awk -v a="$d_total" -v b="$d" 'BEGIN { print a + b }')
    done
    awk -v m="$name" -v s="$s_total" -v d="$d_total" -v n="$rounds" 'BEGIN {
        printf "%s mean: static %.1f/s, ssl_certificate_by_lua %.1f/s, ratio %.2f\n", m, s / n, d / n, (s > 0 ? d / s : 0)
    }'
    stop_nginx "$name"
}

measure ours "load_module $so;"
c_mod=/usr/lib/nginx/modules/ngx_http_lua_module.so
ndk=/usr/lib/nginx/modules/ndk_http_module.so
if [ -f "$c_mod" ] && [ -f "$ndk" ] && [ -f /usr/share/lua/5.1/ngx/ssl.lua ]; then
    measure c-module "load_module $ndk; load_module $c_mod;"
fi
