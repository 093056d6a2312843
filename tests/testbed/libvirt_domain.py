"""The test-bed guest as a real libvirt domain (QEMU, TCG).

Shared by tests/integration/test_qemu_watchdog_libvirt.py and scripts/demo.py:

* :func:`libvirt_daemons`: virtlogd and libvirtd, started when they are not running and stopped
  afterwards (by pid, only those started here);
* :class:`EventLoop`: libvirt's default event loop in a thread, recording
  VIR_DOMAIN_EVENT_ID_WATCHDOG events with the host time;
* :func:`prepare_domain_dir` and :func:`domain_xml`: a domain directory with a qcow2 overlay of
  the cached test-bed image and a domain definition with direct kernel boot, q35, the guest
  agent's virtio channel and SSH forwarded on 127.0.0.1 (QEMU user networking through
  ``<qemu:commandline>``: libvirt 9.0 has no passt), without a watchdog or panic device;
* :func:`ssh_argv` and :func:`crash`: commands in the guest and a kernel panic over SSH.

Needs root, libvirt-python, libvirtd, qemu-system-x86_64 and qemu-img.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import libvirt
from testbed.guest import AGENT_PORT_NAME, KERNEL_CMDLINE, Image

#: Where domain directories go (the libvirt-qemu user can reach it; AppArmor allows it).
IMAGES = Path("/var/lib/libvirt/images")
DAEMONS = (("virtlogd", "/run/virtlogd.pid"), ("libvirtd", "/run/libvirtd.pid"))
TOOLS = ("libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "virsh", "ssh")


def pid_alive(pidfile: str | Path) -> int | None:
    """The pid in ``pidfile`` if that process exists, else None."""
    try:
        pid = int(Path(pidfile).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def libvirt_daemons(uri: str = "qemu:///system", timeout: float = 20):
    """virtlogd + libvirtd, started here when not running; stopped afterwards if started here.

    Yields the list of ``(daemon, pid)`` started here (empty when both already ran)."""
    started: list[tuple[str, int]] = []
    try:
        for daemon, pidfile in DAEMONS:
            if pid_alive(pidfile):
                continue
            subprocess.run([daemon, "-d"], check=True)
            deadline = time.monotonic() + timeout
            while not pid_alive(pidfile) and time.monotonic() < deadline:
                time.sleep(0.2)
            pid = pid_alive(pidfile)
            if not pid:
                raise RuntimeError(f"{daemon} did not start")
            started.append((daemon, pid))
        deadline = time.monotonic() + timeout
        while True:
            try:
                libvirt.open(uri).close()
                break
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield started
    finally:
        stop_daemons(started)


def stop_daemons(started: list[tuple[str, int]], timeout: float = 15) -> None:
    """SIGTERM the daemons started here (last started first) and wait for them to exit."""
    for _daemon, pid in reversed(started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


class EventLoop:
    """libvirt's default event loop in a thread, collecting watchdog events with host times.

    Create it before opening the connection whose events it should receive."""

    def __init__(self):
        libvirt.virEventRegisterDefaultImpl()
        self.events: list[dict] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            libvirt.virEventRunDefaultImpl()

    def on_watchdog(self, _conn, dom, action, _opaque):
        self.events.append({"time": time.time(), "domain": dom.name(), "action": action})

    def wait(self, timeout: float, since: float = 0.0) -> dict | None:
        """The first event at or after ``since`` (host epoch), waiting up to ``timeout`` s."""
        deadline = time.time() + timeout
        while True:
            found = [event for event in self.events if event["time"] >= since]
            if found:
                return found[0]
            if time.time() >= deadline:
                return None
            time.sleep(0.05)

    def stop(self, conn=None):
        self._stop = True
        # Wake the loop with a short timer so the thread sees _stop.
        libvirt.virEventAddTimeout(0, lambda *_: None, None)
        self.thread.join(timeout=5)


def prepare_domain_dir(image: Image, workdir: Path) -> None:
    """Create ``workdir`` with a qcow2 overlay of the image (disk.qcow2), vmlinuz and initrd.img.

    The overlay's backing file must be readable by the QEMU process (user libvirt-qemu): the
    image directory and disk become world-readable, its parents world-searchable."""
    workdir.mkdir(parents=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.disk),
         str(workdir / "disk.qcow2")],
        check=True,
    )  # fmt: skip
    for part in ("vmlinuz", "initrd.img"):
        shutil.copy(image.directory / part, workdir / part)
    for path in (image.directory, image.disk):
        path.chmod(path.stat().st_mode | 0o005)
    for parent in list(image.directory.parents)[:-1]:
        parent.chmod(parent.stat().st_mode | 0o001)


def copy_ssh_key(image: Image, dest: Path) -> Path:
    """A copy of the image's root SSH key at ``dest``, mode 0600 (ssh refuses looser ones)."""
    shutil.copy(image.ssh_key, dest)
    dest.chmod(0o600)
    return dest


def domain_xml(name: str, workdir: Path, ssh_port: int, memory_mib: int = 1024) -> str:
    """A q35 TCG domain booting the kernel of ``workdir`` with its overlay as /dev/vda.

    No watchdog and no panic device (with a panic device, libvirt's default
    ``on_crash=destroy`` would stop a panicking guest instead of letting its watchdog reset
    it). The console goes to ``workdir/serial.log``; SSH is forwarded from 127.0.0.1:ssh_port."""
    return """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{workdir}/vmlinuz</kernel>
    <initrd>{workdir}/initrd.img</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='{workdir}/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'><target type='virtio' name='{agent}'/></channel>
    <serial type='file'><source path='{workdir}/serial.log'/></serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=vmhealthnet,hostfwd=tcp:127.0.0.1:{port}-:22'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=vmhealthnet,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>
</domain>""".format(
        name=name,
        memory=memory_mib,
        workdir=workdir,
        cmdline=KERNEL_CMDLINE,
        agent=AGENT_PORT_NAME,
        port=ssh_port,
    )


def remove_domain(dom, workdir: Path | None = None) -> None:
    """Destroy (if running) and undefine the domain, then remove its directory."""
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def ssh_argv(port: int, key: str | Path, command: str) -> list[str]:
    return [
        "ssh", "-p", str(port), "-i", str(key), "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10", "root@127.0.0.1", command,
    ]  # fmt: skip


def crash(port: int, key: str | Path) -> float:
    """Panic the guest kernel over SSH; return the host time of the crash."""
    proc = subprocess.Popen(
        ssh_argv(port, key, "echo 1 > /proc/sys/kernel/sysrq; sync; echo CRASHING; sleep 0.2; "
                 "echo c > /proc/sysrq-trigger"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    crashed_at = time.time() + 0.2 if line.strip() == "CRASHING" else None
    time.sleep(1)
    proc.kill()
    proc.wait()
    if not crashed_at:
        raise AssertionError("could not trigger the crash over ssh")
    return crashed_at
