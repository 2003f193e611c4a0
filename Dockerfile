# Debian bookworm's nginx with this module installed as a Debian package,
# serving nginx-conf/demo.conf on port 8080. It runs the project's own
# scripts: scripts/package.sh (which runs scripts/build.sh: apt packages,
# nginx sources configured as /usr/sbin/nginx -V says, cargo build, module
# signature check) and installs the .deb with apt, as the README's Install
# section says. CI does not build this image (no container engine on the CI
# machines); scripts/package-test.sh runs the same steps on the CI machine.
FROM debian:bookworm

RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl \
    && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH

WORKDIR /src
COPY . .
RUN deb=$(bash scripts/package.sh | tail -n 1) \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb" \
    && rm -rf /var/lib/apt/lists/*

RUN mkdir -p /demo/conf /demo/logs /demo/temp \
    && sed 's|__MODULE__|/usr/lib/nginx/modules/ngx_http_lua_rs_module.so|; s|listen 127.0.0.1:8080|listen 8080|' \
        nginx-conf/demo.conf > /demo/conf/nginx.conf

EXPOSE 8080
CMD ["nginx", "-p", "/demo/", "-c", "conf/nginx.conf", "-g", "daemon off;"]
