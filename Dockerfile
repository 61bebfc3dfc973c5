# citizen-bot: `docker build -t citizen-bot .` then
#   docker run -p 8000:8000 -v citizen-bot-data:/app/data --env-file .env citizen-bot
# SQLite lives in /app/data (a volume); set DATABASE_URL for PostgreSQL instead. A host
# folder mounted there instead of a volume must be writable by uid 10001.
# Pinned to Debian bookworm: the bare 3.11-slim tag moves to newer Debian releases.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app

# The dependencies first, pinned by the lock file: this layer is reused until
# pyproject.toml or requirements.lock changes, not rebuilt at every code edit.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && groupadd --gid 10001 citizen \
    && useradd --uid 10001 --gid citizen --home-dir /app --no-create-home --shell /usr/sbin/nologin citizen \
    && mkdir -p /app/data \
    && chown citizen:citizen /app/data

# The bot itself (its dependencies are in already); the build's leftovers go.
COPY README.md ./
COPY bot ./bot
COPY webhook ./webhook
RUN pip install --no-deps . \
    && rm -rf build citizen_bot.egg-info

# Content is data: flows and answers, read (and reloaded when edited) at run time.
COPY flows ./flows
COPY knowledge ./knowledge

USER citizen
VOLUME ["/app/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"

CMD ["citizen-bot", "serve"]
