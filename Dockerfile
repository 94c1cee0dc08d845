# syncd in a container: the daemon (`syncd run`) as an unprivileged user.
#
#   docker build -t syncd .
#   docker run -d --name syncd -p 8765:8765 \
#     -v syncd-state:/var/lib/syncd \
#     -v "$PWD/config.toml:/etc/syncd/config.toml:ro" \
#     --env-file secrets.env syncd
#
# The config must listen on all interfaces inside the container (listen = "0.0.0.0:8765")
# and keep its state in the volume ([store] url = "sqlite:///syncd.db", relative to
# /var/lib/syncd). Secrets come from the environment (--env-file) or from mounted files
# named by *_file keys (Docker/Kubernetes secrets under /run/secrets). See README.md.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
# Only pip, from the package index; nothing else is fetched while building.
RUN python -m venv /opt/syncd \
 && /opt/syncd/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 syncd \
 && useradd --system --uid 10001 --gid syncd --home-dir /var/lib/syncd \
      --shell /usr/sbin/nologin syncd \
 && mkdir -p /var/lib/syncd /etc/syncd \
 && chown syncd:syncd /var/lib/syncd \
 && chmod 0700 /var/lib/syncd
COPY --from=build /opt/syncd /opt/syncd
ENV PATH=/opt/syncd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SYNCD_CONFIG=/etc/syncd/config.toml \
    SYNCD_HEALTHZ=http://127.0.0.1:8765/healthz
WORKDIR /var/lib/syncd
VOLUME ["/var/lib/syncd"]
EXPOSE 8765
USER 10001:10001
# 200 from /healthz: the scheduler runs and no sync keeps failing. Plain Python, no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SYNCD_HEALTHZ'], timeout=4)"]
# SIGTERM (docker stop) stops syncd cleanly within ten seconds, inside Docker's default grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["syncd"]
CMD ["run"]
