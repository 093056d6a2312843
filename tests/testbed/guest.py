#!/usr/bin/env python
"""QEMU test bed for vmhealth.kvm's guest roles (guest_agent, guest_watchdog).

Builds (and caches) a Debian bookworm guest image with debootstrap, boots it
under qemu-system-x86_64 (q35, i6300esb with ``-action watchdog=reset``, a
virtio-serial port ``org.qemu.guest_agent.0`` on a unix socket, QMP sockets,
SSH forwarded on 127.0.0.1 only), and offers the host-side signals the molecule
scenarios verify with: a QMP event log, guest-ping over the agent socket and a
kernel crash through sysrq.

Everything a boot starts (QEMU and the QMP event logger) is recorded in pid
files inside the run directory; :func:`teardown` kills exactly those processes.

Used both as a library and as a command line (``guest.py --help``); the molecule
create/destroy/verify playbooks call the command line.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMAGE_RECIPE = (HERE / "image" / "build.sh", HERE / "image" / "packages.txt")

#: Guest agent virtio-serial port name (what udev exposes in /dev/virtio-ports).
AGENT_PORT_NAME = "org.qemu.guest_agent.0"
#: QMP events the logger records (anything else is recorded too, but these matter).
WATCH_EVENTS = ("WATCHDOG", "RESET", "SHUTDOWN", "STOP", "RESUME", "GUEST_PANICKED")
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 panic=0 net.ifnames=1"
DEFAULT_MEMORY_MIB = 1024
KVM_PROBE_TIMEOUT = 8.0


class TestbedError(RuntimeError):
    """An expected failure of the test bed (bad state, timeout, missing tool)."""


def _log(msg: str) -> None:
    print(f"[testbed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Image
# --------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where images and run directories live: $VMHEALTH_TESTBED_CACHE, else a machine-wide cache.

    Outside the work tree so that every clone on the machine (CI runs in a fresh one) reuses
    the image: /var/cache/vmhealth/testbed for root (traversable by libvirt's QEMU user),
    else $XDG_CACHE_HOME/vmhealth/testbed.
    """
    env = os.environ.get("VMHEALTH_TESTBED_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/vmhealth/testbed")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vmhealth" / "testbed"


def recipe_hash() -> str:
    """Short hash of the image recipe: any change to it selects a new image."""
    digest = hashlib.sha256()
    for path in IMAGE_RECIPE:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class Image:
    """A built guest image: disk, kernel, initrd and the root SSH key."""

    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def stamp(self) -> Path:
        return self.directory / "complete"


