"""Static checks of the guest roles and the test bed (no VM needed).

- meta/argument_specs.yml documents exactly the variables of defaults/main.yml,
  with the same defaults; public variables are prefixed with the role name,
  private ones (vars/) with a double underscore.
- Every per-OS vars file defines the keys the role reads (the declared
  platforms that cannot be booted here are at least complete).
- The watchdog reporter script writes the coordinated metrics and the journal
  message from a fake sysfs.
- The test bed's guest agent client handles stale replies (guest-sync-delimited).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = ("guest_agent", "guest_watchdog")
sys.path.insert(0, str(REPO / "tests" / "testbed"))


def _load(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    root = REPO / "roles" / role
    defaults = _load(root / "defaults" / "main.yml")
    options = _load(root / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options), "argument_specs and defaults/main.yml differ"
    for name, value in defaults.items():
        spec = options[name]
        assert spec.get("description"), f"{name} has no description"
        assert spec.get("default") == value, f"{name}: default {spec.get('default')!r} != {value!r}"
        if "choices" in spec:
            assert value in spec["choices"]


@pytest.mark.parametrize("role", ROLES)
def test_variable_naming(role):
    root = REPO / "roles" / role
    for name in _load(root / "defaults" / "main.yml"):
        assert name.startswith(f"{role}_"), name
    for path in (root / "vars").glob("*.yml"):
        for name in _load(path) or {}:
            assert name.startswith(f"__{role}_"), f"{path.name}: {name}"


@pytest.mark.parametrize("role", ROLES)
def test_per_os_vars_define_required_keys(role):
    vars_dir = REPO / "roles" / role / "vars"
    required = set(_load(vars_dir / "default.yml"))
    per_os = [p for p in vars_dir.glob("*.yml") if p.name not in ("main.yml", "default.yml")]
    names = {p.stem for p in per_os}
    assert {"Debian", "Ubuntu", "RedHat", "Fedora", "Suse"} <= names
    for path in per_os:
        keys = set(_load(path))
        assert keys == required, f"{path.name}: missing {required - keys}, extra {keys - required}"


@pytest.mark.parametrize("role", ROLES)
def test_handlers_are_named_capitalised_and_guarded(role):
    handlers = _load(REPO / "roles" / role / "handlers" / "main.yml")
    for handler in handlers:
        assert handler["name"][0].isupper()
        assert any(
            "service_mgr" in cond for cond in handler["when"] if isinstance(handler["when"], list)
        ) or ("service_mgr" in str(handler["when"]))


# ---------------------------------------------------------------------------
# Reporter script (roles/guest_watchdog/files/vmhealth-watchdog)
# ---------------------------------------------------------------------------
SCRIPT = REPO / "roles" / "guest_watchdog" / "files" / "vmhealth-watchdog"


def _fake_sysfs(tmp_path: Path, bootstatus: int) -> Path:
    sysfs = tmp_path / "sys"
    for name, identity, status in (
        ("watchdog0", "iTCO_wdt", 0),
        ("watchdog1", "i6300ESB timer", bootstatus),
    ):
        dev = sysfs / name
        dev.mkdir(parents=True)
        (dev / "identity").write_text(identity + "\n")
        (dev / "bootstatus").write_text(f"{status}\n")
        (dev / "state").write_text("inactive\n")
        (dev / "timeout").write_text("30\n")
    return sysfs


def _run_report(tmp_path: Path, sysfs: Path) -> tuple[str, dict, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    logger = bindir / "logger"
    logger.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/journal\n')
    logger.chmod(logger.stat().st_mode | stat.S_IXUSR)
    env = dict(
        os.environ,
        PATH=f"{bindir}:{os.environ['PATH']}",
        VMHEALTH_WATCHDOG_SYSFS=str(sysfs),
        VMHEALTH_WATCHDOG_STATE_DIR=str(tmp_path / "state"),
    )
    textfile = tmp_path / "textfile"
    subprocess.run(
        [
            "sh",
            str(SCRIPT),
            "report",
            "--identity",
            "i6300ESB timer",
            "--textfile-dir",
            str(textfile),
        ],
        check=True,
        env=env,
    )
    metrics = (textfile / "vmhealth_guest_watchdog.prom").read_text()
    report = json.loads((tmp_path / "state" / "boot.json").read_text())
    journal = (tmp_path / "journal").read_text()
    return metrics, report, journal


def test_reporter_after_watchdog_reset_then_normal_boot(tmp_path):
    metrics, report, journal = _run_report(tmp_path, _fake_sysfs(tmp_path, 32))
    assert 'vmhealth_guest_watchdog_reset{device="watchdog1"} 1' in metrics
    assert "# TYPE vmhealth_guest_watchdog_reset gauge" in metrics
    assert "# HELP vmhealth_guest_watchdog_last_reset_timestamp_seconds" in metrics
    last = [
        line
        for line in metrics.splitlines()
        if line.startswith("vmhealth_guest_watchdog_last_reset")
    ]
    assert len(last) == 1 and int(last[0].rsplit(" ", 1)[1]) > 0
    assert (
        report["card_reset"] is True
        and report["device"] == "watchdog1"
        and report["bootstatus"] == 32
    )
    assert "rebooted by watchdog" in journal and "daemon.crit" in journal

    # Next boot without a reset: gauge 0, last reset time kept.
    for path in (tmp_path / "sys").glob("*/bootstatus"):
        path.write_text("0\n")
    (tmp_path / "journal").unlink()
    metrics2, report2, journal2 = _run_report(tmp_path, tmp_path / "sys")
    assert 'vmhealth_guest_watchdog_reset{device="watchdog1"} 0' in metrics2
    assert report2["card_reset"] is False
    assert report2["last_reset_timestamp"] == report["last_reset_timestamp"]
    assert "rebooted by watchdog" not in journal2


def test_reporter_inspect_selects_by_identity(tmp_path):
    sysfs = _fake_sysfs(tmp_path, 0)
    env = dict(os.environ, VMHEALTH_WATCHDOG_SYSFS=str(sysfs))
    out = subprocess.run(
        ["sh", str(SCRIPT), "inspect", "--identity", "i6300ESB timer"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out)
    assert data["device"] == "watchdog1"
    assert {d["identity"] for d in data["devices"]} == {"iTCO_wdt", "i6300ESB timer"}


# ---------------------------------------------------------------------------
# Test-bed guest agent client
# ---------------------------------------------------------------------------
def test_agent_client_skips_stale_replies(tmp_path):
    import guest

    path = tmp_path / "qga.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def fake_agent():
        conn, _peer = server.accept()
        with conn:
            reader = conn.makefile("rb")
            first = reader.readline().lstrip(b"\xff")
            sync_id = json.loads(first)["arguments"]["id"]
            # A stale reply to an earlier client, then the sentinel and the sync reply.
            conn.sendall(
                b'{"return": {"stale": true}}\n\xff'
                + json.dumps({"return": sync_id}).encode()
                + b"\n"
            )
            request = json.loads(reader.readline())
            assert request["execute"] == "guest-ping"
            conn.sendall(b'{"return": {}}\n')

    thread = threading.Thread(target=fake_agent, daemon=True)
    thread.start()
    assert guest.agent_ping(path, timeout=5) >= 0
    thread.join(5)
    server.close()


def test_agent_client_times_out(tmp_path):
    import guest

    path = tmp_path / "qga.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    with pytest.raises(guest.TestbedError):
        guest.agent_ping(path, timeout=1)
    server.close()


def test_image_recipe_excludes_the_roles_packages():
    text = (REPO / "tests" / "testbed" / "image" / "packages.txt").read_text()
    packages = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert "linux-image-amd64" in packages
    assert "linux-image-cloud-amd64" not in packages
    assert "qemu-guest-agent" not in packages and "watchdog" not in packages
