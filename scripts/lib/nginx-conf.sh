# Sourced: `workload_nginx_conf LOAD MASTER TARGET DIR PORT UPORT` prints a
# one-worker nginx.conf around the `http {}` body of the sourced workload
# set's `workload_conf` (LOAD: the load_module lines; MASTER: on or off).
workload_nginx_conf() {
    local load=$1 master=$2
    shift 2
    printf '%s\n' "$load"
    echo "daemon off; master_process $master; worker_processes 1;"
    echo "error_log logs/error.log warn; pid logs/nginx.pid;"
    echo "events { worker_connections 256; }"
    echo "http {"
    workload_conf "$@"
    echo "}"
}
