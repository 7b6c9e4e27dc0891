"""issue 16: ``--config FILE`` / ``$ACCESSWATCH_CONFIG`` for ``produce``, ``topics``, ``demo``
and ``replay``, with the worker's precedence (flags over environment over file) and its one
line, exit 2, for a bad file.

produce, topics and demo are run in process up to the point where they would talk to a
broker: that point is replaced by a recorder, so these tests need none and show what each
command would connect with (servers, security, topic names)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import cli

FILE = """
[kafka]
broker = "kafka://10.9.9.1:9092"
sasl_mechanism = "PLAIN"
username = "file-user"

[topics]
logins = "file-logins"
"""
LAYERS = ["file", "env", "flag"]


class Stop(Exception):
    """Where the command would first talk to a broker."""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for var in list(os.environ):
        if var.startswith("ACCESSWATCH_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("ACCESSWATCH_KAFKA_PASSWORD", "pw-from-env")  # PLAIN needs one
    return monkeypatch


def layered(mp: pytest.MonkeyPatch, tmp_path: Path, layer: str, via_env: bool = False
            ) -> list[str]:
    """Set the file (and the environment and flags up to ``layer``); the extra argv."""
    f = tmp_path / "c.toml"
    f.write_text(FILE)
    argv = [] if via_env else ["--config", str(f)]
    if via_env:
        mp.setenv("ACCESSWATCH_CONFIG", str(f))
    if layer in ("env", "flag"):
        mp.setenv("ACCESSWATCH_BROKER", "kafka://10.9.9.2:9092")
        mp.setenv("ACCESSWATCH_KAFKA_USERNAME", "env-user")
        mp.setenv("ACCESSWATCH_TOPIC_LOGINS", "env-logins")
    if layer == "flag":
        argv += ["--broker", "kafka://10.9.9.3:9092", "--kafka-username", "flag-user"]
    return argv


EXPECTED = {"file": ("10.9.9.1:9092", "file-user", "file-logins"),
            "env": ("10.9.9.2:9092", "env-user", "env-logins"),
            "flag": ("10.9.9.3:9092", "flag-user", "env-logins")}  # (no topic flags)


@pytest.mark.parametrize("via_env", [False, True], ids=["--config", "ACCESSWATCH_CONFIG"])
@pytest.mark.parametrize("layer", LAYERS)
def test_produce_takes_broker_security_and_topics_from_the_file(
        clean_env: pytest.MonkeyPatch, tmp_path: Path, layer: str, via_env: bool) -> None:
    import streams.produce as produce

    seen: dict[str, Any] = {}
    clean_env.setattr(produce, "check_reachable", lambda servers: servers)
    clean_env.setattr(produce, "check_connection",
                      lambda servers, sec: seen.update(servers=servers, sec=sec))

    def producer(servers: list[str], **kw: Any) -> Any:
        seen["topics"] = kw["topics"]
        raise produce.ProduceError("stop here")

    clean_env.setattr(produce, "Producer", producer)
    ev = tmp_path / "ev.jsonl"
    ev.write_text("")
    argv = layered(clean_env, tmp_path, layer, via_env)
    assert cli.main(["produce", str(ev), *argv]) == 1  # (the recorder's stop)
    servers, user, logins = EXPECTED[layer]
    assert seen["servers"] == [servers]
    assert seen["sec"].username == user and seen["sec"].mechanism == "PLAIN"
    assert seen["topics"].logins == logins


@pytest.mark.parametrize("layer", LAYERS)
def test_topics_takes_broker_security_and_topics_from_the_file(
        clean_env: pytest.MonkeyPatch, tmp_path: Path, layer: str) -> None:
    import streams.topics_cmd as topics

    seen: dict[str, Any] = {}
    clean_env.setattr(topics, "check_reachable", lambda servers: servers)
    clean_env.setattr(topics, "check_connection",
                      lambda servers, sec: seen.update(servers=servers, sec=sec))

    def create(servers: list[str], *a: Any, names: Any, **kw: Any) -> list[Any]:
        seen["names"] = names
        return []

    clean_env.setattr(topics, "create_topics", create)
    argv = layered(clean_env, tmp_path, layer)
    assert cli.main(["topics", "create", *argv]) == 0
    servers, user, logins = EXPECTED[layer]
    assert seen["servers"] == [servers]
    assert seen["sec"].username == user
    assert seen["names"].logins == logins


@pytest.mark.parametrize("layer", LAYERS)
def test_demo_takes_its_broker_security_and_topics_from_the_file(
        clean_env: pytest.MonkeyPatch, tmp_path: Path, layer: str) -> None:
    import streams.demo as demo
    import streams.kafka_security as ks

    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def broker(url: str | None) -> Iterator[str]:
        seen["url"] = url
        yield url or "kafka://127.0.0.1:1"

    def run_topics(run_id: str, shared: bool, base: Any = None) -> tuple[Any, dict[str, str]]:
        seen["base"] = base
        return base, {}

    def check(servers: list[str], sec: Any, timeout: float = 10.0) -> None:
        seen["sec"] = sec
        raise ks.KafkaSecurityError("stop here")

    clean_env.setattr(demo, "_broker", broker)
    clean_env.setattr(demo, "run_topics", run_topics)
    clean_env.setattr(ks, "check_connection", check)
    ev = tmp_path / "ev.jsonl"
    ev.write_text("")
    argv = layered(clean_env, tmp_path, layer)
    assert cli.main(["demo", "--events", str(ev), "--alerting", "off", *argv]) == 2
    servers, user, logins = EXPECTED[layer]
    assert seen["url"] == f"kafka://{servers}"
    assert seen["sec"].username == user
    assert seen["base"].logins == logins


def test_demo_without_a_file_keeps_its_embedded_broker(clean_env: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """$ACCESSWATCH_BROKER alone does not move the demo off its own broker (as before)."""
    import streams.demo as demo

    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def broker(url: str | None) -> Iterator[str]:
        seen["url"] = url
        raise demo.InputError("stop here")
        yield ""

    clean_env.setattr(demo, "_broker", broker)
    clean_env.setenv("ACCESSWATCH_BROKER", "kafka://10.9.9.2:9092")
    ev = tmp_path / "ev.jsonl"
    ev.write_text("")
    assert cli.main(["demo", "--events", str(ev), "--alerting", "off"]) == 2
    assert seen["url"] is None


BAD = '[detectors]\nenabled = 3\n'


@pytest.mark.parametrize("argv", [
    ["produce", "EV"], ["topics", "list"], ["topics", "create"], ["demo", "--events", "EV"],
    ["replay", "EV"]], ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("via_env", [False, True], ids=["--config", "ACCESSWATCH_CONFIG"])
def test_a_bad_file_is_one_line_and_exit_2(clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           argv: list[str], via_env: bool) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(BAD)
    ev = tmp_path / "ev.jsonl"
    ev.write_text("")
    argv = [str(ev) if a == "EV" else a for a in argv]
    if via_env:
        clean_env.setenv("ACCESSWATCH_CONFIG", str(f))
    else:
        argv += ["--config", str(f)]
    assert cli.main(argv) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert f"config {f}: detectors.enabled" in lines[0]
    assert "Traceback" not in out.err and out.out == ""


# ---- replay: the engine settings of the file -----------------------------------------------

@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "ev.jsonl"
    subprocess.run([sys.executable, "-m", "streams.cli", "simulate", "--seed", "3", "--hours",
                    "2", "--customers", "200", "--employees", "5", "--services", "2",
                    "--attack", "coupang", "--attack-start-hour", "0.5", "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    return out


def replay_detectors(args: list[str], env: dict[str, str]) -> Counter[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSWATCH_")}
    r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--quiet", *args],
                       capture_output=True, timeout=120, env={**full, **env})
    assert r.returncode == 0, r.stderr
    return Counter(orjson.loads(x)["detector"] for x in r.stdout.splitlines())


def test_replay_takes_detectors_and_input_policy_from_the_file(simulated: Path,
                                                                tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[detectors]\nenabled = ["overseas_server"]\n[input]\nmax_future_skew = 0\n')
    everything = replay_detectors(["--max-future-skew", "0", str(simulated)], {})
    assert {"overseas_server", "bulk_lookup", "unissued_session"} <= set(everything)
    # the file: only its detector (and its max_future_skew = 0: the file is dated 2025)
    only = replay_detectors(["--config", str(f), str(simulated)], {})
    assert set(only) == {"overseas_server"}
    assert only["overseas_server"] == everything["overseas_server"]
    assert replay_detectors([str(simulated)], {"ACCESSWATCH_CONFIG": str(f)}) == only
    # the environment over the file, the flag over both
    assert set(replay_detectors(["--config", str(f), str(simulated)],
                                {"ACCESSWATCH_DETECTORS": "bulk_lookup"})) == {"bulk_lookup"}
    assert set(replay_detectors(["--config", str(f), "--detectors", "unissued_session",
                                 str(simulated)],
                                {"ACCESSWATCH_DETECTORS": "bulk_lookup"})) == {"unissued_session"}


def test_replay_takes_the_input_years_from_the_file(simulated: Path, tmp_path: Path) -> None:
    """[input] ts_max_year = 2024 rejects the 2025 file; the flag puts the year back."""
    f = tmp_path / "c.toml"
    f.write_text("[input]\nts_max_year = 2024\nmax_future_skew = 0\n")
    assert replay_detectors(["--config", str(f), str(simulated)], {}) == Counter()
    assert replay_detectors(["--config", str(f), "--ts-max-year", "2100", str(simulated)], {})


def test_replay_takes_detector_params_from_the_file(simulated: Path, tmp_path: Path) -> None:
    """``[detectors.params.<id>]`` reach replay's engine (``Settings.engine_params()``, as the
    worker's): overseas_server thresholds above any source's reach leave none of its alerts;
    an unknown parameter is one line, exit 2."""
    f = tmp_path / "c.toml"
    f.write_text("[input]\nmax_future_skew = 0\n")
    args = ["--config", str(f), "--detectors", "overseas_server", str(simulated)]
    assert replay_detectors(args, {})["overseas_server"] > 0
    f.write_text("[input]\nmax_future_skew = 0\n[detectors.params.overseas_server]\n"
                 "warn_accounts = 100000\ncritical_accounts = 100000\n")
    assert replay_detectors(args, {}) == Counter()
    f.write_text("[detectors.params.overseas_server]\nno_such = 1\n")
    r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "accesswatch replay: detectors: OverseasServer.__init__() got an unexpected keyword "
        "argument 'no_such'"]


def test_replay_takes_the_log_format_from_the_file(simulated: Path, tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[worker]\nlog_format = "json"\n[input]\nmax_future_skew = 0\n')
    r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--config", str(f),
                        str(simulated)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    [line] = r.stderr.splitlines()
    assert "events:" in orjson.loads(line)["message"]
