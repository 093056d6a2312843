#!/usr/bin/env python
"""make demo: the collection's main job on one machine, against a real libvirt guest.

1. build or reuse the test-bed guest image (tests/testbed/guest.py);
2. start virtlogd/libvirtd when they are not running, define and start a QEMU (TCG) domain from
   the image (q35, direct kernel boot, guest agent channel, SSH on 127.0.0.1, no watchdog, no
   panic device) and wait for SSH;
3. write a temporary inventory with the guest in the group vmhealth_guests;
4. run the playbooks vmhealth.kvm.libvirt (i6300esb watchdog with action reset, restart, the
   Prometheus rule file), vmhealth.kvm.guests (guest agent, guest watchdog) and
   vmhealth.kvm.crash_test (the kernel panics; the watchdog must reset the guest);
5. measure with signals of its own: guest-ping through libvirt, the armed device in the guest's
   sysfs, libvirt's watchdog event against the panic line on the guest's serial console, the
   reporter's metric file and journal after the reset, ``promtool check rules``;
6. print a report; exit 1 if any line failed.

Everything it creates is removed on success, on failure and on Ctrl-C/SIGTERM/SIGHUP (the
domain, its directory, the temporary directory, the daemons it started, its child processes),
unless VMHEALTH_DEMO_KEEP=1. Logs stay in build/demo/. Runs as root; `make demo` installs the
Debian packages and .venv first. See docs/demo.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

URI = "qemu:///system"
GUEST = "vmhealth-demo"  # inventory name of the guest
LOG_DIR = REPO / "build" / "demo"
CONFIRM = "I understand this crashes the canary guests"
KEEP = os.environ.get("VMHEALTH_DEMO_KEEP", "") == "1"
#: The guest watchdog timeout (s): the reset comes about this long after the panic.
WATCHDOG_TIMEOUT = int(os.environ.get("VMHEALTH_DEMO_WATCHDOG_TIMEOUT", "20"))
SSH_TIMEOUT = 420
AGENT_TIMEOUT = 120
PLAYBOOK_TIMEOUT = {"libvirt": 600, "guests": 1500, "crash_test": 900}
RESET_METRIC = re.compile(r"(?m)^vmhealth_guest_watchdog_reset\{[^}]*\} 1$")
CONSOLE_CRASH = re.compile(r"sysrq: Trigger a crash|Kernel panic - not syncing")

STARTED = time.monotonic()


class Failed(Exception):
    """A step failed; the report shows why and the remaining steps are not run."""


def log(msg: str) -> None:
    elapsed = time.monotonic() - STARTED
    print(f"[demo {int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {msg}", flush=True)


# -- report -------------------------------------------------------------------------------------

LINES = (
    "guest image",
    "boot to SSH",
    "playbook libvirt",
    "watchdog device",
    "rule file",
    "playbook guests",
    "agent ping",
    "watchdog",
    "playbook crash_test",
    "crash to reset",
    "reset reported",
)


class Report:
    def __init__(self):
        self.rows: dict[str, tuple[str, bool]] = {}

    def set(self, label: str, text: str, ok: bool = True) -> None:
        self.rows[label] = (text, ok)
        log(f"{label}: {text}{'' if ok else '  [FAILED]'}")

    def passed(self) -> bool:
        return all(label in self.rows and self.rows[label][1] for label in LINES)

    def render(self, total: float, error: str | None) -> str:
        out = ["vmhealth.kvm demo report"]
        for label in LINES:
            text, ok = self.rows.get(label, ("not reached", False))
            out.append(f"  {label:<22} {text}{'' if ok else '  [FAILED]'}")
        out.append(f"  {'total':<22} {total:.1f} s")
        if error:
            out.append(f"  {'error':<22} {error}")
        out.append(f"  {'result':<22} {'PASS' if self.passed() and not error else 'FAIL'}")
        return "\n".join(out)


# -- signals and child processes ----------------------------------------------------------------


def _on_signal(signum, _frame):
    # Ctrl-C is a KeyboardInterrupt already; SIGTERM and SIGHUP take the same way out, so every
    # cleanup (finally blocks, the ExitStack) runs. Further signals are ignored meanwhile.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a child started in its own session (ansible-playbook and its workers)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# -- guest access -------------------------------------------------------------------------------


class Guest:
    def __init__(self, dom, port: int, key: Path, workdir: Path):
        self.dom = dom
        self.port = port
        self.key = key
        self.workdir = workdir

    def ssh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        from testbed.libvirt_domain import ssh_argv

        return subprocess.run(
            ssh_argv(self.port, self.key, command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_ssh(self, timeout: float = SSH_TIMEOUT) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.dom.isActive():
                raise Failed(f"the domain stopped (see {self.workdir}/serial.log)")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.ssh("true", timeout=30).returncode == 0:
                    return time.monotonic() - started
            time.sleep(2)
        raise Failed(f"no SSH within {timeout} s")

    def agent_ping(self, timeout: float = AGENT_TIMEOUT) -> tuple[float, float]:
        """guest-ping through libvirt until answered; (round trip, seconds waited)."""
        import libvirt
        import libvirt_qemu

        started = time.monotonic()
        last = None
        while time.monotonic() - started < timeout:
            t0 = time.monotonic()
            try:
                reply = libvirt_qemu.qemuAgentCommand(
                    self.dom, json.dumps({"execute": "guest-ping"}), 10, 0
                )
                if json.loads(reply).get("return") == {}:
                    return time.monotonic() - t0, t0 - started
                last = reply
            except libvirt.libvirtError as exc:
                last = exc
            time.sleep(2)
        raise Failed(f"guest-ping not answered within {timeout} s: {last}")


class ConsoleWatch:
    """Host time of the first kernel panic line on the guest's serial console (a file)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.found: float | None = None
        self.line = ""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buf = b""
        while not self._stop.is_set() and self.found is None:
            try:
                with open(self.path, "rb") as stream:
                    size = os.fstat(stream.fileno()).st_size
                    if size < self.offset:  # truncated (QEMU restarted)
                        self.offset = 0
                    stream.seek(self.offset)
                    chunk = stream.read()
            except OSError:
                chunk = b""
            now = time.time()
            if chunk:
                self.offset += len(chunk)
                buf = (buf + chunk)[-8192:]
                match = CONSOLE_CRASH.search(buf.decode("utf-8", "replace"))
                if match:
                    self.found = now
                    self.line = match.group(0)
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=2)


