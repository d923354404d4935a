# coflows: Python host with the CLR (Mono), the JVM and V8 in one process.
#   podman build --isolation=chroot -t coflows .
#   docker run -p 8080:8080 -v $(pwd)/mnt:/app/mnt coflows
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    MONO_THREADS_SUSPEND=preemptive

RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      python3 python3-venv python3-dev ca-certificates curl \
      mono-devel default-jdk-headless nodejs npm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY runtime ./runtime
RUN python3 -m venv /app/.venv \
 && /app/.venv/bin/pip install -q --upgrade pip \
 && /app/.venv/bin/pip install -q -e ".[dask]"

# the web UI's libraries (cytoscape, dagre), pinned by package-lock.json; no browser-test tools
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

COPY bin ./bin
COPY mnt ./mnt
COPY coflows_config.json ./

ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8080
# Listen on all interfaces inside the container; the config's Host stays 127.0.0.1 for bare-metal use.
CMD ["coflows", "server", "coflows_config.json", "--host", "0.0.0.0"]