def build_image(force: bool = False) -> Image:
    """Return the cached image for the current recipe, building it if needed.

    The image directory is named after :func:`recipe_hash`; a ``complete``
    stamp marks a finished build. A lock file serialises concurrent builds.
    """
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    image = Image(root / f"image-bookworm-{recipe_hash()}")
    with open(root / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.stamp.exists() and not force:
            return image
        if image.directory.exists():
            shutil.rmtree(image.directory)
        started = time.monotonic()
        _log(f"building guest image {image.directory.name} (debootstrap, a few minutes)")
        subprocess.run([str(IMAGE_RECIPE[0]), str(image.directory)], check=True)
        image.ssh_key.chmod(0o600)
        elapsed = time.monotonic() - started
        image.stamp.write_text(json.dumps({"built": time.time(), "seconds": round(elapsed, 1)}))
        _log(f"image built in {elapsed:.0f} s")
        # Drop images of older recipes.
        for old in root.glob("image-bookworm-*"):
            if old != image.directory and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    return image


# --------------------------------------------------------------------------
# Boot / teardown
# --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kvm_works(image: Image) -> bool:
    """Probe KVM quickly: boot the kernel without a root disk and expect it to
    panic and exit (``-no-reboot``) within a few seconds. On hosts where KVM
    hangs, the probe is killed after ``KVM_PROBE_TIMEOUT`` seconds."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cmd = [
        "qemu-system-x86_64", "-accel", "kvm", "-machine", "q35", "-m", "256",
        "-display", "none", "-nodefaults", "-no-reboot", "-serial", "null",
        "-kernel", str(image.kernel), "-append", "panic=-1 root=/dev/nonexistent",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, timeout=KVM_PROBE_TIMEOUT, capture_output=True, check=False, start_new_session=True
        )
    except subprocess.TimeoutExpired:
        _log(f"KVM probe did not finish in {KVM_PROBE_TIMEOUT:.0f} s: using TCG")
        return False
    ok = proc.returncode == 0
    _log("KVM probe succeeded: using KVM" if ok else "KVM probe failed: using TCG")
    return ok


@dataclass
class Guest:
    """A booted test-bed guest, described by ``<run_dir>/guest.json``."""

    run_dir: str
    ssh_port: int
    ssh_key: str
    accel: str
    booted_at: float

    # Paths inside the run directory ------------------------------------
    @property
    def path(self) -> Path:
        return Path(self.run_dir)

    @property
    def qga_socket(self) -> Path:
        return self.path / "qga.sock"

    @property
    def qmp_socket(self) -> Path:
        """QMP socket held by the event logger."""
        return self.path / "qmp-events.sock"

    @property
    def qmp_command_socket(self) -> Path:
        """Second QMP socket, free for commands (quit)."""
        return self.path / "qmp.sock"

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def serial_log(self) -> Path:
        return self.path / "serial.log"

    @classmethod
    def load(cls, run_dir: str | Path) -> Guest:
        meta = Path(run_dir) / "guest.json"
        if not meta.exists():
            raise TestbedError(f"no guest in {run_dir} (missing guest.json)")
        return cls(**json.loads(meta.read_text()))

    def save(self) -> None:
        (self.path / "guest.json").write_text(json.dumps(asdict(self), indent=2))

    # SSH ---------------------------------------------------------------
    def ssh_argv(self, command: str) -> list[str]:
        return [
            "ssh", "-p", str(self.ssh_port), "-i", self.ssh_key,
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "root@127.0.0.1", command,
        ]  # fmt: skip

    def ssh(self, command: str, timeout: float = 120, check: bool = True) -> str:
        proc = subprocess.run(
            self.ssh_argv(command), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise TestbedError(f"ssh {command!r} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def wait_ssh(self, timeout: float = 300) -> float:
        """Wait until SSH runs a command; return the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                proc = subprocess.run(
                    self.ssh_argv("true"), capture_output=True, timeout=30, check=False
                )
                if proc.returncode == 0:
                    return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        raise TestbedError(f"SSH did not answer within {timeout:.0f} s (see {self.serial_log})")

    # Processes ---------------------------------------------------------
    def _pid(self, name: str) -> int | None:
        pidfile = self.path / name
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def qemu_running(self) -> bool:
        pid = self._pid("qemu.pid")
        return pid is not None and _alive(pid)

    def assert_running(self) -> None:
        if not self.qemu_running():
            raise TestbedError(f"QEMU is not running (see {self.path}/qemu.log, {self.serial_log})")

    # Guest agent -------------------------------------------------------
    def guest_ping(self, timeout: float = 10) -> float:
        """guest-sync-delimited, then guest-ping over the agent socket.

        Returns the round-trip seconds; raises TestbedError on timeout."""
        return agent_ping(self.qga_socket, timeout=timeout)

    def wait_agent(self, timeout: float = 300) -> float:
        """Wait until the guest agent answers guest-ping; return the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                self.guest_ping(timeout=min(10, max(1, deadline - time.monotonic())))
                return time.monotonic() - started
            except (TestbedError, OSError) as exc:
                last = exc
                time.sleep(2)
        raise TestbedError(f"guest agent did not answer within {timeout:.0f} s: {last}")

    # Crash ---------------------------------------------------------------
    def crash(self) -> float:
        """Panic the guest kernel through sysrq; return the host time of the crash.

        The guest prints a marker, waits 0.2 s and triggers the crash; the host
        time of the marker plus 0.2 s is the crash time (no guest clock used)."""
        proc = subprocess.Popen(
            self.ssh_argv("echo 1 > /proc/sys/kernel/sysrq; sync; echo CRASHING; sleep 0.2; echo c > /proc/sysrq-trigger"),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        crashed_at = None
        try:
            line = proc.stdout.readline()
            if line.strip() == "CRASHING":
                crashed_at = time.time() + 0.2
        finally:
            time.sleep(1)
            proc.kill()
            proc.wait()
        if crashed_at is None:
            raise TestbedError("could not trigger the crash over ssh")
        return crashed_at

    # QMP events ----------------------------------------------------------
    def events(self, names: tuple[str, ...] | None = None, since: float = 0.0) -> list[dict]:
        """QMP events logged since ``since`` (host epoch seconds)."""
        found = []
        if not self.events_file.exists():
            return found
        for line in self.events_file.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("t", 0) < since:
                continue
            if names and event.get("event") not in names:
                continue
            found.append(event)
        return found

    def wait_event(self, name: str, since: float, timeout: float) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.events((name,), since=since)
            if found:
                return found[0]
            time.sleep(0.2)
        raise TestbedError(f"no QMP {name} event within {timeout:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def boot(
    run_dir: str | Path,
    image: Image | None = None,
    memory_mib: int = DEFAULT_MEMORY_MIB,
    accel: str | None = None,
) -> Guest:
    """Boot a guest from a fresh qcow2 overlay of the cached image.

    QEMU is daemonised with a pid file; a detached QMP event logger writes
    ``events.jsonl``. Returns once QEMU runs (not once the guest is up:
    see :meth:`Guest.wait_ssh` and :meth:`Guest.wait_agent`)."""
    image = image or build_image()
    run = Path(run_dir).resolve()
    if run.exists():
        teardown(run)
        shutil.rmtree(run)
    run.mkdir(parents=True)

    accel = accel or os.environ.get("VMHEALTH_ACCEL") or ("kvm" if kvm_works(image) else "tcg")
    overlay = run / "disk.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            str(image.disk),
            str(overlay),
        ],
        check=True,
    )
    key = run / "id_ed25519"
    shutil.copy(image.ssh_key, key)
    key.chmod(0o600)

    for attempt in range(3):
        port = _free_port()
        guest = Guest(str(run), port, str(key), accel, time.time())
        cmd = [
            "qemu-system-x86_64",
            "-name", "vmhealth-guest",
            "-accel", accel,
            "-machine", "q35",
            *([] if accel == "tcg" else ["-cpu", "host"]),
            "-smp", "1",
            "-m", str(memory_mib),
            "-nodefaults", "-display", "none", "-vga", "none",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", KERNEL_CMDLINE,
            "-drive", f"file={overlay},if=virtio,format=qcow2,discard=unmap",
            "-device", "i6300esb",
            "-action", "watchdog=reset",
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=qga0,path={guest.qga_socket},server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=qga0,name={AGENT_PORT_NAME}",
            "-qmp", f"unix:{guest.qmp_socket},server=on,wait=off",
            "-qmp", f"unix:{guest.qmp_command_socket},server=on,wait=off",
            "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{guest.serial_log}",
            "-pidfile", str(run / "qemu.pid"),
            "-daemonize",
        ]  # fmt: skip
        (run / "qemu.cmdline").write_text(" ".join(cmd) + "\n")
        with open(run / "qemu.log", "ab") as qlog:
            proc = subprocess.run(cmd, stdout=qlog, stderr=qlog, check=False)
        if proc.returncode == 0:
            break
        log = (run / "qemu.log").read_text(errors="replace")
        if "hostfwd" in log or "Could not set up host forwarding" in log:
            _log(f"port {port} taken, retrying ({attempt + 1})")
            continue
        raise TestbedError(f"QEMU failed to start: {log.strip()}")
    else:
        raise TestbedError("QEMU failed to start: no free SSH port")
    guest.save()
    _start_event_logger(guest)
    _log(f"booted ({accel}); ssh -p {port} -i {key} root@127.0.0.1; run dir {run}")
    return guest


def _start_event_logger(guest: Guest) -> None:
    logger = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "qmp-logger", str(guest.path)],
        stdin=subprocess.DEVNULL,
        stdout=open(guest.path / "qmp-logger.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (guest.path / "qmp-logger.pid").write_text(f"{logger.pid}\n")
    deadline = time.time() + 10
    while time.time() < deadline:
        if guest.events(("QMP_CONNECTED",)):
            return
        time.sleep(0.1)
    raise TestbedError("QMP event logger did not connect")


def teardown(run_dir: str | Path, timeout: float = 10) -> list[int]:
    """Kill every process a boot in ``run_dir`` started (from its pid files).

    QEMU first gets a QMP ``quit``; anything still alive gets SIGTERM, then
    SIGKILL. Returns the pids that were running."""
    run = Path(run_dir)
    killed: list[int] = []
    qmp = run / "qmp.sock"
    if qmp.exists():
        with contextlib.suppress(OSError, TestbedError, ValueError):
            QMP(qmp, timeout=3).command("quit")
    for name in ("qemu.pid", "qmp-logger.pid"):
        try:
            pid = int((run / name).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _alive(pid) or not _is_ours(pid, run):
            continue
        killed.append(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in ("qemu.pid", "qmp-logger.pid"):
        with contextlib.suppress(OSError):
            (run / name).unlink()
    return killed


def _is_ours(pid: int, run: Path) -> bool:
    """True if the process's command line mentions our run directory (guards
    against a recycled pid belonging to someone else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return str(run.resolve()) in cmdline or str(run) in cmdline


@contextlib.contextmanager
def booted(run_dir: str | Path, **kwargs):
    """Context manager: boot, yield the guest, always tear down (also on
    exceptions, SIGTERM/SIGINT and interpreter exit)."""
    run = Path(run_dir)
    atexit.register(teardown, run)
    previous = {}

    def _on_signal(signum, _frame):
        teardown(run)
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[sig] = signal.signal(sig, _on_signal)
    try:
        yield boot(run, **kwargs)
    finally:
        teardown(run)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        atexit.unregister(teardown)


# --------------------------------------------------------------------------
# QMP and guest agent clients
# --------------------------------------------------------------------------
class QMP:
    """Minimal QMP client over a unix socket (capabilities negotiated on connect)."""

    def __init__(self, path: str | Path, timeout: float = 10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("r", encoding="utf-8")
        greeting = self.read()
        if "QMP" not in greeting:
            raise TestbedError(f"unexpected QMP greeting: {greeting}")
        self.command("qmp_capabilities")

    def read(self) -> dict:
        line = self.reader.readline()
        if not line:
            raise TestbedError("QMP connection closed")
        return json.loads(line)

    def command(self, name: str, **arguments) -> dict:
        msg: dict = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self.read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise TestbedError(f"QMP {name} failed: {reply['error']}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def qmp_logger(run_dir: str | Path) -> int:
    """Hold a QMP connection and append every event, with the host time, to
    events.jsonl. Exits when QEMU closes the connection."""
    guest = Guest.load(run_dir)
    out = open(guest.events_file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    qmp = None
    for _attempt in range(50):
        try:
            qmp = QMP(guest.qmp_socket, timeout=None)  # type: ignore[arg-type]
            break
        except OSError:
            time.sleep(0.1)
    if qmp is None:
        return 1
    out.write(json.dumps({"event": "QMP_CONNECTED", "t": time.time()}) + "\n")
    while True:
        try:
            msg = qmp.read()
        except (TestbedError, OSError, ValueError):
            out.write(json.dumps({"event": "QMP_CLOSED", "t": time.time()}) + "\n")
            return 0
        if "event" in msg:
            msg["t"] = time.time()
            out.write(json.dumps(msg) + "\n")


def agent_command(
    path: str | Path, execute: str, arguments: dict | None = None, timeout: float = 10
):
    """Run one guest-agent command on the agent's unix socket; return its result.

    A guest-sync-delimited exchange comes first: the agent flushes stale input
    and answers with a 0xFF sentinel and our sync id, so replies to earlier
    (possibly unanswered) requests are skipped. Raises TestbedError on a
    timeout or an error reply."""
    deadline = time.monotonic() + timeout
    sync_id = int(time.time() * 1000) % 2_000_000_000
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sync = {"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}
        sock.sendall(b"\xff" + json.dumps(sync).encode() + b"\n")
        buf = b""

        def read_json() -> dict:
            nonlocal buf
            while True:
                if b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.replace(b"\xff", b"").strip()
                    if line:
                        with contextlib.suppress(json.JSONDecodeError):
                            return json.loads(line)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TestbedError(f"guest agent did not answer within {timeout:.0f} s")
                sock.settimeout(remaining)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError as exc:
                    raise TestbedError(
                        f"guest agent did not answer within {timeout:.0f} s"
                    ) from exc
                if not chunk:
                    raise TestbedError("guest agent socket closed")
                buf += chunk

        while read_json().get("return") != sync_id:
            pass
        msg: dict = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = read_json()
    if "error" in reply:
        raise TestbedError(f"guest agent {execute} failed: {reply['error']}")
    if "return" not in reply:
        raise TestbedError(f"unexpected guest agent reply to {execute}: {reply}")
    return reply["return"]


def agent_ping(path: str | Path, timeout: float = 10) -> float:
    """guest-sync-delimited then guest-ping; return the round trip in seconds."""
    started = time.monotonic()
    result = agent_command(path, "guest-ping", timeout=timeout)
    if result != {}:
        raise TestbedError(f"unexpected guest-ping reply: {result}")
    return time.monotonic() - started


# --------------------------------------------------------------------------
# Command line (used by the molecule playbooks)
# --------------------------------------------------------------------------
def _default_run_dir() -> str:
    return str(cache_dir() / "run" / "default")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="build (or reuse) the cached guest image; print its directory")
    p_up = sub.add_parser("up", help="build, boot, wait for SSH; print the guest as JSON")
    p_up.add_argument("run_dir", nargs="?", default=_default_run_dir())
    p_up.add_argument("--ssh-timeout", type=float, default=420)
    for name, helptext in (
        ("down", "kill every process the boot in RUN_DIR started"),
        ("ping", "guest-ping over the agent socket"),
        ("qmp-logger", argparse.SUPPRESS),
        ("events", "print the logged QMP events"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("run_dir", nargs="?", default=_default_run_dir())
        if name == "ping":
            p.add_argument("--timeout", type=float, default=10)
            p.add_argument("--wait", type=float, default=0, help="retry for up to WAIT seconds")
    p_agent = sub.add_parser("agent", help="run one guest agent command; print its result as JSON")
    p_agent.add_argument("run_dir")
    p_agent.add_argument("execute", help="command name, e.g. guest-info")
    p_agent.add_argument("--arguments", default=None, help="JSON object of arguments")
    p_agent.add_argument("--timeout", type=float, default=10)
    p_crash = sub.add_parser(
        "crash-test",
        help="crash the guest; wait for WATCHDOG, SSH and the agent; print timings as JSON",
    )
    p_crash.add_argument("run_dir", nargs="?", default=_default_run_dir())
    p_crash.add_argument("--watchdog-timeout", type=float, default=40)
    p_crash.add_argument("--return-timeout", type=float, default=420)
    p_soak = sub.add_parser(
        "soak", help="load the guest for MINUTES; fail on any WATCHDOG/RESET event"
    )
    p_soak.add_argument("run_dir", nargs="?", default=_default_run_dir())
    p_soak.add_argument(
        "--minutes", type=float, default=float(os.environ.get("VMHEALTH_SOAK_MINUTES", "5"))
    )
    args = parser.parse_args(argv)

    try:
        if args.cmd == "build":
            started = time.monotonic()
            image = build_image()
            print(
                json.dumps(
                    {"image": str(image.directory), "seconds": round(time.monotonic() - started, 1)}
                )
            )
        elif args.cmd == "up":
            t0 = time.monotonic()
            image = build_image()
            t_image = time.monotonic() - t0
            guest = boot(args.run_dir, image=image)
            try:
                t_ssh = guest.wait_ssh(timeout=args.ssh_timeout)
            except Exception:
                teardown(args.run_dir)
                raise
            result = asdict(guest) | {
                "image_seconds": round(t_image, 1),
                "boot_to_ssh_seconds": round(t_ssh, 1),
                "qga_socket": str(guest.qga_socket),
            }
            (guest.path / "timings-up.json").write_text(json.dumps(result))
            print(json.dumps(result))
        elif args.cmd == "down":
            print(json.dumps({"killed": teardown(args.run_dir)}))
        elif args.cmd == "ping":
            guest = Guest.load(args.run_dir)
            if args.wait:
                waited = guest.wait_agent(timeout=args.wait)
                print(json.dumps({"ping": "ok", "waited_seconds": round(waited, 1)}))
            else:
                rtt = guest.guest_ping(timeout=args.timeout)
                print(json.dumps({"ping": "ok", "rtt_seconds": round(rtt, 3)}))
        elif args.cmd == "agent":
            guest = Guest.load(args.run_dir)
            arguments = json.loads(args.arguments) if args.arguments else None
            print(
                json.dumps(agent_command(guest.qga_socket, args.execute, arguments, args.timeout))
            )
        elif args.cmd == "qmp-logger":
            return qmp_logger(args.run_dir)
        elif args.cmd == "events":
            for event in Guest.load(args.run_dir).events():
                print(json.dumps(event))
        elif args.cmd == "crash-test":
            guest = Guest.load(args.run_dir)
            result = crash_test(guest, args.watchdog_timeout, args.return_timeout)
            (guest.path / "timings-crash.json").write_text(json.dumps(result))
            print(json.dumps(result))
        elif args.cmd == "soak":
            guest = Guest.load(args.run_dir)
            result = soak(guest, args.minutes)
            (guest.path / "timings-soak.json").write_text(json.dumps(result))
            print(json.dumps(result))
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


def crash_test(guest: Guest, watchdog_timeout: float, return_timeout: float) -> dict:
    """Panic the guest (kernel cmdline panic=0: it hangs, only the watchdog can
    reset it) and measure crash → WATCHDOG event → SSH → agent reply."""
    guest.assert_running()
    crashed_at = guest.crash()
    _log("guest kernel crashed; waiting for the QMP WATCHDOG event")
    event = guest.wait_event("WATCHDOG", since=crashed_at - 1, timeout=watchdog_timeout + 5)
    reset_at = event["t"]
    waited_agent = guest.wait_agent(timeout=return_timeout)
    agent_at = time.time()
    guest.wait_ssh(timeout=return_timeout)
    return {
        "watchdog_event": event,
        "crash_to_watchdog_seconds": round(reset_at - crashed_at, 1),
        "watchdog_to_agent_seconds": round(agent_at - reset_at, 1),
        "agent_wait_seconds": round(waited_agent, 1),
        "within_limit": reset_at - crashed_at <= watchdog_timeout,
        "events": guest.events(WATCH_EVENTS, since=crashed_at - 1),
    }


SOAK_SCRIPT = r"""
set -eu
end=$(( $(date +%s) + {seconds} ))
# CPU: two busy loops on the single vCPU (load average about 2-3).
for i in 1 2; do ( while [ "$(date +%s)" -lt "$end" ]; do :; done ) & done
# Memory: hold and keep rewriting about 40 % of RAM.
python3 - "$end" <<'PY' &
import sys, time
end = int(sys.argv[1])
size = int(open("/proc/meminfo").read().split()[1]) * 1024 * 4 // 10
buf = bytearray(size)
while time.time() < end:
    for off in range(0, size, 4096):
        buf[off] = (buf[off] + 1) % 256
    time.sleep(1)
PY
wait
cat /proc/loadavg
"""


def soak(guest: Guest, minutes: float) -> dict:
    """CPU and memory load for ``minutes``; fail if QEMU logs a WATCHDOG,
    RESET or SHUTDOWN event meanwhile (the healthy guest must never be reset)."""
    seconds = int(minutes * 60)
    started = time.time()
    proc = subprocess.Popen(
        guest.ssh_argv(SOAK_SCRIPT.replace("{seconds}", str(seconds))),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pings = 0
    failures = []
    while proc.poll() is None and time.time() - started < seconds + 120:
        bad = guest.events(("WATCHDOG", "RESET", "SHUTDOWN"), since=started)
        if bad:
            proc.kill()
            raise TestbedError(f"guest was reset during the soak: {bad}")
        try:
            guest.guest_ping(timeout=20)
            pings += 1
        except (TestbedError, OSError) as exc:
            failures.append(str(exc))
        time.sleep(15)
    out, err = proc.communicate(timeout=60)
    bad = guest.events(("WATCHDOG", "RESET", "SHUTDOWN"), since=started)
    if bad:
        raise TestbedError(f"guest was reset during the soak: {bad}")
    if proc.returncode != 0:
        raise TestbedError(f"soak load script failed ({proc.returncode}): {err.strip()}")
    return {
        "soak_seconds": round(time.time() - started, 1),
        "agent_pings_ok": pings,
        "agent_ping_failures": failures,
        "loadavg_at_end": out.strip(),
    }


if __name__ == "__main__":
    sys.exit(main())
