# syntax=docker/dockerfile:1
# One image for both the web console (daphne, the default CMD) and the event
# relay (docker-compose.prod.yml overrides the command with `relay_events`).
FROM python:3.11-slim

ENV DJANGO_SETTINGS_MODULE=console.settings PYTHONUNBUFFERED=1
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged runtime user; /app is owned by it so collectstatic can write
# staticfiles/ and the default SQLite database can be created at runtime.
RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && install -d -o app -g app /app /app/data
WORKDIR /app

# Dependencies first so this layer is cached until requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=app:app . .

USER app

# The secret exists only for this one RUN step (a random one: outside DEBUG the settings refuse
# short or published keys); it is not baked into the image environment. The real
# DJANGO_SECRET_KEY comes from .env at runtime.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput

EXPOSE 8000

# Plain HTTP on 8000 is meant for a TLS proxy in front (docs/security.md): set
# DJANGO_SECURE_PROXY_SSL_HEADER and DJANGO_CSRF_TRUSTED_ORIGINS in .env, or DJANGO_HTTPS=false
# for a LAN install without TLS. daphne drops a WebSocket message over 64 KiB (the console refuses
# one over HSI_WS_MAX_MESSAGE_BYTES); no --proxy-headers: the client address comes from
# DJANGO_TRUSTED_PROXIES, never from a header anyone can send.

CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536", "console.asgi:application"]
