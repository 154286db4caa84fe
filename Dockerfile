# The gateway image: runtime dependencies only (pinned by constraints.txt, no compiler,
# no dev tools), a non-root user, a health check, and the gateway as PID 1 in exec form
# so SIGTERM reaches it and starts the graceful drain.
#
# On its embedded defaults the image serves the local agent on loopback (development
# mode), as `make run` does: it starts, passes its health check, and
# `docker exec <id> gateway simulate-call` places a call inside it. To take real calls:
#   docker run -p 8080:8080 -e GATEWAY_HOST=0.0.0.0 -e GATEWAY_PUBLIC_URL=https://gw.example.com \
#     -e TWILIO_AUTH_TOKEN=... -e GATEWAY_METRICS_TOKEN=... -e GATEWAY_AI_PROVIDER=openai \
#     -e OPENAI_API_KEY=... <image>
# and give `docker stop` the drain deadline: `docker stop -t 330` (GATEWAY_DRAIN_SECONDS + 30).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_PORT=8080 \
    GATEWAY_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY actors ./actors
COPY gateway ./gateway
COPY config ./config
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway

USER 10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['GATEWAY_PORT']}/healthz\", timeout=2)"]
CMD ["gateway", "run", "--config", "/app/config/default.toml"]
