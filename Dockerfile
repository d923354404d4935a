# coflows: Python host with the CLR (Mono), the JVM and V8 in one process, served by its supervisor.
#
#   docker build -t coflows .      (here, without a registry: bin/image.sh, docs/container.md)
#   docker run -d -p 8080:8080 -v $PWD/mnt:/app/mnt coflows      (mnt/ writable by uid 1000)
#
# Nothing in this file is specific to one machine. An optional build secret `ca` (a CA bundle, e.g.
# an egress proxy's) is trusted by pip and npm during the build only; it is never stored in a layer.

# --- the web app's libraries (package.json "dependencies"; devDependencies are test tools) -------
FROM debian:bookworm-slim AS web
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nodejs npm ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf /root/.npm

# --- the image -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONO_THREADS_SUSPEND=preemptive \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

# System packages first (the slowest layer, changed least). mono-devel and the JDK stay: C# and Java
# are compiled at run time. libnewtonsoft-json5.0-cil is Json.NET 6.0.8, which C# code written for
# CoFlows uses (docs/compat-csharp.md). No Node.js: JavaScript runs in V8 (mini-racer), the web
# libraries are files.
# Not needed to compile or run (180 MB): the JDK's jmods (for jlink only) and Mono's reference
# assemblies per framework version (*-api, for msbuild; the engine compiles against 4.5 and the GAC).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      python3 python3-venv ca-certificates mono-devel libnewtonsoft-json5.0-cil default-jdk-headless >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rm -rf /usr/lib/jvm/*/jmods /usr/lib/mono/*-api \
 && useradd --uid 1000 --user-group --create-home --shell /bin/bash coflows

# Python dependencies from pyproject.toml alone (with the dask and jupyter extras), before the source,
# so that editing the source does not reinstall them.
WORKDIR /app
COPY pyproject.toml ./
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /app/.venv \
 && /app/.venv/bin/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; x = p.get("optional-dependencies", {}); print("\n".join(p["dependencies"] + [d for e in ("dask", "jupyter") for d in x.get(e, [])]))' > /tmp/requirements.txt \
 && /app/.venv/bin/pip install --progress-bar off -r /tmp/requirements.txt \
 && rm -f /tmp/requirements.txt

COPY --from=web /app/node_modules ./node_modules

# The source: the package itself (no dependencies: they are above), then the example workspace and config.
COPY README.md ./
COPY runtime ./runtime
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && /app/.venv/bin/pip install --progress-bar off --no-deps ./ \
 && rm -rf /app/runtime /app/build \
 && /app/.venv/bin/coflows --help >/dev/null
COPY coflows_config.json ./
# /app/mnt is where a workspace is mounted (-v HOST_DIR:/app/mnt); the server writes its database and
# .coflows/ (generated admin key, compiled C#) there, so it belongs to the user the server runs as.
COPY --chown=1000:1000 mnt ./mnt

ENV PATH=/app/.venv/bin:$PATH \
    COFLOWS_NODE_MODULES=/app/node_modules \
    HOME=/home/coflows
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["/app/.venv/bin/python", "-m", "coflows.healthcheck", "8080"]
# The supervisor (coflows server): it restarts the server process when it dies. Arguments after the
# image name replace CMD: `docker run … coflows user add me@example.com --admin`.
ENTRYPOINT ["coflows"]
CMD ["server", "coflows_config.json", "--host", "0.0.0.0"]
