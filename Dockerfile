# PiCloud in a container: the front door, a local Ray and the app hosts in one
# image. Postgres is external (PICLOUD_DATABASE_URL); see compose.yaml.
#   docker build -t picloud .
#   docker run -p 8080:8080 -p 8081:8081 -e PICLOUD_DATABASE_URL=... picloud
FROM python:3.11-slim

# gcc and the headers for the odd dependency without a wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 picloud
WORKDIR /app
COPY pyproject.toml README.md ./
COPY picloud ./picloud
COPY migrations ./migrations
RUN pip install --no-cache-dir . && rm -rf /app/picloud /app/migrations

USER picloud
ENV PICLOUD_DATA_DIR=/home/picloud/data \
    PICLOUD_HTTP_HOST=0.0.0.0 \
    PICLOUD_APPS_HOST=0.0.0.0 \
    PICLOUD_HTTP_PORT=8080 \
    PICLOUD_APPS_PORT=8081
VOLUME ["/home/picloud/data"]
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
CMD ["picloud", "serve"]
