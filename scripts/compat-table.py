#!/usr/bin/env python3
"""Checks README.md's compatibility table against what the built module has.

    scripts/compat-table.py SO            check; exit 1 on any disagreement
    scripts/compat-table.py SO --list     print the inventory it found

The inventory comes from the module itself, never from the README:
- directives: every `c"..."` literal under src/ that names a lua directive
  and that nginx knows once the module is loaded (`nginx -t` on a config
  that uses it); a directive whose setter says "is not implemented yet" is
  a stub;
- functions: a running nginx walks the `ngx` table and every `ngx.*`
  module that `require` can load; a function is a stub when it is one of
  the "not implemented yet" closures (made by the chunk
  `ngx_lua_not_implemented`, or by resty.core's `not_implemented`, a
  closure over the full name `full`).

Checks: every directive and function of the inventory is named in a row of
the README's Compatibility section (a function may be covered by the row of
its table or module, `require "ngx.re"`); a row that names a stub says ❌,
or names the stub in its text with ❌ or "not implemented yet", and a row
that names a working one does not say ❌; every `ngx.*` name and every
directive a row names exists in the module.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NGINX = os.environ.get("TEST_NGINX_BINARY", "/usr/sbin/nginx")

INVENTORY_LUA = r"""
local out, seen = {}, {}
local function is_stub(f, full)
    local info = debug.getinfo(f, "S")
    if info.source == "=ngx_lua_not_implemented" then return true end
    for i = 1, 8 do
        local name, value = debug.getupvalue(f, i)
        if name == nil then break end
        if name == "full" and value == full then return true end
    end
    return false
