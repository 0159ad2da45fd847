FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY channels channels
COPY routing routing
COPY storage storage
# Installed as root, run as an unprivileged user whose home (/data) holds anything written
# at run time (the default SQLite file, when no RALLYPOINT_DATABASE_URL is given).
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --create-home --home-dir /data rallypoint \
    && install -d -o rallypoint -g rallypoint /data/spool
ENV RALLYPOINT_HOST=0.0.0.0
USER rallypoint
WORKDIR /data
EXPOSE 8000
# `serve` answers /healthz; the image has no curl, so Python asks. Containers that run
# `worker` or `migrate` serve no HTTP and turn this off (docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('RALLYPOINT_PORT') or '8000'), timeout=4)"]
CMD ["rallypoint", "serve"]
