"""deploy/compose.yaml and deploy/k8s: parse them and check the structure that matters
(ports, probes, wiring between the parts, settings names) against the rest of the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml not installed (pip install pyyaml)")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS_ENV = set(re.findall(r"ACCESSWATCH_[A-Z_]+", (ROOT / "streams/settings.py").read_text()))
COMPOSE_SECRETS = "/run/secrets/accesswatch"  # where compose mounts the generated tokens
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
AUTH_FILES = ("ACCESSWATCH_WEB_BEARER_TOKEN_FILE", "ACCESSWATCH_WEB_BASIC_AUTH_FILE")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load(DEPLOY / "compose.yaml")
    return doc


def k8s_docs() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


# --- compose ---------------------------------------------------------------------------


def test_compose_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "worker", "prometheus", "alertmanager", "grafana", "receiver"} <= set(services)
    worker = services["worker"]
    assert worker["command"] == ["worker", "--broker", "kafka://kafka:9092"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_publishes_only_on_loopback(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_settings_are_real_worker_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["worker"]["environment"]
    unknown = set(env) - SETTINGS_ENV
    assert not unknown, f"not read by streams/settings.py: {unknown}"
    assert env["ACCESSWATCH_WEB_HOST"] == "0.0.0.0"  # inside its container, for Prometheus
    assert env["ACCESSWATCH_ALERTMANAGER"] == "http://alertmanager:9093"
    port = int(env["ACCESSWATCH_WEB_PORT"])
    # the health check reads /healthz (with the worker's own token, not needed there)
    assert compose["services"]["worker"]["healthcheck"]["test"] == [
        "CMD", "python", "-m", "streams.httpauth", "probe", f"http://127.0.0.1:{port}/healthz"]
    prom = load(DEPLOY / "prometheus" / "prometheus.compose.yml")
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "accesswatch"]
    assert job["dns_sd_configs"][0] == {
        "names": ["worker"],
        "type": "A",
        "port": port,
        "refresh_interval": "15s",
    }


def test_compose_mounts_exist_and_match_their_configs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), f"{name} mounts missing {src}"
    prom_cmd = " ".join(services["prometheus"]["command"])
    cfg = re.search(r"--config\.file=/etc/prometheus/(\S+)", prom_cmd)
    assert cfg and (DEPLOY / "prometheus" / cfg.group(1)).exists()
    am_cmd = " ".join(services["alertmanager"]["command"])
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am_cmd
    # Grafana's provider reads the folder the dashboards are mounted at.
    provider = load(DEPLOY / "grafana/provisioning/dashboards/accesswatch.yml")["providers"][0]
    mounts = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert provider["options"]["path"] in mounts
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"])
    assert (DEPLOY / "grafana/dashboards" / Path(home).name).exists()
    assert (
        "camptocamp-prometheus-alertmanager-datasource"
        in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    )


def test_compose_receiver_is_where_alertmanager_sends(compose: dict[str, Any]) -> None:
    rcv = compose["services"]["receiver"]
    assert rcv["network_mode"] == "service:alertmanager"
    args = rcv["command"]
    host, port = args[args.index("--host") + 1], args[args.index("--port") + 1]
    am = load(DEPLOY / "alertmanager/alertmanager.yml")
    urls = [w["url"] for r in am["receivers"] for w in r["webhook_configs"]]
    assert urls and all(u.startswith(f"http://{host}:{port}/") for u in urls)
    assert {u.rsplit("/", 1)[1] for u in urls} == {r["name"] for r in am["receivers"]}


def test_prometheus_configs_share_the_rules() -> None:
    local = load(DEPLOY / "prometheus/prometheus.yml")
    composed = load(DEPLOY / "prometheus/prometheus.compose.yml")
    assert local["rule_files"] == composed["rule_files"]
    for cfg in (local, composed):
        assert {j["job_name"] for j in cfg["scrape_configs"]} >= {"accesswatch"}
        assert cfg["alerting"]["alertmanagers"]


@pytest.mark.prom
def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (run scripts/install-prometheus.sh)")
    # promtool wants the token file to exist: compose makes it at start, here a stand-in
    token = tmp_path / "web-token"
    token.write_text("x\n")
    cfg = tmp_path / "prometheus.compose.yml"
    cfg.write_text((DEPLOY / "prometheus/prometheus.compose.yml").read_text().replace(
        COMPOSE_SECRETS + "/web-token", str(token)))
    (tmp_path / "rules").symlink_to(DEPLOY / "prometheus/rules")
    r = subprocess.run(
        [promtool, "check", "config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


# --- Kubernetes ------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kust = load(K8S / "kustomization.yaml")
    listed = set(kust["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_worker_deployment_probes_resources_and_scrape_annotations() -> None:
    docs = k8s_docs()
    dep = docs["Deployment"]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    [c] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    cm = docs["ConfigMap"]["data"]
    assert ports["web"] == int(cm["ACCESSWATCH_WEB_PORT"])
    assert cm["ACCESSWATCH_WEB_HOST"] == "0.0.0.0"
    # issue 16: the worker's own health pages, which answer without the token
    # (tests/test_health.py), so plain httpGet probes on the web port
    from streams.health import HEALTH_PATHS

    paths = {probe: c[probe]["httpGet"]["path"]
             for probe in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert paths == {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
                     "startupProbe": "/healthz"}
    assert set(paths.values()) <= set(HEALTH_PATHS)
    for probe in paths:
        assert c[probe]["httpGet"]["port"] in ("web", ports["web"]), probe
        assert "httpHeaders" not in c[probe]["httpGet"], probe  # no token in the manifest
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    # no annotation-based scraping: it could not carry the token
    assert "prometheus.io/scrape" not in pod["metadata"].get("annotations", {})
    assert c["args"][0] == "worker"
    assert c["envFrom"][0]["configMapRef"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert cm["ACCESSWATCH_DATA_DIR"] in mounts


def test_k8s_configmap_keys_are_worker_settings() -> None:
    cm = k8s_docs()["ConfigMap"]["data"]
    unknown = set(cm) - SETTINGS_ENV
    assert not unknown, f"not read by streams/settings.py: {unknown}"
    urls = cm["ACCESSWATCH_ALERTMANAGER"].split(",")
    assert len(urls) == 2 and all(u.startswith("http") for u in urls)  # the HA pair


def test_podmonitor_service_and_pdb_select_the_worker_pods() -> None:
    docs = k8s_docs()
    pod_labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    pm = docs["PodMonitor"]
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    [ep] = pm["spec"]["podMetricsEndpoints"]
    assert ep["port"] == "web" and ep["path"] == "/metrics"
    # the rules expect up{job="accesswatch"}
    assert {"targetLabel": "job", "replacement": "accesswatch"} in ep["relabelings"]
    assert docs["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items()
    )


# --- nothing unauthenticated where it matters (issue 12) --------------------------------


def _web_settings() -> list[tuple[str, dict[str, Any], list[str]]]:
    """(where, worker environment, mount paths) of every worker the deploy files run."""
    compose = load(DEPLOY / "compose.yaml")
    out = []
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        if "ACCESSWATCH_WEB_HOST" in env or "worker" in (svc.get("command") or []):
            mounts = [v.split(":")[1] for v in svc.get("volumes", [])]
            out.append((f"compose service {name}", env, mounts))
    docs = k8s_docs()
    [c] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    out.append(("k8s Deployment", docs["ConfigMap"]["data"],
                [m["mountPath"] for m in c.get("volumeMounts", [])]))
    return out


def test_no_deploy_file_exposes_the_worker_without_auth() -> None:
    found = _web_settings()
    assert len(found) == 2
    for where, env, mounts in found:
        host = env.get("ACCESSWATCH_WEB_HOST", "127.0.0.1")
        assert env.get("ACCESSWATCH_WEB_ALLOW_UNAUTHENTICATED", "0") in ("0", "false", "no")
        if host in LOOPBACK:
            continue
        files = [env[k] for k in AUTH_FILES if env.get(k)]
        assert files, f"{where} binds {host} without ACCESSWATCH_WEB_*_FILE"
        for f in files:  # the secret comes from a mounted volume, not the image
            assert any(f.startswith(m.rstrip("/") + "/") for m in mounts), (where, f)
    # and no deploy file carries a secret value itself (a reference to a Secret is fine)
    for path in DEPLOY.rglob("*"):
        if path.suffix in (".yml", ".yaml") and path.is_file():
            text = path.read_text()
            assert not re.search(r"(?i)^[ \t]*-?[ \t]*(credentials|password|bearer_token)[ \t]*:[ \t]*[^\s#]",
                                 text, re.M), path


def test_compose_secrets_reach_prometheus_alertmanager_and_receiver(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    gen = services["secrets"]
    assert f"secrets:{COMPOSE_SECRETS}" in gen["volumes"]
    made = set(re.findall(r'"([a-z-]+-token)"', gen["command"][0]))
    assert made == {"web-token", "receiver-token"}
    for name in ("worker", "prometheus", "alertmanager", "receiver"):
        assert f"secrets:{COMPOSE_SECRETS}:ro" in services[name]["volumes"], name
    for name in ("worker", "prometheus", "alertmanager"):
        assert services[name]["depends_on"]["secrets"]["condition"] == (
            "service_completed_successfully"), name
    web_token = services["worker"]["environment"]["ACCESSWATCH_WEB_BEARER_TOKEN_FILE"]
    assert web_token == f"{COMPOSE_SECRETS}/web-token"
    # Prometheus scrapes the workers with that same file
    prom = load(DEPLOY / "prometheus" / "prometheus.compose.yml")
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "accesswatch"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": web_token}
    # Alertmanager sends the receiver's token, which the receiver requires
    args = services["receiver"]["command"]
    rcv_token = args[args.index("--bearer-token-file") + 1]
    assert rcv_token == f"{COMPOSE_SECRETS}/receiver-token"
    am = load(DEPLOY / "alertmanager/alertmanager.yml")
    for r in am["receivers"]:
        for w in r["webhook_configs"]:
            assert w["http_config"]["authorization"] == {
                "type": "Bearer", "credentials_file": rcv_token}, r["name"]


def test_k8s_scrape_uses_the_secret_the_pods_mount() -> None:
    docs = k8s_docs()
    kust = load(K8S / "kustomization.yaml")
    [gen] = kust["secretGenerator"]
    assert kust["generatorOptions"]["disableNameSuffixHash"] is True  # the PodMonitor's ref
    assert gen["files"] == ["token=secrets/web-token"]
    ignore = (K8S / "secrets/.gitignore").read_text().split()
    assert ignore == ["*", "!.gitignore"]  # the token file itself is never committed
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    [vol] = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == gen["name"]]
    [mount] = [m for m in c["volumeMounts"] if m["name"] == vol["name"]]
    assert mount["readOnly"] is True
    [item] = vol["secret"]["items"]
    token_path = f"{mount['mountPath']}/{item['path']}"
    assert docs["ConfigMap"]["data"]["ACCESSWATCH_WEB_BEARER_TOKEN_FILE"] == token_path
    [ep] = docs["PodMonitor"]["spec"]["podMetricsEndpoints"]
    assert ep["authorization"] == {
        "type": "Bearer", "credentials": {"name": gen["name"], "key": item["key"]}}


# --- the Dockerfile (issue 16; no Docker here: read statically) ------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, continuation lines joined, split into stages."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        if op.upper() == "FROM":
            stages.append([])
        stages[-1].append((op.upper(), rest.strip()))
    return stages


def test_dockerfile_is_slim_non_root_and_runs_the_worker() -> None:
    import json

    stages = dockerfile_stages()
    final = stages[-1]
    ops = dict(final)  # the last of each instruction
    assert all(re.fullmatch(r"python:3\.\d+-slim( AS \w+)?", s[0][1]) for s in stages), stages
    # non-root, with the uid the k8s pods run as
    user = ops["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0
    pod = k8s_docs()["Deployment"]["spec"]["template"]["spec"]
    assert int(user) == pod["securityContext"]["runAsUser"]
    # the entry point is the CLI, the default command the worker (`docker run IMAGE`)
    assert json.loads(ops["ENTRYPOINT"]) == ["accesswatch"]
    assert json.loads(ops["CMD"]) == ["worker"]
    [container] = pod["containers"]
    assert container["args"][0] == "worker" and "command" not in container
    # the package itself is installed, from the sources the image copies
    build = [rest for st in stages for op, rest in st if op in ("COPY", "RUN")]
    for src in ("pyproject.toml", "detectors", "streams", "simulation", "local"):
        assert any(r.startswith(src) or f" {src} " in f" {r} " for r in build), src
    assert any("pip install" in r and "." in r for r in build)
    assert "EXPOSE" in ops and int(ops["EXPOSE"]) == int(
        k8s_docs()["ConfigMap"]["data"]["ACCESSWATCH_WEB_PORT"])
    assert ops["WORKDIR"] == ops["ENV"].split("ACCESSWATCH_DATA_DIR=")[1].split()[0]
    health = json.loads(ops["HEALTHCHECK"].split("CMD", 1)[1])
    assert health[-1].endswith("/healthz")


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"  # everything is excluded but what is let in below
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "detectors", "streams", "simulation", "local"}


def test_compose_and_k8s_use_the_dockerfile(compose: dict[str, Any]) -> None:
    for name in ("worker", "topics", "receiver", "secrets"):
        build = compose["services"][name]["build"]
        assert build == {"context": "..", "dockerfile": "Dockerfile"}, name
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    kust = load(K8S / "kustomization.yaml")
    [image] = kust["images"]
    [container] = k8s_docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert image["name"] == container["image"]
