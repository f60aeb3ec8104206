# tunegate images. Default target (the last stage, `runtime`): proxy, judge and controller with
# the `judge` and `analysis` extras (scorers; numpy, scipy, statsmodels, matplotlib), no torch.
# `docker build --target proxy .`: the proxy alone, with neither the analysis extra nor torch.
# `docker build --target models .` adds the `models` extra (torch CPU wheel, transformers, peft,
# sentence-transformers) for in-process models and the local judge.
# Dependencies are installed before the source is copied, so code changes reuse those layers.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 tunegate \
    && useradd --system --uid 10001 --gid tunegate --home-dir /var/lib/tunegate \
       --shell /usr/sbin/nologin tunegate \
    && install -d -o tunegate -g tunegate /var/lib/tunegate /etc/tunegate

# Runtime dependencies of the proxy install, read from pyproject.toml.
FROM base AS deps
WORKDIR /src
COPY pyproject.toml ./
RUN python -m venv /opt/venv \
    && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies']))" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt

# The `judge` and `analysis` extras on top: what the judge's scorers, its calibration, the
# controller and reports import.
FROM deps AS analysis-deps
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['optional-dependencies']['judge'] + p['optional-dependencies']['analysis']))" > /tmp/analysis.txt \
    && pip install --requirement /tmp/analysis.txt

# The `models` extra on top: torch from the CPU wheel index first, so nothing pulls CUDA.
FROM analysis-deps AS models-deps
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['optional-dependencies']['models']))" > /tmp/models.txt \
    && pip install --requirement /tmp/models.txt "torch==${TORCH_VERSION}"

# The source, installed without touching the dependencies above.
FROM deps AS build
COPY README.md ./
COPY tunegate ./tunegate
COPY proxy ./proxy
COPY judge ./judge
COPY analysis ./analysis
COPY cli ./cli
COPY demo ./demo
RUN pip install --no-deps .

FROM analysis-deps AS runtime-build
COPY --from=build /src /src
RUN pip install --no-deps .

FROM models-deps AS models-build
COPY --from=build /src /src
RUN pip install --no-deps .

# The proxy alone: `docker build --target proxy -t tunegate:VERSION-proxy .`
FROM base AS proxy
COPY --from=build /opt/venv /opt/venv
WORKDIR /var/lib/tunegate
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["tunegate"]
CMD ["serve", "--config", "/etc/tunegate/config.yaml"]

# In-process models: `docker build --target models -t tunegate:VERSION-models .`
FROM base AS models
ENV HF_HUB_OFFLINE=1 \
    HF_HOME=/var/lib/tunegate/huggingface
COPY --from=models-build /opt/venv /opt/venv
WORKDIR /var/lib/tunegate
USER 10001:10001
EXPOSE 8080 9090 9091
ENTRYPOINT ["tunegate"]
CMD ["serve", "--config", "/etc/tunegate/config.yaml"]

# Default target: every component, no torch.
FROM base AS runtime
ENV HF_HUB_OFFLINE=1
COPY --from=runtime-build /opt/venv /opt/venv
WORKDIR /var/lib/tunegate
USER 10001:10001
EXPOSE 8080 9090 9091
ENTRYPOINT ["tunegate"]
CMD ["serve", "--config", "/etc/tunegate/config.yaml"]
