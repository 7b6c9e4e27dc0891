"""The configuration file and ``accesswatch config check`` (issue 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import build
from streams.config import check, settings_from_args
from streams.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "accesswatch.example.toml"
KEY = "file-state-key-0123456789abcdef"
SALT = "inline-victim-salt-9876543210"


def aw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSWATCH_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**base, **(env or {})})


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def worker_settings(argv: list[str], env: dict[str, str]) -> Settings:
    args = build().parse_args(["worker", *argv])
    return settings_from_args(args, env)


def test_the_example_file_passes_config_check() -> None:
    r = aw("config", "check", str(EXAMPLE), env={"ACCESSWATCH_STATE_KEY": KEY})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "partitions = 12" in out and "log_format = 'json'" in out
    assert "detector_params = {'unusual_hour': {'rare_p': 0.01}}" in out
    assert "timezone = 'auto'" in out
    assert "token_lifetimes = {'kid-sso-2024': 43200.0}" in out
    assert KEY not in out and "state_keys = [1 key(s) ********]" in out


def test_flags_override_the_environment_which_overrides_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, f"""
[kafka]
broker = "kafka://file-broker:9092"
partitions = 6
app_id = "from-file"
[worker]
checkpoint_interval = 5.0
log_format = "json"
[topics]
alerts = "file-alerts"
[state]
keys = ["{KEY}"]
[alertmanager]
urls = ["https://am-a:9093", "https://am-b:9093"]
runbook_base_url = "https://wiki.example/runbooks"
[detectors.params.unusual_hour]
tz_offset_hours = 1.0
""")
    env = {"ACCESSWATCH_PARTITIONS": "8", "ACCESSWATCH_APP_ID": "from-env",
           "ACCESSWATCH_TOPIC_DLQ": "env-dlq"}
    s = worker_settings(["--config", str(cfg), "--app-id", "from-flag"], env)
    assert s.broker == "kafka://file-broker:9092"  # the file only
    assert s.partitions == 8  # environment over the file
    assert s.app_id == "from-flag"  # flag over both
    assert s.checkpoint_interval == 5.0 and s.log_format == "json"
    assert (s.topics.alerts, s.topics.dlq, s.topics.logins) == (
        "file-alerts", "env-dlq", "auth-logins")
    assert s.state_keys == (KEY,)
    assert s.alertmanager == ("https://am-a:9093", "https://am-b:9093")
    assert s.runbook_base_url == "https://wiki.example/runbooks"
    assert s.detector_params == {"unusual_hour": {"tz_offset_hours": 1.0}}
    # ACCESSWATCH_CONFIG names the file as --config does; a key in the environment wins
    s = worker_settings([], {"ACCESSWATCH_CONFIG": str(cfg), "ACCESSWATCH_STATE_KEY": "e" * 20})
    assert s.app_id == "from-file" and s.state_keys == ("e" * 20,)
    # without a file, nothing changes
    assert worker_settings([], {}).app_id == "accesswatch"


def test_detector_params_reach_the_engines(tmp_path: Path) -> None:
    from dataclasses import replace

    from streams.app import create_app

    s = replace(Settings.from_env({}), state_keys=(KEY,),
                detector_params={"unusual_hour": {"tz_offset_hours": 1.0}})
    rt = create_app(s).accesswatch
    assert rt.config.params == {"unusual_hour": {"tz_offset_hours": 1.0}}
    engine = rt._fresh_engine()
    [det] = [d for d in engine.detectors.values() if type(d).__name__ == "UnusualHour"]
    assert det.fixed_off == 3600.0  # a fixed offset: the local time of the context is not read



def test_token_lifetimes_reach_unissued_session(tmp_path: Path) -> None:
    """``[detectors.token_lifetimes]`` is the per-key lifetime unissued_session judges by."""
    from dataclasses import replace

    from streams.app import create_app

    s = replace(Settings.from_env({}), state_keys=(KEY,),
                token_lifetimes={"kid-sso": 600.0, "kid-batch": 86400.0})
    engine = create_app(s).accesswatch._fresh_engine()
    [det] = [d for d in engine.detectors.values() if type(d).__name__ == "UnissuedSession"]
    assert det._lifetime == {"kid-sso": 600.0, "kid-batch": 86400.0}
    # the detector's own parameter wins key by key
    s2 = replace(s, detector_params={"unissued_session": {"lifetimes": {"kid-sso": 60.0}}})
    assert s2.engine_params()["unissued_session"]["lifetimes"] == {
        "kid-sso": 60.0, "kid-batch": 86400.0}

INVALID = [
    ("[kafka]\npartitions = 0\n", "kafka.partitions: must be greater than 0"),
    ("[kafka]\npartitions = \"four\"\n", "kafka.partitions: must be a valid integer"),
    ("[worker]\nstore = \"mongo\"\n", "worker.store: must be 'memory' or 'rocksdb'"),
    ("[worker]\ncheckpoint_interval = -1\n", "worker.checkpoint_interval: must be greater"),
    ("[worker]\nfast_deliver = \"perhaps\"\n", "worker.fast_deliver: must be a valid boolean"),
    ("[web]\nport = 70000\n", "web.port: must be less than or equal to 65535"),
    ("[web]\nprot = 1\n", "web.prot: unknown key"),
    ("[webb]\nport = 1\n", "webb: unknown key"),
    ("[alertmanager]\nurls = [\"am:9093\"]\n", "alertmanager.urls: must start with http"),
    ("[alertmanager]\nrunbook_base_url = \"wiki\"\n", "alertmanager.runbook_base_url"),
    ("[input]\nts_min_year = 1900\n", "input.ts_min_year: must be greater than or equal"),
    ("[detectors]\ntrusted_networks = [\"10.0.0.1/8\"]\n", "host bits set"),
    ("[detectors.token_lifetimes]\nk1 = 0\n", "detectors.token_lifetimes.k1: must be greater"),
    ("[detectors]\nenabled = [\"no_such_detector\"]\n", "no_such_detector"),
    ("[detectors.params.unusual_hour]\nnope = 1\n", "unexpected keyword argument 'nope'"),
    ("[geoip]\nsource = \"ipinfo\"\n", "geoip.source: must be 'geoip2fast' or 'maxmind'"),
    ("[geoip]\nsource = \"maxmind\"\n", "needs a Country or City database"),
    ("[kafka\nbroker = 1\n", "not valid TOML"),
    ("[kafka]\nbroker = \"http://x:1\"\n", "kafka://"),
    ("[state]\nkey_file = \"/nonexistent/key\"\n", "state: key_file=/nonexistent/key: cannot read"),
    ("[victims]\nsalt = \"short\"\n", "at least 16 characters"),
    ("[web]\nhost = \"0.0.0.0\"\n", "not loopback"),
]


@pytest.mark.parametrize(("text", "problem"), INVALID, ids=[p for _, p in INVALID])
def test_each_kind_of_invalid_value_is_one_line_and_exit_2(tmp_path: Path, text: str,
                                                            problem: str) -> None:
    cfg = write(tmp_path, text if "[state]" in text else text + f"[state]\nkeys = [\"{KEY}\"]\n")
    lines, problems = check(str(cfg), {})
    assert lines == [] or problems
    assert len(problems) == 1, problems
    assert problem in problems[0], problems


def test_every_problem_is_listed_one_line_each_by_the_command(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[kafka]\npartitions = 0\n[web]\nport = -1\nprot = 2\n")
    r = aw("config", "check", str(cfg))
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3 and all(ln.startswith(f"accesswatch config: {cfg}: ") for ln in lines)
    assert "Traceback" not in r.stderr
    # the worker with the same file: one line, exit 2
    r = aw("worker", "--config", str(cfg))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "kafka.partitions" in r.stderr and "web.prot: unknown key" in r.stderr
    r = aw("config", "check", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "cannot read it" in r.stderr


def test_secrets_never_appear_in_the_output(tmp_path: Path) -> None:
    key_file = tmp_path / "state-key"
    key_file.write_text("a-key-held-in-a-file-0123456789\n")
    token = tmp_path / "token"
    token.write_text("web-token-secret-value-42\n")
    good = write(tmp_path, f"""
