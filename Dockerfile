# The connector in a container. Without DATABASE_URL it runs its embedded PostgreSQL under /data (mount a volume);
# in production point DATABASE_URL at a managed PostgreSQL and run as many replicas as you like.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data
# Logs as JSON lines on stderr (what log collectors parse), even under `docker run -t`; LOG_FORMAT=text to read.
ENV LOG_FORMAT=json

WORKDIR /srv
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, so the app finds migrations/ beside it.
RUN pip install -e . && useradd --system --create-home connector && mkdir -p /data && chown connector /data

USER connector
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live')"
CMD ["oms-connector", "serve", "--host", "0.0.0.0", "--port", "8000"]
