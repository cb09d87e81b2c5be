# leadscore worker: `docker run` it beside your CRM; state lives on the /data volume.

# Build stage: the wheel, with the scoring core and the state codec compiled by mypyc
# (setup.py: LEADSCORE_COMPILE=1; the core scores ~50% faster, a full rescore runs ~14% faster).
# The compiler stays in this stage.
FROM python:3.11-slim-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY connector ./connector
# connector/defaults and connector/demo_data are symlinks to these: the wheel ships the default
# model, title rules, free-mail overrides and the demo firmographics
COPY config ./config
COPY fixtures/firmographics.csv ./fixtures/
# mypyc type-checks what it compiles: the runtime dependencies (`.`) and stubs come first
RUN pip install --no-cache-dir 'mypy>=1.10,<2' 'setuptools>=70.1' 'wheel>=0.42' \
        'types-PyYAML>=6' 'types-requests>=2.31' . \
    && LEADSCORE_COMPILE=1 python -m pip wheel --no-build-isolation --no-deps -w /wheels .

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LEADSCORE_STATE_PATH=/data/leadscore.db \
    LEADSCORE_HTTP_HOST=0.0.0.0 \
    LEADSCORE_HTTP_PORT=9464 \
    LEADSCORE_LOG_JSON=true

# the default model and firmographics are inside the wheel; for your own model,
# `leadscore init-model /data/model` and set LEADSCORE_MODEL_PATH=/data/model/model.yaml
WORKDIR /app
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && groupadd --system --gid 10001 leadscore \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin leadscore \
    && mkdir -p /data \
    && chown 10001:10001 /data

USER 10001:10001
VOLUME ["/data"]
EXPOSE 9464
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LEADSCORE_HTTP_PORT', '9464'), timeout=4).status == 200 else 1)"]
ENTRYPOINT ["leadscore"]
CMD ["run"]
