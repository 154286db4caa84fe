# First image of the gateway. Runtime dependencies only, pinned by constraints.txt;
# runs as a non-root user; exec-form CMD so SIGTERM reaches the gateway process.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY actors ./actors
COPY gateway ./gateway
COPY config ./config
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --no-create-home gateway

USER gateway
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# Listening on 0.0.0.0 needs TWILIO_AUTH_TOKEN (and GATEWAY_PUBLIC_URL for the URL Twilio dials).
CMD ["gateway", "run", "--config", "/app/config/default.toml"]
