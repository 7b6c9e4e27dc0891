#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh machine, then runs them all.
#  - Python packages into .venv (pip, from PyPI)
#  - Prometheus, promtool, Alertmanager, amtool (Debian packages) — scripts/install-prometheus.sh
#  - Chromium (Debian package), for the entity page's browser test — scripts/install-chromium.sh
#  - Apache Kafka from Maven Central when java and mvn are present — deploy/kafka/apache-kafka.sh fetch
# Tiers that cannot be installed are skipped by pytest with the reason printed (-ra).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test,rocksdb]'

if [ -x scripts/install-prometheus.sh ]; then
  ./scripts/install-prometheus.sh || echo "test.sh: Prometheus/Alertmanager could not be installed; those tests will skip"
fi
if [ -x scripts/install-chromium.sh ]; then
  ./scripts/install-chromium.sh || echo "test.sh: chromium could not be installed; the entity page's browser test will skip"
fi
if ! { command -v java >/dev/null && command -v mvn >/dev/null; } && [ "$(id -u)" = 0 ] \
   && command -v apt-get >/dev/null; then
  echo "test.sh: installing Java 17 and Maven for the Apache Kafka tier"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      openjdk-17-jre-headless maven >/dev/null; } || echo "test.sh: could not install Java/Maven"
fi
if [ -x deploy/kafka/apache-kafka.sh ]; then
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    deploy/kafka/apache-kafka.sh fetch || echo "test.sh: Apache Kafka fetch failed; the Kafka tier will skip"
  else
    echo "test.sh: java or mvn missing: the Apache Kafka tier will skip"
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
PYTEST=(.venv/bin/pytest -ra -p no:cacheprovider --timeout=600)
if [ $# -gt 0 ]; then
  exec "${PYTEST[@]}" --durations=30 "$@"
fi
# The in-process tier (no broker, no server) on every core (pytest-xdist), then the tiers that
# start brokers, workers and servers one test at a time: they bound their waits for a loaded
# 2-core machine, not for one shared with a second test session. Both run; either failing fails.
IN_PROCESS='not broker and not kafka and not prom'
rc=0
"${PYTEST[@]}" --durations=10 -n auto -m "$IN_PROCESS" || rc=$?
"${PYTEST[@]}" --durations=30 -m "not ($IN_PROCESS)" || rc=$?
exit "$rc"