# -- ansible ------------------------------------------------------------------------------------


def ansible_env(tmp: Path) -> dict:
    env = dict(os.environ)
    venv_bin = Path(sys.executable).parent
    if not env.get("ANSIBLE_COLLECTIONS_PATH"):
        link = REPO / "build" / "collections" / "ansible_collections" / "vmhealth" / "kvm"
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(REPO)
        site = sysconfig.get_paths()["purelib"]
        env["ANSIBLE_COLLECTIONS_PATH"] = f"{REPO / 'build' / 'collections'}:{site}"
    env.update(
        {
            "PATH": f"{venv_bin}:{env.get('PATH', '')}",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp / "cp"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run_playbook(
    name: str, extra: dict, tmp: Path, inventory: Path, playbook: str | None = None
) -> dict:
    """ansible-playbook vmhealth.kvm.<name> (or ``playbook``); stream the task names, log all.

    Returns {ok, seconds, lines: [(host time, line)]}."""
    extra_file = tmp / f"extra-{name}.json"
    extra_file.write_text(json.dumps(extra))
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        playbook or f"vmhealth.kvm.{name}",
        "-i",
        str(inventory),
        "-e",
        f"@{extra_file}",
    ]
    log(f"ansible-playbook vmhealth.kvm.{name} (log: build/demo/ansible-{name}.log)")
    timeout = PLAYBOOK_TIMEOUT[name]
    lines: list[tuple[float, str]] = []
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=str(tmp),
        env=ansible_env(tmp),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    timer = threading.Timer(timeout, _kill_group, (proc,))
    timer.start()
    try:
        with open(LOG_DIR / f"ansible-{name}.log", "w") as out:
            for line in proc.stdout:
                lines.append((time.time(), line.rstrip("\n")))
                out.write(line)
                out.flush()
                if line.startswith(("TASK [", "PLAY [", "fatal:", "failed:", "ERROR!")):
                    print(f"    {line.rstrip()[:110]}", flush=True)
        rc = proc.wait()
    finally:
        timer.cancel()
        _kill_group(proc)
    seconds = time.monotonic() - started
    recap = [text for _t, text in lines if re.match(r"^\S+\s+: ok=", text)]
    for text in recap:
        print(f"    {text}", flush=True)
    if seconds >= timeout:
        log(f"vmhealth.kvm.{name} killed after its {timeout} s limit")
    if rc != 0:
        tail = "\n".join(text for _t, text in lines[-40:])
        print(f"--- last lines of ansible-{name}.log ---\n{tail}\n---", flush=True)
    return {"ok": rc == 0, "seconds": seconds, "lines": lines, "rc": rc}


def close_ssh_masters(tmp: Path) -> None:
    """Stop the SSH ControlPersist masters ansible left behind (they run detached)."""
    for sock in (tmp / "cp").glob("*"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "vmhealth-demo"],
                capture_output=True,
                timeout=10,
                check=False,
            )


