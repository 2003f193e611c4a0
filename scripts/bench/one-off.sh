# A workload set for scripts/bench-instructions.sh (BENCH_WORKLOADS_FILE):
# handlers without loops that call one API once, as most request handlers
# do. LuaJIT does not compile such a handler (it runs once per request), so
# this measures what an API costs when called from interpreted code: a
# classic C function, or a Lua face over the FFI, which pays off only when
# the face itself compiles as a trace of its own (see docs/bench.md).
# Each workload is `base` plus its call; subtract base.
WORKLOADS=(base var ctx status header get_headers get_uri_args get_method set_header re sub md5 now)
REFERENCES=()
workload_files() { mkdir -p "$1/html"; printf 'ok\n' >"$1/html/ok.txt"; }
workload_conf() {
    local target=$1 dir=$2 port=$3
    local say='ngx.say(x and "ok" or "no")'
    cat <<CONF
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
    uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
    server {
        listen 127.0.0.1:$port;
        location /base { content_by_lua_block { local x = true $say } }
        location /var { content_by_lua_block { local x = ngx.var.uri $say } }
        location /ctx { content_by_lua_block { ngx.ctx.k = 1 local x = ngx.ctx.k $say } }
        location /status { content_by_lua_block { ngx.status = 200 local x = ngx.status $say } }
        location /header { content_by_lua_block { ngx.header["X-K"] = "v" local x = true $say } }
        location /get_headers { content_by_lua_block { local x = ngx.req.get_headers().host $say } }
        location /get_uri_args { content_by_lua_block { local x = ngx.req.get_uri_args().q $say } }
        location /get_method { content_by_lua_block { local x = ngx.req.get_method() $say } }
        location /set_header { content_by_lua_block { ngx.req.set_header("X-K", "v") local x = true $say } }
        location /re { content_by_lua_block { local x = ngx.re.match("/abc/def", [[^/(\\w+)]], "jo") $say } }
        location /sub { content_by_lua_block { local x = ngx.re.sub("/abc/def", [[^/(\\w+)]], "<\$1>", "jo") $say } }
        location /md5 { content_by_lua_block { local x = ngx.md5("/abc/def") $say } }
        location /now { content_by_lua_block { local x = ngx.now() $say } }
    }
CONF
}
workload_path() { echo "/$1?q=word&page=2"; }
workload_exists() { [ "$1" != plain ]; }
