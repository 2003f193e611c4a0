#!/usr/bin/env bash
# Compare the module signature compiled into a module .so with an nginx
# binary's (NGX_MODULE_SIGNATURE: "8,4,8,0011..."; nginx refuses at
# load_module a module whose signature differs from its own).
#
#   scripts/module-signature.sh MODULE.so NGINX
#
# Exits 0 when they are equal, 1 (printing both) when they differ or one has
# none.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 MODULE.so NGINX" >&2; exit 2; }
sig_of() { strings -a "$1" | grep -E '^[0-9]+,[0-9]+,[0-9]+,[01]{30,}$' | head -1 || true; }
so_sig=$(sig_of "$1")
nginx_sig=$(sig_of "$2")
if [ -z "$so_sig" ] || [ "$so_sig" != "$nginx_sig" ]; then
    echo "module signature mismatch: $1 cannot be loaded by $2" >&2
    echo "  module: ${so_sig:-<none found>}" >&2
    echo "  nginx:  ${nginx_sig:-<none found>}" >&2
    exit 1
fi
