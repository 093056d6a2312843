# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_watchdog's libvirt backend.

Two layers:

* pure domain-XML work (:func:`parse_domain`, :func:`plan_domain_xml`): which watchdog and panic
  devices a domain has, which model fits its architecture and machine type, and the edited
  persistent XML; unit-tested on literal XML;
* the connection (:class:`LibvirtBackend`, libvirt-python): read the persistent and the live
  XML, define the edited XML, and restart a running domain cleanly (shutdown with a timeout,
  destroy if it is still running, start).

A running domain keeps the devices it was started with: a changed persistent definition takes
effect at the next cold start, so the backend reports ``restart_required`` while the live
watchdog setup differs from the persistent one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import time
import xml.etree.ElementTree as ET

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import (
    DEFAULT_ACTION,
    Current,
    WatchdogBackend,
)

try:
    import libvirt

    HAS_LIBVIRT = True
except ImportError:
    libvirt = None
    HAS_LIBVIRT = False

X86_ARCHES = ("x86_64", "i686")
#: Namespaces seen in domain metadata; registered so ElementTree keeps their usual prefixes.
KNOWN_NAMESPACES = {"libosinfo": "http://libosinfo.org/xmlns/libvirt/domain/1.0"}
for _prefix, _uri in KNOWN_NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)
WINDOWS_OS_PREFIX = "http://microsoft.com/win"


class DomainFacts:
    """What the watchdog logic needs to know about a domain definition."""

    def __init__(self, name, arch, machine, watchdogs, panics, windows):
        self.name = name
        self.arch = arch
        self.machine = machine
        self.watchdogs = watchdogs  # [(model, effective action)]
        self.panics = panics  # [model]
        self.windows = windows

    @property
    def chipset(self):
        """q35, i440fx, s390 or the machine type itself."""
        machine = self.machine or ""
        if self.arch == "s390x" or machine.startswith("s390"):
            return "s390"
        if "q35" in machine:
            return "q35"
        if self.arch in X86_ARCHES and (machine == "pc" or machine.startswith("pc-i440fx")):
            return "i440fx"
        return machine


def _parse(xml):
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise VmHealthError("Invalid domain XML: {0}".format(exc)) from None


def parse_domain(xml):
    """:class:`DomainFacts` from a domain XML string."""
    root = _parse(xml)
    os_type = root.find("./os/type")
    arch = os_type.get("arch") if os_type is not None else None
    machine = os_type.get("machine") if os_type is not None else None
    devices = root.find("devices")
    watchdogs, panics = [], []
    if devices is not None:
        for element in devices.findall("watchdog"):
            watchdogs.append((element.get("model"), element.get("action") or DEFAULT_ACTION))
        for element in devices.findall("panic"):
            panics.append(element.get("model") or "default")
    windows = any(
        (element.get("id") or "").startswith(WINDOWS_OS_PREFIX)
        for element in root.iter("{%s}os" % KNOWN_NAMESPACES["libosinfo"])
    )
    return DomainFacts(root.findtext("name"), arch, machine, watchdogs, panics, windows)


def view(facts, manage_panic):
    """The managed part of a domain, platform-neutral, for diffs and comparisons."""
    result = {}
    if facts.watchdogs:
        result["watchdog"] = [{"model": m, "action": a} for m, a in facts.watchdogs]
    if manage_panic and facts.panics:
        result["panic"] = list(facts.panics)
    return result


def resolve_model(spec, facts):
    """The watchdog model for this domain; VmRejected when it cannot have the one asked for."""
    chipset = facts.chipset
    model = spec.model
    if model == "auto":
        if facts.arch in X86_ARCHES:
            return "i6300esb"
        if chipset == "s390":
            return "diag288"
        raise VmRejected(
            "model auto: no default watchdog for architecture {0}; set model explicitly".format(
                facts.arch
            )
        )
    if model == "ib700" and chipset != "i440fx":
        raise VmRejected(
            "model ib700: an ISA device that only i440fx machines have; this domain's machine "
            "is {0}".format(facts.machine)
        )
    if model == "itco" and chipset != "q35":
        raise VmRejected(
            "model itco: the iTCO watchdog is part of the q35 chipset; this domain's machine "
            "is {0}".format(facts.machine)
        )
    if model == "diag288" and chipset != "s390":
        raise VmRejected(
            "model diag288: only s390 machines have it; this domain is {0}".format(facts.arch)
        )
    if model == "i6300esb" and chipset == "s390":
        raise VmRejected("model i6300esb: s390 machines have no PCI watchdog; use diag288")
    return model


def _check_panic(spec, facts):
    panic = spec.panic
    if panic in ("isa", "hyperv") and facts.arch not in X86_ARCHES:
        raise VmRejected(
            "panic_device {0}: an x86 device; this domain is {1}".format(panic, facts.arch)
        )


