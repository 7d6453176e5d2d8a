# syntax=docker/dockerfile:1
# streamal: a small, non-root image for `streamal serve` (and produce/oracle/check).

# ---- build: a wheel and its dependencies in a virtual environment ----------
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY streamal ./streamal
RUN /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

# ---- runtime: the virtual environment only, as an unprivileged user -------
FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STREAMAL_STATE_DIR=/var/lib/streamal \
    STREAMAL_METRICS_PORT=9400
RUN groupadd --system --gid 10001 streamal \
 && useradd --system --uid 10001 --gid streamal --home-dir /var/lib/streamal --shell /usr/sbin/nologin streamal \
 && mkdir -p /var/lib/streamal && chown streamal:streamal /var/lib/streamal
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/streamal
VOLUME ["/var/lib/streamal"]
EXPOSE 9400
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STREAMAL_METRICS_PORT', '9400'), timeout=2)"]
ENTRYPOINT ["streamal"]
CMD ["serve", "--json-logs"]