[alertmanager]
urls = ["https://pager:am-password-77@am:9093"]
[state]
keys = ["{KEY}", "second-key-abcdefghijklmnop"]
[victims]
salt = "{SALT}"
[web]
bearer_token_file = "{token}"
""")
    r = aw("config", "check", str(good))
    assert r.returncode == 0, r.stderr
    for secret in (KEY, "second-key-abcdefghijklmnop", SALT, "am-password-77",
                   "web-token-secret-value-42"):
        assert secret not in r.stdout + r.stderr, secret
    assert "state_keys = [2 key(s) ********]" in r.stdout
    assert "victim_salt = ********" in r.stdout
    # an invalid secret is named, never shown: too short, of the wrong type
    bad = write(tmp_path, "[state]\nkeys = [\"tooshort-secret\"]\n[victims]\nsalt = 12345678\n",
                "bad.toml")
    r = aw("config", "check", str(bad))
    assert r.returncode == 2
    assert "tooshort-secret" not in r.stderr and "12345678" not in r.stderr
    assert "victims.salt" in r.stderr
    bad2 = write(tmp_path, "[state]\nkeys = [\"tooshort-secret\"]\n", "bad2.toml")
    r = aw("config", "check", str(bad2))
    assert r.returncode == 2 and "tooshort-secret" not in r.stderr, r.stderr
    bad3 = write(tmp_path, f"[state]\nkeys = [\"{KEY}\"]\n[kafka]\n"
                 "broker = \"kafka://user:broker-password-77@k1:9092\"\n", "bad3.toml")
    r = aw("config", "check", str(bad3))
    assert r.returncode == 2
    assert "broker-password-77" not in r.stderr and "broker URL" in r.stderr, r.stderr
    # from the environment too: a key file's contents are never printed
    r = aw("config", "check", str(good), env={"ACCESSWATCH_STATE_KEY_FILE": str(key_file),
                                              "ACCESSWATCH_STATE_KEY": ""})
    assert r.returncode == 0 and "a-key-held-in-a-file" not in r.stdout


def test_settings_error_from_a_bad_file_is_a_settings_error(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[kafka]\npartitions = 0\n")
    with pytest.raises(SettingsError, match="kafka.partitions"):
        worker_settings(["--config", str(cfg)], {})


def test_the_runbook_base_url_reaches_the_alertmanager_sender() -> None:
    from dataclasses import replace

    from streams.alertmanager import alert_annotations
    from streams.app import create_app

    s = replace(Settings.from_env({}), state_keys=(KEY,), alertmanager=("http://127.0.0.1:1",),
                runbook_base_url="https://wiki.example/accesswatch")
    sender = create_app(s).accesswatch.sender
    assert sender.runbook_base == "https://wiki.example/accesswatch"
    ann = alert_annotations({"detector": "bulk_lookup", "summary": "s", "evidence": []},
                            sender.runbook_base)
    assert ann["runbook_url"] == "https://wiki.example/accesswatch/docs/detectors.md#bulk_lookup"