def plan_domain_xml(xml, spec):
    """Return ``(new_xml or None, before view, after view)`` for a persistent domain XML.

    State present: exactly one watchdog, of the resolved model, with the action asked for (an
    existing one of that model is kept with its address; watchdogs of other models are
    removed, since all watchdogs of a domain must share one action anyway). State absent:
    watchdogs removed (only those of ``model`` unless it is auto). A panic device model
    ensures exactly one ``<panic>`` of it; ``none`` removes them all. Raises VmRejected.
    """
    facts = parse_domain(xml)
    manage_panic = spec.panic is not None
    before = view(facts, manage_panic)
    root = _parse(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")

    if spec.present:
        model = resolve_model(spec, facts)
        keep = None
        for element in devices.findall("watchdog"):
            if element.get("model") == model and keep is None:
                keep = element
            else:
                devices.remove(element)
        if keep is None:
            keep = ET.SubElement(devices, "watchdog", {"model": model})
        keep.set("action", spec.action)
    else:
        for element in devices.findall("watchdog"):
            if spec.model in ("auto", element.get("model")):
                devices.remove(element)

    if manage_panic:
        _check_panic(spec, facts)
        keep = None
        for element in devices.findall("panic"):
            if spec.panic != "none" and element.get("model") == spec.panic and keep is None:
                keep = element
            else:
                devices.remove(element)
        if spec.panic != "none" and keep is None:
            ET.SubElement(devices, "panic", {"model": spec.panic})

    new_xml = ET.tostring(root, encoding="unicode")
    after = view(parse_domain(new_xml), manage_panic)
    if after == before:
        return None, before, before
    return new_xml, before, after


# -- connection ---------------------------------------------------------------------------


def _error(exc):
    return exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)


class LibvirtBackend(WatchdogBackend):
    """One libvirt domain, through libvirt-python."""

    kind = "Domain"
    poll_interval = 1.0

    def __init__(
        self, uri, name, spec, shutdown_timeout=120, wait_timeout=600, conn=None, sleep=time.sleep
    ):
        self.uri = uri
        self.name = name
        self.spec = spec
        self.shutdown_timeout = shutdown_timeout
        self.wait_timeout = wait_timeout
        self._conn = conn
        self._sleep = sleep
        self._clock = time.monotonic

    @property
    def conn(self):
        if self._conn is None:
            if not HAS_LIBVIRT:
                raise VmHealthError("libvirt-python is required for platform=libvirt")
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise VmHealthError(
                    "Failed to connect to libvirt at {0}: {1}".format(self.uri, _error(exc))
                ) from None
        return self._conn

    def _domain(self):
        try:
            return self.conn.lookupByName(self.name)
        except libvirt.libvirtError as exc:
            raise VmHealthError(
                "Domain '{0}' not found at {1}: {2}".format(self.name, self.uri, _error(exc))
            ) from None

    def read(self):
        dom = self._domain()
        manage_panic = self.spec.panic is not None
        try:
            persistent = dom.isPersistent()
            running = bool(dom.isActive())
            inactive_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            live_xml = dom.XMLDesc(0) if running else None
        except libvirt.libvirtError as exc:
            raise VmHealthError(
                "Failed to read domain '{0}': {1}".format(self.name, _error(exc))
            ) from None
        facts = parse_domain(inactive_xml)
        live = view(parse_domain(live_xml), manage_panic) if live_xml else None
        return Current(
            self.name,
            view(facts, manage_panic),
            running,
            live=live,
            raw={"xml": inactive_xml, "persistent": bool(persistent)},
            windows=facts.windows,
            details={"uri": self.uri},
        )

    def desired(self, current):
        if not current.raw["persistent"]:
            raise VmRejected(
                "transient domain: it has no persistent definition to keep the watchdog in"
            )
        new_xml, _before, after = plan_domain_xml(current.raw["xml"], self.spec)
        return after, new_xml

    def apply(self, current, desired_raw):
        if desired_raw is None:
            return current
        try:
            self.conn.defineXML(desired_raw)
        except libvirt.libvirtError as exc:
            raise VmHealthError(
                "Failed to define domain '{0}': {1}".format(self.name, _error(exc))
            ) from None
        return self.read()

    def _wait_inactive(self, dom, timeout):
        deadline = self._clock() + timeout
        while dom.isActive():
            if self._clock() >= deadline:
                return False
            self._sleep(self.poll_interval)
        return True

    def restart(self, current):
        """Shut down cleanly (ACPI), destroy after ``shutdown_timeout``, then start."""
        dom = self._domain()
        try:
            if dom.isActive():
                # A refused ACPI request is fine: the domain is destroyed below.
                with contextlib.suppress(libvirt.libvirtError):
                    dom.shutdown()
                if not self._wait_inactive(dom, self.shutdown_timeout):
                    dom.destroy()
                    self._wait_inactive(dom, 30)
            dom.create()
        except libvirt.libvirtError as exc:
            return "restart failed: {0}".format(_error(exc))
        return ""