# -- the demo -----------------------------------------------------------------------------------


def preflight() -> None:
    if os.geteuid() != 0:
        raise SystemExit("make demo runs as root (libvirtd, the domain under qemu:///system)")
    try:
        import libvirt  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            f"libvirt-python is missing ({exc}): run `make demo` (creates .venv)"
        ) from None
    from testbed.libvirt_domain import TOOLS

    missing = [tool for tool in (*TOOLS, "promtool") if not shutil.which(tool)]
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        missing.append("ansible-playbook (in .venv)")
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}; run `make demo` (installs them)")


def demo(report: Report, stack: contextlib.ExitStack, tmp: Path) -> None:
    import libvirt
    from testbed.guest import Image, _free_port, build_image, cache_dir, recipe_hash
    from testbed.libvirt_domain import (
        IMAGES,
        EventLoop,
        copy_ssh_key,
        domain_xml,
        libvirt_daemons,
        prepare_domain_dir,
        remove_domain,
    )

    # 1. The guest image.
    reused = Image(cache_dir() / f"image-bookworm-{recipe_hash()}").stamp.exists()
    t0 = time.monotonic()
    image = build_image()
    report.set(
        "guest image", f"{'reused' if reused else 'built'} (build {time.monotonic() - t0:.1f} s)"
    )

    # 2. libvirtd and the domain.
    started = stack.enter_context(libvirt_daemons(URI))
    if started:
        log("started " + ", ".join(f"{d} (pid {p})" for d, p in started))
        if KEEP:
            started.clear()  # left running for the kept guest
    loop = EventLoop()
    stack.callback(loop.stop)
    conn = libvirt.open(URI)
    stack.callback(conn.close)

    name = f"vmhealth-demo-{uuid.uuid4().hex[:8]}"
    workdir = IMAGES / name
    port = _free_port()
    state: dict = {}

    def remove():
        if KEEP:
            log(
                f"kept: ssh -p {port} -i {tmp}/id_ed25519 root@127.0.0.1 (domain {name}); remove "
                f"with: virsh destroy {name}; virsh undefine {name}; rm -rf {workdir} {tmp}"
            )
            return
        if "callback" in state:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(state["callback"])
        close_ssh_masters(tmp)
        if workdir.joinpath("serial.log").exists():
            with contextlib.suppress(OSError):
                shutil.copy(workdir / "serial.log", LOG_DIR / "serial.log")
        if "dom" in state:
            remove_domain(state["dom"], workdir)
            log(f"domain {name} destroyed and undefined, {workdir} removed")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    stack.callback(remove)
    prepare_domain_dir(image, workdir)
    key = copy_ssh_key(image, tmp / "id_ed25519")
    dom = state["dom"] = conn.defineXML(domain_xml(name, workdir, port))
    state["callback"] = conn.domainEventRegisterAny(
        dom, libvirt.VIR_DOMAIN_EVENT_ID_WATCHDOG, loop.on_watchdog, None
    )
    guest = Guest(dom, port, key, workdir)
    log(f"domain {name} defined (SSH on 127.0.0.1:{port}); starting it")
    t0 = time.monotonic()
    dom.create()
    waited = guest.wait_ssh()
    report.set(
        "boot to SSH", f"{waited:.1f} s (domain start {time.monotonic() - t0 - waited:.1f} s)"
    )

    # 3. The inventory.
    inventory = tmp / "inventory.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        }
                    },
                    "children": {
                        "vmhealth_guests": {
                            "hosts": {
                                GUEST: {
                                    "ansible_host": "127.0.0.1",
                                    "ansible_port": port,
                                    "ansible_user": "root",
                                    "ansible_ssh_private_key_file": str(key),
                                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                                    "-o UserKnownHostsFile=/dev/null",
                                    "ansible_python_interpreter": "/usr/bin/python3",
                                }
                            }
                        }
                    },
                }
            },
            indent=2,
        )
    )

    # 4a. vmhealth.kvm.libvirt: the watchdog device, the rule file, the restart.
    rule_file = tmp / "vmhealth-rules.yml"
    run = run_playbook(
        "libvirt",
        {
            "vmhealth_libvirt_domains": [name],
            "vmhealth_libvirt_uri": URI,
            "vmhealth_libvirt_watchdog_model": "i6300esb",
            "vmhealth_libvirt_watchdog_action": "reset",
            "vmhealth_libvirt_restart": "if_needed",
            "vmhealth_libvirt_shutdown_timeout": 30,
            "vmhealth_alert_rule_file": str(rule_file),
        },
        tmp,
        inventory,
    )
    report.set(
        "playbook libvirt", f"{'ok' if run['ok'] else 'failed'} ({run['seconds']:.1f} s)", run["ok"]
    )
    live = dom.XMLDesc(0) if dom.isActive() else ""
    device = re.search(r"<watchdog model='([^']+)' action='([^']+)'", live)
    panic = "<panic" in live
    ok = bool(device) and device.groups() == ("i6300esb", "reset") and not panic
    report.set(
        "watchdog device",
        f"{device.group(1)}, action {device.group(2)} on the running domain"
        + (", but a panic device too" if panic else "")
        if device
        else "none on the running domain",
        ok,
    )
    if rule_file.exists():
        check = subprocess.run(
            ["promtool", "check", "rules", str(rule_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found = re.search(r"SUCCESS: (\d+) rules found", check.stdout + check.stderr)
        report.set(
            "rule file",
            f"valid (promtool: {found.group(1)} rules)"
            if check.returncode == 0 and found
            else f"invalid: {(check.stdout + check.stderr).strip()[-200:]}",
            check.returncode == 0 and bool(found),
        )
    else:
        report.set("rule file", "not written", False)
    if not run["ok"] or not ok:
        raise Failed("vmhealth.kvm.libvirt did not leave a running domain with the watchdog")
    waited = guest.wait_ssh()
    log(f"SSH back {waited:.1f} s after the playbook (domain restarted with the watchdog)")

    # 4b. vmhealth.kvm.guests: the guest agent and the guest watchdog.
    run = run_playbook(
        "guests",
        {
            "guest_watchdog_timeout": WATCHDOG_TIMEOUT,
            "guest_watchdog_interval": max(1, WATCHDOG_TIMEOUT // 4),
        },
        tmp,
        inventory,
    )
    report.set(
        "playbook guests", f"{'ok' if run['ok'] else 'failed'} ({run['seconds']:.1f} s)", run["ok"]
    )
    if not run["ok"]:
        raise Failed("vmhealth.kvm.guests failed")
    rtt, waited = guest.agent_ping()
    report.set(
        "agent ping",
        f"answered ({rtt:.2f} s" + (f", after {waited:.0f} s)" if waited >= 1 else ")"),
    )
    armed = guest.ssh(
        "for d in /sys/class/watchdog/watchdog*; do "
        'printf "%s|%s|%s|%s\\n" "${d##*/}" "$(cat $d/identity)" "$(cat $d/state)" '
        '"$(cat $d/timeout 2>/dev/null)"; done'
    )
    devices = [line.split("|") for line in armed.stdout.splitlines() if line.count("|") == 3]
    esb = [d for d in devices if d[1] == "i6300ESB timer"]
    if esb and esb[0][2] == "active":
        report.set("watchdog", f"armed on {esb[0][1]} (/dev/{esb[0][0]}, timeout {esb[0][3]} s)")
    else:
        report.set("watchdog", f"not armed: {devices or armed.stderr.strip()}", False)
        raise Failed("the i6300esb device is not armed in the guest")

    # 4c. vmhealth.kvm.crash_test: the playbook crashes the guest; the console and libvirt's
    # watchdog event time the reset.
    console = ConsoleWatch(workdir / "serial.log")
    stack.callback(console.stop)
    since = time.time()
    run = run_playbook(
        "crash_test",
        {
            "vmhealth_crash_test_confirm": CONFIRM,
            "vmhealth_crash_test_canaries": [GUEST],
            "vmhealth_crash_test_timeout": 420,
        },
        tmp,
        inventory,
    )
    console.stop()
    back = next(
        (m for _t, text in run["lines"] if (m := re.search(r"back after (\d+) s", text))), None
    )
    report.set(
        "playbook crash_test",
        f"{'ok' if run['ok'] else 'failed'} ({run['seconds']:.1f} s"
        + (f"; guest back {back.group(1)} s after the crash" if back else "")
        + ")",
        run["ok"],
    )
    crashed_at, how = console.found, f"console '{console.line}'"
    if crashed_at is None:
        task = next(
            (t for t, text in run["lines"] if text.startswith("TASK [Crash the kernel")), None
        )
        if task is not None:
            crashed_at, how = task + 2, "approximate: crash task start + its 2 s sleep"
    if crashed_at is None:
        report.set("crash to reset", "no crash seen", False)
    else:
        event = loop.wait(timeout=WATCHDOG_TIMEOUT + 60, since=since)
        if event is None:
            report.set("crash to reset", f"no libvirt watchdog event ({how})", False)
        else:
            seconds = event["time"] - crashed_at
            action = event["action"] == libvirt.VIR_DOMAIN_EVENT_WATCHDOG_RESET
            report.set(
                "crash to reset",
                f"{seconds:.1f} s (libvirt watchdog event, action "
                f"{'reset' if action else event['action']}; guest timeout {WATCHDOG_TIMEOUT} s)",
                action and 0 < seconds <= WATCHDOG_TIMEOUT + 30,
            )
    # The reporter's own trace after the reboot, read independently of the playbook.
    with contextlib.suppress(Failed):
        guest.wait_ssh(timeout=120)
    metric = guest.ssh(
        "cat /var/lib/prometheus/node-exporter/vmhealth_guest_watchdog.prom; "
        "echo ---; journalctl -b -t vmhealth-watchdog --no-pager -q -o cat"
    )
    prom, _sep, journal = metric.stdout.partition("---")
    line = RESET_METRIC.search(prom)
    journal_hit = "rebooted by watchdog" in journal
    report.set(
        "reset reported",
        f"yes ({line.group(0)}" + (", journal 'rebooted by watchdog')" if journal_hit else ")")
        if line
        else f"no (metric file: {prom.strip()[:120] or metric.stderr.strip()[:120]})",
        bool(line),
    )
    if not run["ok"]:
        raise Failed("vmhealth.kvm.crash_test failed")


def main() -> int:
    preflight()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True)
    report = Report()
    error = None
    tmp = Path(tempfile.mkdtemp(prefix="vmhealth-demo-"))
    try:
        with contextlib.ExitStack() as stack:
            if not KEEP:
                stack.callback(shutil.rmtree, tmp, True)
            try:
                demo(report, stack, tmp)
            except Failed as exc:
                error = str(exc)
            except KeyboardInterrupt as exc:
                error = f"interrupted ({exc or 'Ctrl-C'})"
            except Exception as exc:  # report it, then clean up
                error = f"{type(exc).__name__}: {exc}"
                import traceback

                traceback.print_exc()
            finally:
                log("cleaning up" if not KEEP else "VMHEALTH_DEMO_KEEP=1: keeping the guest")
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_IGN)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
    text = report.render(time.monotonic() - STARTED, error)
    (LOG_DIR / "report.txt").write_text(text + "\n")
    print("\n" + text, flush=True)
    if KEEP:
        print(f"\nkept: {tmp} (inventory.yml, id_ed25519); see docs/demo.md to remove the guest")
    return 0 if report.passed() and not error else 1


if __name__ == "__main__":
    sys.exit(main())