end
local function walk(t, prefix, depth)
    if seen[t] or depth > 3 then return end
    seen[t] = true
    local keys = {}
    for k in pairs(t) do
        if type(k) == "string" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
        local v = rawget(t, k)
        local name = prefix .. k
        if type(v) == "function" then
            out[#out + 1] = { name = name, stub = is_stub(v, name) }
        elseif type(v) == "table" and k:sub(1, 1) ~= "_" then
            walk(v, name .. ".", depth + 1)
        end
    end
end
walk(ngx, "ngx.", 1)
walk(ndk, "ndk.", 1)
local mods = {}
for name in pairs(package.preload) do
    if name:match("^ngx%.") then mods[#mods + 1] = name end
end
table.sort(mods)
for _, name in ipairs(mods) do
    local ok, m = pcall(require, name)
    if ok and type(m) == "table" then walk(m, name .. ".", 1) end
end
ngx.say(require("cjson").encode(out))
"""

RESOLVE_LUA = r"""
ngx.req.read_body()
local names = require("cjson").decode(ngx.req.get_body_data())
local function lookup(name)
    local parts = {}
    for p in name:gmatch("[^.]+") do parts[#parts + 1] = p end
    for k = #parts, 1, -1 do
        local base
        if k == 1 then
            base = _G[parts[1]]
        else
            local ok, m = pcall(require, table.concat(parts, ".", 1, k))
            base = ok and m or nil
        end
        if base ~= nil then
            local v = base
            for i = k + 1, #parts do
                if type(v) ~= "table" then return nil end
                v = v[parts[i]]
            end
            if v ~= nil then return v end
        end
    end
end
local missing = {}
for _, name in ipairs(names) do
    local ok, v = pcall(lookup, name)
    if not ok or v == nil then missing[#missing + 1] = name end
end
ngx.say(require("cjson").encode(missing))
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_conf(prefix, so, port, extra_http=""):
    os.makedirs(os.path.join(prefix, "conf"), exist_ok=True)
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    with open(os.path.join(prefix, "conf", "inventory.lua"), "w") as f:
        f.write(INVENTORY_LUA)
    with open(os.path.join(prefix, "conf", "resolve.lua"), "w") as f:
        f.write(RESOLVE_LUA)
    conf = f"""load_module {so};
daemon off; master_process off; worker_processes 1;
error_log logs/error.log warn; pid logs/nginx.pid;
events {{ worker_connections 16; }}
http {{
    access_log off;
    {extra_http}
    server {{
        listen 127.0.0.1:{port};
        location /inventory {{ content_by_lua_file conf/inventory.lua; }}
        location /resolve {{ content_by_lua_file conf/resolve.lua; }}
    }}
}}
"""
    with open(os.path.join(prefix, "conf", "nginx.conf"), "w") as f:
        f.write(conf)


def directive_verdict(prefix, so, name):
    """'unknown', 'stub' or 'known' for `name`, asked of nginx -t."""
    use = f"{name} {{ }}" if name.endswith("_block") else f"{name} x;"
    conf = f"""load_module {so};
error_log stderr; pid logs/t.pid;
events {{ worker_connections 16; }}
http {{ {use} }}
"""
    path = os.path.join(prefix, "conf", "t.conf")
    with open(path, "w") as f:
        f.write(conf)
    r = subprocess.run([NGINX, "-p", prefix + "/", "-c", "conf/t.conf", "-t", "-q"],
                       capture_output=True, text=True)
    err = r.stderr
    if "unknown directive" in err:
        return "unknown"
    if "is not implemented yet" in err:
        return "stub"
    return "known"


def directives(prefix, so):
    names = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "src")):
        for fn in files:
            if fn.endswith(".rs"):
                with open(os.path.join(dirpath, fn)) as f:
                    names.update(re.findall(r'c"([a-z0-9_]*lua[a-z0-9_]*)"', f.read()))
    out = {}
    for name in sorted(names):
        verdict = directive_verdict(prefix, so, name)
        if verdict != "unknown":
            out[name] = verdict == "stub"
    return out


class Server:
    """nginx with the module, answering /inventory and /resolve."""

    def __init__(self, prefix, so):
        port = free_port()
        write_conf(prefix, so, port, "lua_shared_dict compat_table 1m;")
        self.base = f"http://127.0.0.1:{port}"
        self.prefix = prefix
        self.proc = subprocess.Popen([NGINX, "-p", prefix + "/", "-c", "conf/nginx.conf"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(self, path, body=None):
        for _ in range(100):
            try:
                return json.loads(urllib.request.urlopen(self.base + path, data=body, timeout=5).read())
            except OSError:
                time.sleep(0.1)
        sys.exit("compat-table: nginx did not answer; see " + self.prefix + "/logs/error.log")

    def inventory(self):
        """{function name: is a stub}; names with a `_` part are internal."""
        return {e["name"]: e["stub"] for e in self.get("/inventory") if "._" not in e["name"]}

    def unresolved(self, names):
        return self.get("/resolve", json.dumps(names).encode())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def readme_rows():
    """(section, names, status, line) per table row of the Compatibility section."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    start = text.index("## Compatibility")
    end = text.find("\n## ", start + 1)
    rows, section = [], ""
    for line in text[start:end if end > 0 else len(text)].splitlines():
        if line.startswith("### "):
            section = line[4:]
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 2 or cells[1] == "status":
            continue
        status = "❌" if cells[1].startswith("❌") else "ok"
        rows.append((section, re.findall(r"`([^`]+)`", cells[0]), (status, cells[1]), line))
    return rows


def expand_directives(tokens, known):
    """`init_by_lua`, `_block` -> init_by_lua, init_by_lua_block;
    `lua_socket_connect_timeout`, `_send_timeout` -> lua_socket_send_timeout."""
    out, first = [], None
    for tok in tokens:
        if re.fullmatch(r"[a-z][a-z0-9_]*", tok) and "lua" in tok:
            first = tok
            out.append(tok)
        elif first and re.fullmatch(r"_[a-z0-9_]+", tok):
            cands = [first + tok] + [first[:i] + tok for i in range(len(first) - 1, 0, -1) if first[i] == "_"]
            out.append(next((c for c in cands if c in known), cands[0]))
    return out


def expand_api(tokens, funcs):
    """`ngx.req.get_method`, `set_method` -> ngx.req.set_method; after a
    table (`ngx.resp`), a bare name is one of its fields."""
    out, prefix = [], None
    for tok in tokens:
        module = re.fullmatch(r'require "((?:ngx|ndk)[a-z0-9_.]*)"', tok)
        if module:
            out.append(module.group(1))
            prefix = module.group(1)
        elif re.fullmatch(r"(ngx|ndk)(\.[a-z0-9_]+)+", tok):
            out.append(tok)
            prefix = tok.rsplit(".", 1)[0] if tok in funcs else tok
        elif prefix and re.fullmatch(r"[a-z][a-z0-9_]*", tok):
            out.append(prefix + "." + tok)
    return out


# Fields the table may name that exist only in some phases.
PHASE_ONLY = {"ngx.arg"}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    so = os.path.abspath(sys.argv[1])
    prefix = tempfile.mkdtemp(prefix="compat-table.")
    os.makedirs(os.path.join(prefix, "conf"))
    os.makedirs(os.path.join(prefix, "logs"))
    dirs = directives(prefix, so)
    server = Server(prefix, so)
    try:
        funcs = server.inventory()
        named = {}
        for section, tokens, status, line in readme_rows():
            names = expand_directives(tokens, dirs) if section == "Directives" else expand_api(tokens, funcs)
            for name in names:
                named.setdefault(name, []).append((status, line))
        api_names = sorted(n for n in named if n.startswith(("ngx.", "ndk.")) and n not in PHASE_ONLY)
        unresolved = server.unresolved(api_names)
    finally:
        server.stop()
    if "--list" in sys.argv:
        for name, stub in sorted(dirs.items()):
            print(f"directive {name} {'stub' if stub else 'works'}")
        for name, stub in sorted(funcs.items()):
            print(f"function {name} {'stub' if stub else 'works'}")
        return 0
    problems = []

    def rows_naming(name):
        """The rows that name `name`, or else the nearest table it is in."""
        while name:
            if name in named:
                return named[name]
            name = name.rpartition(".")[0]
        return None

    def check(kind, name, stub):
        rows_of = rows_naming(name) if kind == "function" else named.get(name)
        if rows_of is None:
            problems.append(f"{kind} {name} ({'stub' if stub else 'works'}) is in no row of the table")
            return
        for (status, cell), line in rows_of:
            short = name.rsplit(".", 1)[-1]
            # A partly working row lists what is missing in its text.
            said_missing = re.search(r"`" + re.escape(short) + r"\b", cell) and (
                "❌" in cell or "not implemented yet" in cell)
            if stub and status != "❌" and not said_missing:
                problems.append(f"{kind} {name} is not implemented but its row does not say ❌: {line[:90]}")
            if not stub and status == "❌":
                problems.append(f"{kind} {name} works but its row says ❌: {line[:90]}")

    for name, stub in sorted(dirs.items()):
        check("directive", name, stub)
    for name, stub in sorted(funcs.items()):
        check("function", name, stub)
    for name in unresolved:
        problems.append(f"the table names {name}, which the module does not have")
    for name in named:
        if not name.startswith(("ngx.", "ndk.")) and name not in dirs:
            problems.append(f"the table names directive {name}, which the module does not know")
    for p in problems:
        print("compat-table:", p)
    print(f"compat-table: {len(dirs)} directives, {len(funcs)} functions, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
