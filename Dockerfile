# hfserve container image.
#
#   docker build -t hfserve .                                   # CUDA image, torch from PyPI
#   docker build --build-arg BASE_IMAGE=debian:bookworm-slim \
#                --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t hfserve:cpu .
#
# Both stages start from the same BASE_IMAGE, so the virtual environment built in the first one runs
# on the same python3 in the second. Any Debian or Ubuntu image with python3 >= 3.11 works.
# Optional build inputs (a local torch wheel, an extra CA bundle) go in docker/extra/: see its README.
# Configuration is by HFSERVE_* environment variables only (README: "Environment variables").

ARG BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

# A PEM file in docker/extra/ whose certificates pip should trust (TLS-intercepting proxies).
ARG CA_BUNDLE=""
# A torch wheel in docker/extra/ to install instead of downloading TORCH_SPEC.
ARG TORCH_WHEEL=""
ARG TORCH_SPEC="torch==2.13.0"
# Empty: PyPI (CUDA builds on Linux). https://download.pytorch.org/whl/cpu for a CPU-only image.
ARG TORCH_INDEX_URL=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1

COPY docker/extra/ /tmp/extra/
SHELL ["/bin/sh", "-eu", "-c"]

# The extra CAs join the system store (and so PIP_CERT) of this stage only.
RUN if [ -n "${CA_BUNDLE}" ]; then \
      cp "/tmp/extra/${CA_BUNDLE}" /usr/local/share/ca-certificates/hfserve-build-extra.crt; \
      update-ca-certificates; \
    fi \
 && python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:${PATH}

# torch first (the largest layer, changes least), then the dependencies from pyproject.toml at the versions
# constraints.txt holds (what the suite passed with), then the app.
# The torch version is pinned by TORCH_SPEC (or by the wheel), which hadolint cannot see through.
# hadolint ignore=DL3013
RUN if [ -n "${TORCH_WHEEL}" ]; then \
      pip install "/tmp/extra/${TORCH_WHEEL}"; \
    elif [ -n "${TORCH_INDEX_URL}" ]; then \
      pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple "${TORCH_SPEC}"; \
    else \
      pip install "${TORCH_SPEC}"; \
    fi

WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt
COPY README.md ./
COPY app/ ./app/
RUN pip install --no-deps . \
 && python -c "import app.cli, torch; print('torch', torch.__version__)"

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

ARG DEBIAN_FRONTEND=noninteractive
# ffmpeg decodes audio and video input; tini is PID 1 (forwards signals, reaps the engine processes).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 tini ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 hfserve \
 && useradd --system --uid 10001 --gid hfserve --create-home --home-dir /home/hfserve hfserve \
 && mkdir -p /data \
 && chown hfserve:hfserve /data

COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /usr/local/lib/hfserve/healthcheck.py

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="hfserve" \
      org.opencontainers.image.description="OpenAI-compatible inference server for Hugging Face transformers models" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/hfserve/hfserve" \
      org.opencontainers.image.documentation="https://github.com/hfserve/hfserve#readme"

# The model cache lives on the volume, and so do stored responses (they survive restarts); the server listens
# on every interface inside the container.
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/home/hfserve \
    HF_HOME=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HFSERVE_HOST=0.0.0.0 \
    HFSERVE_PORT=8000 \
    HFSERVE_RESPONSES_STORE=sqlite:////data/hfserve/responses.sqlite3

VOLUME ["/data"]
EXPOSE 8000
WORKDIR /home/hfserve
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "/usr/local/lib/hfserve/healthcheck.py", "/health"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "hfserve"]
CMD ["serve"]
