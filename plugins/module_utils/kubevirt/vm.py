# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure facts about KubeVirt VirtualMachine objects (plain dicts as the API returns them).

Nothing here talks to the API server, so all of it is unit-tested on literal objects.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

VM_GROUP_VERSION = "kubevirt.io/v1"
VM_PLURAL = "virtualmachines"
VMI_PLURAL = "virtualmachineinstances"
LIFECYCLE_GROUP_VERSION = "subresources.kubevirt.io/v1"
TEMPLATE_GROUP_VERSION = "template.openshift.io/v1"
TEMPLATE_PLURAL = "templates"

#: Run strategies under which KubeVirt refuses (or we must not ask for) an API restart.
NO_RESTART_STRATEGIES = {
    "Halted": "runStrategy Halted keeps the VM stopped; the change applies at its next start",
    "Once": "runStrategy Once does not allow restarts through the API; restart it by hand",
    "WaitAsReceiver": "runStrategy WaitAsReceiver waits for a migration target; restart it by hand",
}

_WINDOWS_LABEL_PREFIXES = ("os.template.kubevirt.io/win",)
_WINDOWS_ANNOTATIONS = ("vm.kubevirt.io/os", "name.os.template.kubevirt.io/windows")


def meta(obj):
    return obj.get("metadata") or {}


def key(obj):
    """``namespace/name`` of an object."""
    m = meta(obj)
    return "{0}/{1}".format(m.get("namespace", ""), m.get("name", ""))


def template_spec(vm):
    """The VM's ``spec.template.spec`` (empty dict when absent)."""
    return ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}


def run_strategy(vm):
    """The effective run strategy, mapping the legacy ``spec.running`` flag."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    if "running" in spec:
        return "Always" if spec["running"] else "Halted"
    return "Halted"


def is_running(vm):
    """True while a VMI exists for the VM (the state a template change needs a restart in)."""
    status = vm.get("status") or {}
    if "created" in status:
        return bool(status["created"])
    return status.get("printableStatus") in ("Running", "Paused", "Migrating", "Starting")


def condition(obj, cond_type):
    """The condition of ``cond_type`` in ``status.conditions`` or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def condition_true(obj, cond_type):
    cond = condition(obj, cond_type)
    return bool(cond) and str(cond.get("status")) == "True"


def restart_blocked_reason(vm):
    """Why the VM must not be restarted through the API, or None."""
    return NO_RESTART_STRATEGIES.get(run_strategy(vm))


def has_pod_network(vm):
    """True when the VM is attached to the pod network (needed by httpGet/tcpSocket probes).

    Without any ``networks`` KubeVirt attaches the pod network itself unless
    ``autoattachPodInterface`` is false.
    """
    spec = template_spec(vm)
    networks = spec.get("networks")
    if networks:
        return any("pod" in (net or {}) for net in networks)
    devices = (spec.get("domain") or {}).get("devices") or {}
    return devices.get("autoattachPodInterface", True) is not False


def is_windows(vm):
    """Best-effort detection of a Windows guest from labels, annotations and preference."""
    sources = [meta(vm), meta((vm.get("spec") or {}).get("template") or {})]
    for m in sources:
        for label in m.get("labels") or {}:
            if label.startswith(_WINDOWS_LABEL_PREFIXES):
                return True
        for name in _WINDOWS_ANNOTATIONS:
            value = (m.get("annotations") or {}).get(name)
            if value is not None and (
                name.endswith("windows") or str(value).lower().startswith("win")
            ):
                return True
    preference = ((vm.get("spec") or {}).get("preference") or {}).get("name") or ""
    return preference.lower().startswith("windows")


def architecture(vm):
    """The VM's CPU architecture: ``spec.template.spec.architecture`` (default amd64)."""
    return template_spec(vm).get("architecture") or "amd64"


def embedded_vms(template):
    """Indexes and objects of the VirtualMachines embedded in an OpenShift Template."""
    for index, obj in enumerate(template.get("objects") or []):
        if (
            isinstance(obj, dict)
            and obj.get("kind") == "VirtualMachine"
            and str(obj.get("apiVersion", "")).startswith("kubevirt.io/")
        ):
            yield index, obj
