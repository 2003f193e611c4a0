# Sourced by the bench and load scripts: `free_port` prints a loopback port
# nothing listens on, below the ephemeral range (so a client's own ports do
# not take it meanwhile).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
