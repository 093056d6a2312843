"""Unit tests of qemu_watchdog's libvirt backend.

The domain-XML part is tested on literal XML; the connection part against libvirt's test driver
(``test:///default``, in-memory: its state lives as long as one connection is open).
"""

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import (
    WatchdogSpec,
    reconcile,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.libvirt import (
    LibvirtBackend,
    parse_domain,
    plan_domain_xml,
    resolve_model,
)

libvirt = pytest.importorskip("libvirt")


def domain(machine="pc-q35-7.2", arch="x86_64", devices="", metadata="", name="dom1", dtype="kvm"):
    return (
        "<domain type='{dtype}'><name>{name}</name>{metadata}<memory>1048576</memory><vcpu>1</vcpu>"
        "<os><type arch='{arch}' machine='{machine}'>hvm</type></os>"
        "<devices><disk type='file' device='disk'><source file='/x.img'/><target dev='vda' bus='virtio'/></disk>"
        "{devices}</devices></domain>"
    ).format(dtype=dtype, name=name, metadata=metadata, arch=arch, machine=machine, devices=devices)


def spec(**kw):
    params = {"platform": "libvirt", "state": "present", "model": "auto", "restart": "never"}
    params.update(kw)
    return WatchdogSpec.from_params(params)


def devices_of(xml):
    root = ET.fromstring(xml)
    return [(e.tag, dict(e.attrib)) for e in root.find("devices") if e.tag in ("watchdog", "panic")]


def test_parse_domain():
    facts = parse_domain(
        domain(devices="<watchdog model='ib700'/><panic model='isa'/>", machine="pc-i440fx-7.2")
    )
    assert facts.watchdogs == [("ib700", "reset")] and facts.panics == ["isa"]
    assert facts.chipset == "i440fx" and facts.arch == "x86_64" and not facts.windows
    assert parse_domain(domain(machine="q35")).chipset == "q35"
    assert parse_domain(domain(machine="pc")).chipset == "i440fx"
    assert parse_domain(domain(machine="s390-ccw-virtio", arch="s390x")).chipset == "s390"
    win = domain(
        metadata="<metadata><libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>"
        "<libosinfo:os id='http://microsoft.com/win/2k22'/></libosinfo:libosinfo></metadata>"
    )
    assert parse_domain(win).windows
    with pytest.raises(VmHealthError):
        parse_domain("<domain")


@pytest.mark.parametrize(
    "model, machine, arch, expected",
    [
        ("auto", "pc-q35-7.2", "x86_64", "i6300esb"),
        ("auto", "s390-ccw-virtio", "s390x", "diag288"),
        ("itco", "q35", "x86_64", "itco"),
        ("ib700", "pc-i440fx-7.2", "x86_64", "ib700"),
        ("i6300esb", "virt", "aarch64", "i6300esb"),
    ],
)
def test_resolve_model(model, machine, arch, expected):
    assert (
        resolve_model(spec(model=model), parse_domain(domain(machine=machine, arch=arch)))
        == expected
    )


@pytest.mark.parametrize(
    "model, machine, arch, message",
    [
        ("auto", "virt", "aarch64", "model auto: no default watchdog for architecture aarch64"),
        (
            "ib700",
            "pc-q35-7.2",
            "x86_64",
            "model ib700: an ISA device that only i440fx machines have",
        ),
        (
            "itco",
            "pc-i440fx-7.2",
            "x86_64",
            "model itco: the iTCO watchdog is part of the q35 chipset",
        ),
        ("diag288", "q35", "x86_64", "model diag288: only s390 machines have it"),
        (
            "i6300esb",
            "s390-ccw-virtio",
            "s390x",
            "model i6300esb: s390 machines have no PCI watchdog",
        ),
    ],
)
def test_resolve_model_rejects(model, machine, arch, message):
    with pytest.raises(VmRejected) as err:
        resolve_model(spec(model=model), parse_domain(domain(machine=machine, arch=arch)))
    assert message in str(err.value)


def test_plan_adds_watchdog_and_is_idempotent():
    xml = domain()
    new, before, after = plan_domain_xml(xml, spec())
    assert before == {} and after == {"watchdog": [{"model": "i6300esb", "action": "reset"}]}
    assert devices_of(new) == [("watchdog", {"model": "i6300esb", "action": "reset"})]
    assert plan_domain_xml(new, spec()) == (None, after, after)
    # The disk is still there.
    assert ET.fromstring(new).find("devices/disk/target").get("dev") == "vda"


def test_plan_keeps_address_changes_action_removes_other_models():
    xml = domain(
        devices="<watchdog model='itco' action='reset'/>"
        "<watchdog model='i6300esb' action='reset'><address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/></watchdog>"
    )
    new, before, after = plan_domain_xml(xml, spec(action="poweroff"))
    assert len(before["watchdog"]) == 2
    assert after == {"watchdog": [{"model": "i6300esb", "action": "poweroff"}]}
    element = ET.fromstring(new).find("devices/watchdog")
    assert element.find("address").get("slot") == "0x09"


def test_missing_action_counts_as_reset():
    xml = domain(devices="<watchdog model='i6300esb'/>")
    assert plan_domain_xml(xml, spec(action="reset"))[0] is None


def test_plan_absent_by_model():
    xml = domain(
        devices="<watchdog model='itco' action='pause'/><watchdog model='i6300esb' action='pause'/>"
    )
    new, _unused1, after = plan_domain_xml(xml, spec(state="absent", model="itco"))
    assert after == {"watchdog": [{"model": "i6300esb", "action": "pause"}]}
    new, _unused1, after = plan_domain_xml(xml, spec(state="absent"))
    assert after == {} and devices_of(new) == []
    assert plan_domain_xml(domain(), spec(state="absent"))[0] is None


def test_plan_panic():
    xml = domain(devices="<panic model='isa'/><panic model='hyperv'/>")
    new, before, after = plan_domain_xml(xml, spec(state="absent", panic_device="hyperv"))
    assert before == {"panic": ["isa", "hyperv"]} and after == {"panic": ["hyperv"]}
    new, _unused1, after = plan_domain_xml(xml, spec(state="absent", panic_device="none"))
    assert after == {} and devices_of(new) == []
    with pytest.raises(VmRejected, match="panic_device isa: an x86 device"):
        plan_domain_xml(
            domain(machine="virt", arch="aarch64"), spec(state="absent", panic_device="isa")
        )
    # Without panic_device the panic devices stay and are not part of the view.
    new, before, after = plan_domain_xml(xml, spec())
    assert "panic" not in before and ("panic", {"model": "isa"}) in devices_of(new)


def test_metadata_namespace_prefix_survives():
    meta = (
        "<metadata><libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>"
        "<libosinfo:os id='http://debian.org/debian/12'/></libosinfo:libosinfo></metadata>"
    )
    new, _unused1, _unused2 = plan_domain_xml(domain(metadata=meta), spec())
    assert "libosinfo:os" in new


# -- against libvirt's test driver ---------------------------------------------------------


@pytest.fixture
def conn():
    connection = libvirt.open("test:///default")
    created = []

    def define(xml, start=False):
        dom = connection.defineXML(xml)
        created.append(dom)
        if start:
            dom.create()
        return dom

    connection.define = define
    yield connection
    for dom in created:
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        except libvirt.libvirtError:
            pass
    connection.close()


def backend(conn, name, **kw):
    return LibvirtBackend(
        "test:///default", name, spec(**kw), shutdown_timeout=5, conn=conn, sleep=lambda s: None
    )


def run(conn, name, restart="never", check_mode=False, diff_mode=False, **kw):
    """reconcile() on one domain of the test driver with the spec built from ``kw``."""
    b = backend(conn, name, **kw)
    return reconcile(b, b.spec, restart=restart, check_mode=check_mode, diff_mode=diff_mode)


def test_driver_running_domain_needs_restart(conn):
    dom = conn.define(domain(name="t-run", dtype="test", machine="q35"), start=True)
    first = run(conn, "t-run", diff_mode=True)
    item = first["vms"][0]
    assert first["changed"] and item["action"] == "created" and item["restart_required"]
    assert item["uri"] == "test:///default"
    assert "watchdog" in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "watchdog" not in dom.XMLDesc(0)
    second = run(conn, "t-run")
    assert not second["changed"] and second["vms"][0]["restart_required"]
    third = run(conn, "t-run", restart="if_needed")
    assert (
        third["changed"]
        and third["vms"][0]["restarted"]
        and not third["vms"][0]["restart_required"]
    )
    assert "i6300esb" in dom.XMLDesc(0) and dom.isActive()
    assert not run(conn, "t-run", restart="if_needed")["changed"]


def test_driver_check_mode_defines_nothing(conn):
    dom = conn.define(domain(name="t-check", dtype="test", machine="q35"), start=True)
    before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    result = run(conn, "t-check", restart="if_needed", check_mode=True)
    assert result["changed"] and result["vms"][0]["reason"] == "check mode: would be restarted"
    assert dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before and dom.isActive()


def test_driver_stopped_domain_and_model_rules(conn):
    conn.define(domain(name="t-stop", dtype="test", machine="pc-i440fx-7.2"))
    result = run(conn, "t-stop", restart="if_needed", model="ib700", action="pause")
    assert result["vms"][0]["action"] == "created" and not result["vms"][0]["restart_required"]
    assert not result["vms"][0]["restarted"]
    refused = run(conn, "t-stop", model="itco")
    assert refused["vms"][0]["action"] == "failed" and "q35" in refused["vms"][0]["reason"]


def test_driver_transient_and_missing_domains(conn):
    conn.createXML(domain(name="t-transient", dtype="test"), 0)
    try:
        result = run(conn, "t-transient")
        assert result["vms"][0]["action"] == "failed" and "transient" in result["vms"][0]["reason"]
    finally:
        conn.lookupByName("t-transient").destroy()
    with pytest.raises(VmHealthError, match="Domain 'nope' not found at test:///default"):
        run(conn, "nope")


def test_driver_restart_destroys_a_guest_that_ignores_shutdown(conn, monkeypatch):
    dom = conn.define(domain(name="t-stubborn", dtype="test", machine="q35"), start=True)
    calls = []
    b = backend(conn, "t-stubborn")
    real_domain = b._domain

    class Stubborn:
        def __init__(self, d):
            self.d = d

        def isActive(self):
            return self.d.isActive()

        def shutdown(self):
            calls.append("shutdown")  # ignored by the guest

        def destroy(self):
            calls.append("destroy")
            return self.d.destroy()

        def create(self):
            calls.append("create")
            return self.d.create()

    monkeypatch.setattr(b, "_domain", lambda: Stubborn(real_domain()))
    clock = iter(range(0, 1000, 2))
    b._clock = lambda: next(clock)
    assert b.restart(None) == ""
    assert calls == ["shutdown", "destroy", "create"] and dom.isActive()
