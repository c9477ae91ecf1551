# One image for every service; compose picks the service by its command.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# dependencies first: this layer is rebuilt only when the lock changes
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN /opt/venv/bin/pip install -r /tmp/requirements-runtime.lock
COPY . /src
RUN /opt/venv/bin/pip install --no-deps /src

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER app
WORKDIR /home/app
STOPSIGNAL SIGTERM
EXPOSE 8000 8001 8002 8003 8004
CMD ["python", "-m", "orders_service.main"]
