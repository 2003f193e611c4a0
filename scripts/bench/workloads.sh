# Workloads shared by scripts/bench.sh and scripts/bench-instructions.sh:
# sourced, it defines WORKLOADS, REFERENCES and `workload_conf TARGET DIR
# PORT UPORT`, which prints the `http {}` body of nginx.conf for a target
# (ours, c-module: the same Lua code; plain, echo: nginx's own equivalent
# where one exists). Each workload is a location named after it; the client
# checks that every answer is a 200 whose body ends with "ok" or is the file.
#
#   hello    ngx.say("hello")                                (plain: return 200;
#            echo: the echo module's `echo hello`, a content handler whose
#            response is chunked as ngx.say's is; gif: nginx's empty_gif,
#            the least a content handler does: a fixed body from memory
#            with a Content-Length)
#   mix      ngx.var x5, get_headers, get_uri_args, ngx.ctx set in rewrite and
#            read in content, 3 ngx.header sets, ngx.re.match "jo", ngx.md5,
#            ngx.now, a 200-byte say
#   shdict   10 set, 10 get, 1 incr on a shared dict
#   proxy    an HTTP/1.1 GET to a local upstream through a cosocket kept
#            alive, status line and headers parsed with ngx.re as HTTP client
#            libraries do                                    (plain: proxy_pass)
#   filter   body_filter_by_lua upper-casing a 64 KB file   (plain: the file)
#   threads  two light threads, each ngx.sleep(0), waited for

WORKLOADS=(hello mix shdict proxy filter threads)
# The targets without Lua that the scripts measure besides ours and the C
# module (a workload set without this line gets plain only).
REFERENCES=(plain echo gif)

workload_files() {  # DIR: the static files the workloads serve
    mkdir -p "$1/html"
    head -c 48600 /dev/urandom | base64 -w 99 >"$1/html/big.txt"  # about 64 KB
    printf 'ok\n' >"$1/html/ok.txt"
}

workload_conf() {
    local target=$1 dir=$2 port=$3 uport=$4
    cat <<CONF
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    upstream backend { server 127.0.0.1:$uport; keepalive 16; }
    server {
        listen 127.0.0.1:$uport;
        location / { root $dir/html; }
    }
CONF
    if [ "$target" = plain ] || [ "$target" = echo ] || [ "$target" = gif ]; then
        local hello='return 200 "hello\n";'
        [ "$target" = echo ] && hello='echo hello;'
        [ "$target" = gif ] && hello='empty_gif;'
        cat <<CONF
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
        location /hello { $hello }
        location /proxy {
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass http://backend/ok.txt;
        }
        location /filter { alias $dir/html/big.txt; }
    }
CONF
        return
    fi
    cat <<CONF
    lua_shared_dict bench 1m;
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
        location /hello { content_by_lua_block { ngx.say("hello") } }
        location /mix {
            rewrite_by_lua_block { ngx.ctx.user = "bench" }
            content_by_lua_block {
                local v = ngx.var
                local uri, host, args, method, addr = v.uri, v.host, v.args, v.request_method, v.remote_addr
                local h = ngx.req.get_headers()
                local a = ngx.req.get_uri_args()
                ngx.header["X-User"] = ngx.ctx.user
                ngx.header["X-Agent"] = h["user-agent"]
                ngx.header["Cache-Control"] = "no-store"
                local m = ngx.re.match(uri, [[^/(\\w+)]], "jo")
                local sum = ngx.md5(m[1] .. (a.q or "") .. host .. method .. addr .. args)
                ngx.say(string.rep("x", 160), sum, ngx.now() > 0 and "ok" or "")
            }
        }
        location /shdict {
            content_by_lua_block {
                local d = ngx.shared.bench
                for i = 1, 10 do d:set("key" .. i, i) end
                local s = 0
                for i = 1, 10 do s = s + d:get("key" .. i) end
                d:incr("hits", 1, 0)
                ngx.say(s, "ok")
            }
        }
        location /proxy {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(5000)
                assert(sock:connect("127.0.0.1", $uport))
                assert(sock:send("GET /ok.txt HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUser-Agent: bench\\r\\n\\r\\n"))
                local line = assert(sock:receive("*l"))
                local m = ngx.re.match(line, [[^HTTP/1\\.1 (\\d{3})]], "jo")
                local len
                while true do
                    local l = assert(sock:receive("*l"))
                    if l == "" then break end
                    local k, val = l:match("^([^:]+):%s*(.*)$")
                    if k and k:lower() == "content-length" then len = tonumber(val) end
                end
                local body = assert(sock:receive(len))
                sock:setkeepalive(10000, 16)
                ngx.status = tonumber(m[1])
                ngx.print(body)
            }
        }
        location /filter {
            alias $dir/html/big.txt;
            header_filter_by_lua_block { ngx.header.content_length = nil }
            body_filter_by_lua_block { ngx.arg[1] = string.upper(ngx.arg[1]) }
        }
        location /threads {
            content_by_lua_block {
                local function work(n) ngx.sleep(0) return n end
                local a = ngx.thread.spawn(work, 1)
                local b = ngx.thread.spawn(work, 2)
                local _, x = ngx.thread.wait(a)
                local _, y = ngx.thread.wait(b)
                ngx.say(x + y, "ok")
            }
        }
    }
CONF
}

# The path each workload requests.
workload_path() {
    case "$1" in
        filter) echo "/filter" ;;
        mix) echo "/mix?q=word&page=2" ;;
        *) echo "/$1" ;;
    esac
}

# Whether TARGET has workload W (plain nginx has no Lua equivalents).
workload_exists() {
    case "$1" in
        plain) case "$2" in hello | proxy | filter) return 0 ;; *) return 1 ;; esac ;;
        echo | gif) [ "$2" = hello ] ;;
        *) return 0 ;;
    esac
}
