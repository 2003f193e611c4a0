#!/usr/bin/env bash
# Print the directory of nginx 1.28's sources from the `nginx-src` crate:
# cargo downloads (and checksums) the version pinned in scripts/nginx-src/
# into its registry cache, then `cargo metadata` says where it unpacked it.
# No build happens; the crate's own dependencies are only downloaded.
set -euo pipefail
manifest="$(cd "$(dirname "$0")" && pwd)/nginx-src/Cargo.toml"
if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo fetch --locked --manifest-path "$manifest" >&2
cargo metadata --locked --offline --format-version 1 --manifest-path "$manifest" |
    python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "nginx-src":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "nginx"))
        break
else:
    sys.exit("nginx-src.sh: cargo metadata lists no nginx-src package")
'
