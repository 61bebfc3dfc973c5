# citizen-bot: `docker build -t citizen-bot .` then
#   docker run -p 8000:8000 -v citizen-bot-data:/app/data --env-file .env citizen-bot
# SQLite lives in /app/data (a volume); set DATABASE_URL for PostgreSQL instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app

# Dependencies first, pinned by the lock file: this layer is reused until they change.
COPY pyproject.toml requirements.lock README.md ./
COPY bot ./bot
COPY webhook ./webhook
RUN pip install -c requirements.lock . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin citizen \
    && mkdir -p /app/data \
    && chown citizen /app/data

# Content is data: flows and answers, read (and reloaded when edited) at run time.
COPY flows ./flows
COPY knowledge ./knowledge

USER citizen
VOLUME ["/app/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"

CMD ["citizen-bot", "serve"]
