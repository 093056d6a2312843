# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_watchdog's KubeVirt backend: a policy for the shared fleet engine.

``spec.template.spec.domain.devices.watchdog`` is ``{name, i6300esb: {action}}`` or
``{name, diag288: {action}}``; ``devices.panicDevices`` is ``[{model}]``. The fleet engine
(``kubevirt/fleet.py``) does the reading (paginated LIST), the diff, the guarded merge
patches and the restarts; this policy only says, per VM, whether it can take the watchdog
(:meth:`WatchdogPolicy.check`) and what its template spec should look like
(:meth:`WatchdogPolicy.apply`). Pure: no API access.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt import vm as vmfacts
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import (
    DEFAULT_ACTION,
    WatchdogSpec,
    reject_windows,
)

#: The watchdog model KubeVirt accepts per architecture (checked when the VMI is created,
#: not when the VM is saved, so a wrong model saves fine and then fails to start).
ARCH_MODELS = {"amd64": "i6300esb", "s390x": "diag288"}
#: Panic device models QEMU offers per architecture (isa and hyperv are x86 devices).
ARCH_PANIC_MODELS = {"amd64": ("pvpanic", "hyperv", "isa"), "arm64": ("pvpanic",), "s390x": ()}
DEFAULT_WATCHDOG_NAME = "watchdog"
WATCHDOG_MODELS = ("i6300esb", "diag288")


def model_for(spec, architecture):
    """The watchdog model for a VM of ``architecture``; raise VmRejected when there is none."""
    wanted = ARCH_MODELS.get(architecture)
    if wanted is None:
        if architecture == "arm64":
            raise VmRejected(
                "architecture arm64: KubeVirt offers no watchdog device on arm64 (the VM would "
                "save, then fail to start); use state=absent or leave this VM out"
            )
        raise VmRejected(
            "architecture {0}: KubeVirt offers no watchdog device for it".format(architecture)
        )
    if spec.model not in ("auto", wanted):
        raise VmRejected(
            "model {0}: KubeVirt only accepts {1} on {2} (the VM would save, then fail to "
            "start); use model=auto".format(spec.model, wanted, architecture)
        )
    return wanted


def current_watchdog(devices):
    """``(name, model, effective action)`` of the stored watchdog, or None."""
    watchdog = devices.get("watchdog")
    if not isinstance(watchdog, dict):
        return None
    for model in WATCHDOG_MODELS:
        if model in watchdog:
            action = (watchdog.get(model) or {}).get("action") or DEFAULT_ACTION
            return watchdog.get("name"), model, action
    return watchdog.get("name"), None, None


def _devices(template_spec):
    return (template_spec.get("domain") or {}).get("devices") or {}


class WatchdogPolicy:
    """Applies a :class:`WatchdogSpec` to VM template specs (the fleet engine's policy)."""

    def __init__(self, spec):
        self.spec = spec

    def check(self, vm):
        """Raise VmRejected when this VM cannot take the change (KubeVirt would fail it later)."""
        architecture = vmfacts.architecture(vm)
        if self.spec.present:
            model_for(self.spec, architecture)
            reject_windows(self.spec, vmfacts.is_windows(vm), "this VM")
        panic = self.spec.panic
        if panic and panic != "none" and panic not in ARCH_PANIC_MODELS.get(architecture, ()):
            raise VmRejected(
                "panic_device {0}: not available on architecture {1}".format(panic, architecture)
            )

    def _desired_watchdog(self, template_spec, devices):
        """The watchdog object to store, or None when the stored one already matches."""
        model = model_for(self.spec, template_spec.get("architecture") or "amd64")
        current = current_watchdog(devices)
        if (
            current
            and current[1:] == (model, self.spec.action)
            and (self.spec.device_name is None or current[0] == self.spec.device_name)
        ):
            return None  # same device and effective action: keep it exactly as stored
        name = self.spec.device_name or (current and current[0]) or DEFAULT_WATCHDOG_NAME
        return {"name": name, model: {"action": self.spec.action}}

    def apply(self, template_spec):
        """Set (or remove) the watchdog and panic device in a copy of the template spec."""
        devices = _devices(template_spec)
        changes = {}
        if self.spec.present:
            watchdog = self._desired_watchdog(template_spec, devices)
            if watchdog is not None:
                changes["watchdog"] = watchdog
        elif "watchdog" in devices:
            changes["watchdog"] = None
        panic = self.spec.panic
        if panic == "none" and "panicDevices" in devices:
            changes["panicDevices"] = None
        elif panic and panic != "none" and devices.get("panicDevices") != [{"model": panic}]:
            changes["panicDevices"] = [{"model": panic}]
        if not changes:
            return
        # Only now create domain/devices, so an unchanged VM gets no empty objects.
        target = template_spec.setdefault("domain", {}).setdefault("devices", {})
        for field, value in changes.items():
            if value is None:
                target.pop(field, None)
            else:
                target[field] = value

    def view(self, template_spec):
        """The managed part of the template spec, for diffs."""
        devices = _devices(template_spec)
        fields = ["watchdog"] + (["panicDevices"] if self.spec.panic else [])
        return {f: devices[f] for f in fields if f in devices}

    def wants_agent(self):
        """A watchdog needs no guest agent."""
        return False


def build_policy(params, warn=None):
    """Validate the options (no API access); return the fleet policy and no extra results."""
    spec = WatchdogSpec.from_params(params)
    if warn is not None:
        for warning in spec.warnings():
            warn(warning)
    return WatchdogPolicy(spec), {}
