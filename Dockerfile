# accesswatch: the worker image (deploy/compose.yaml builds it; deploy/k8s runs it).
#
#   docker build -t accesswatch .
#   docker run --rm accesswatch --version
#   docker run ... accesswatch                      # = accesswatch worker
#
# Settings come from the environment (ACCESSWATCH_*) or a mounted file
# (ACCESSWATCH_CONFIG=/etc/accesswatch/accesswatch.toml); secrets from mounted files.
# Two stages: the build tools and pip's cache stay out of the final image.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY detectors detectors
COPY streams streams
# the simulator and the local process helpers: `accesswatch simulate`, `evaluate` and `demo`
COPY simulation simulation
COPY local local
RUN pip install --no-cache-dir --disable-pip-version-check --prefix=/install \
        '.[rocksdb,maxmind]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ACCESSWATCH_DATA_DIR=/data
COPY --from=build /install /usr/local
# a fixed non-root uid (the k8s manifests' runAsUser); /data for the RocksDB state
RUN useradd --system --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin accesswatch \
    && mkdir /data && chown 10001:0 /data && chmod 0770 /data
USER 10001:0
WORKDIR /data
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "streams.httpauth", "probe", "http://127.0.0.1:6066/healthz"]
ENTRYPOINT ["accesswatch"]
CMD ["worker"]
