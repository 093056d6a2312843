"""qemu_watchdog on libvirt.

* ``test_test_driver``: the target's fast scenario against libvirt's in-memory test:///default.
* ``test_real_domain``: a real run. libvirtd and virtlogd are started here when they are not
  running (and stopped afterwards, by pid, only if started here). A QEMU (TCG) domain is defined
  from the test-bed guest image (tests/testbed/guest.py: Debian bookworm, direct kernel boot,
  q35, virtio channel org.qemu.guest_agent.0, SSH forwarded on 127.0.0.1) *without* a watchdog.
  The target's playbook runs the module (check mode, add + restart, repeat) and the
  guest_watchdog role (systemd backend) in the guest. Then the guest kernel panics
  (``echo c > /proc/sysrq-trigger`` over SSH; panic=0, so only the watchdog can bring it back)
  and the test waits for libvirt's VIR_DOMAIN_EVENT_ID_WATCHDOG event (libvirt-python event
  loop), measuring crash-to-reset. The figures go to $VMHEALTH_WATCHDOG_TIMINGS (default
  <tmp>/libvirt-timings.json) and the test output.

Skipped when not root, or when qemu-system-x86_64, libvirtd or libvirt-python are missing.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import REPO, TARGETS, VENV_BIN, Cluster, assert_ok

libvirt = pytest.importorskip("libvirt")

from testbed.libvirt_domain import (  # noqa: E402  (after the importorskip)
    IMAGES,
    TOOLS,
    EventLoop,
    copy_ssh_key,
    crash,
    domain_xml,
    libvirt_daemons,
    prepare_domain_dir,
    remove_domain,
    ssh_argv,
)

GUEST_TIMEOUT = (
    16  # guest watchdog timeout (s): the reset is expected about this long after the panic
)


def test_test_driver(tmp_path):
    runner = Cluster("/nonexistent-kubeconfig", workdir=tmp_path)
    assert_ok(runner.run_target("qemu_watchdog_libvirt", lv_scenario="test_driver"))


# -- the real run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def libvirtd():
    """libvirtd + virtlogd, started here when not running; stopped afterwards if started here."""
    if os.geteuid() != 0:
        pytest.skip("the real libvirt run needs root")
    for tool in TOOLS:
        if not shutil.which(tool):
            pytest.skip("{0} not installed (see tests/debian-packages.txt)".format(tool))
    with libvirt_daemons():
        yield


def test_real_domain(libvirtd, tmp_path):
    from testbed.guest import _free_port, build_image

    timings = {}
    t0 = time.monotonic()
    image = build_image()
    timings["image_seconds"] = round(time.monotonic() - t0, 1)

    name = "vmhealth-wd-" + uuid.uuid4().hex[:8]
    workdir = IMAGES / name
    prepare_domain_dir(image, workdir)
    key = copy_ssh_key(image, tmp_path / "id_ed25519")
    ssh_port = _free_port()

    loop = EventLoop()
    conn = libvirt.open("qemu:///system")
    dom = conn.defineXML(domain_xml(name, workdir, ssh_port))
    callback = conn.domainEventRegisterAny(
        dom, libvirt.VIR_DOMAIN_EVENT_ID_WATCHDOG, loop.on_watchdog, None
    )
    try:
        dom.create()
        assert "<watchdog" not in dom.XMLDesc(0)
        runner = Cluster("/nonexistent-kubeconfig", workdir=tmp_path)
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                str(VENV_BIN / "ansible-playbook"),
                str(TARGETS / "qemu_watchdog_libvirt" / "playbook.yml"),
                "-e",
                json.dumps(
                    {
                        "lv_uri": "qemu:///system",
                        "lv_domain": name,
                        "lv_ssh_port": ssh_port,
                        "lv_ssh_key": str(key),
                        "lv_guest_timeout": GUEST_TIMEOUT,
                    }
                ),
            ],
            env=runner.env(),
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        timings["playbook_seconds"] = round(time.monotonic() - t0, 1)
        assert_ok(proc)
        live = dom.XMLDesc(0)
        assert "<watchdog model='i6300esb' action='reset'" in live

        # The guest now pings the armed device through systemd; make sure it is armed.
        status = subprocess.run(
            ssh_argv(ssh_port, key, "cat /sys/class/watchdog/watchdog*/state /sys/class/watchdog/watchdog*/identity"),
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert "active" in status and "i6300ESB" in status, status

        crashed_at = crash(ssh_port, key)
        event = loop.wait(timeout=GUEST_TIMEOUT + 60)
        assert event is not None, "no libvirt watchdog event within {0} s after the panic".format(
            GUEST_TIMEOUT + 60
        )
        assert event["domain"] == name
        assert event["action"] == libvirt.VIR_DOMAIN_EVENT_WATCHDOG_RESET
        timings["crash_to_reset_seconds"] = round(event["time"] - crashed_at, 1)
        timings["guest_watchdog_timeout"] = GUEST_TIMEOUT
        # The reset happens after the guest's watchdog timeout, not long after it.
        assert GUEST_TIMEOUT / 2 - 2 <= timings["crash_to_reset_seconds"] <= GUEST_TIMEOUT + 30
        assert dom.isActive()
    finally:
        out = Path(os.environ.get("VMHEALTH_WATCHDOG_TIMINGS", tmp_path / "libvirt-timings.json"))
        out.write_text(json.dumps(timings, indent=2))
        print("qemu_watchdog libvirt timings:", json.dumps(timings), file=sys.stderr)
        with contextlib.suppress(libvirt.libvirtError):
            conn.domainEventDeregisterAny(callback)
        remove_domain(dom)
        loop.stop(conn)
        conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
