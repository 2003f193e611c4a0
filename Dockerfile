# Builds ngx_http_lua_module.so for Debian bookworm's nginx and runs the demo.
# A plain transcription of scripts/build.sh and scripts/demo.sh; CI does not
# exercise it (no container engine on the CI machines).
FROM debian:bookworm

RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx nginx-dev pkg-config clang libclang-dev libluajit2-5.1-dev libpcre2-dev \
        libssl-dev zlib1g-dev make gcc binutils ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH

WORKDIR /src
COPY . .
RUN bash scripts/build.sh \
    && install -D -m 0644 target/release/libngx_http_lua_module.so \
        /usr/lib/nginx/modules/ngx_http_lua_module.so

RUN mkdir -p /demo/conf /demo/logs /demo/temp \
    && sed 's|__MODULE__|/usr/lib/nginx/modules/ngx_http_lua_module.so|; s|listen 127.0.0.1:8080|listen 8080|' \
        nginx-conf/demo.conf > /demo/conf/nginx.conf

EXPOSE 8080
CMD ["nginx", "-p", "/demo/", "-c", "conf/nginx.conf", "-g", "daemon off;"]
