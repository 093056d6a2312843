# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The built-in VM-health alert pack of vmhealth.kvm.

The pack is Python data rather than a YAML file next to the code on purpose: Ansible ships
``module_utils`` Python files to the managed node with the module (AnsiballZ), so the ``file``
target on a remote Prometheus host gets the same pack as the cluster targets, with no PyYAML
needed on that host.

Every alert has a runbook ``docs/runbooks/<alert>.md`` and promtool unit tests in
``tests/rules/``. The expressions are explained in ``docs/alerting.md``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

#: Where the runbooks of the pack live when ``runbook_base_url`` is not given.
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/vmhealth/kvm/blob/main/docs/runbooks"

#: Name of the rule group that holds the selected pack alerts (option ``group_name``).
DEFAULT_GROUP_NAME = "vmhealth-kvm.vm-health"

#: Pseudo rule name selecting the whole pack.
ALL = "all"

# A virt-launcher pod whose compute container is not ready while the pod is Running. Pending
# (starting) and Succeeded/Failed (completed) pods never match; sidecar containers (hook
# sidecars, guest-console-log, ...) are not "compute" and never match.
_LAUNCHER_NOT_READY = (
    '(kube_pod_container_status_ready{container="compute", pod=~"virt-launcher-.+"} == 0)\n'
    '  and on (namespace, pod) (kube_pod_status_phase{phase="Running"} == 1)'
)

POD_NOT_READY_EXPR = (
    "# VM name from the pod label vm.kubevirt.io/name when kube-state-metrics exports it\n"
    "# (--metric-labels-allowlist=pods=[vm.kubevirt.io/name]) ...\n"
    "(\n"
    "  " + _LAUNCHER_NOT_READY + "\n"
    ")\n"
    "* on (namespace, pod) group_left (vm)\n"
    "  max by (namespace, pod, vm) (\n"
    '    label_replace(kube_pod_labels{pod=~"virt-launcher-.+", label_vm_kubevirt_io_name!=""},\n'
    '                  "vm", "$1", "label_vm_kubevirt_io_name", "(.+)")\n'
    "  )\n"
    "# ... otherwise from the pod name virt-launcher-<vm>-<5 random characters>.\n"
    "or on (namespace, pod)\n"
    "label_replace(\n"
    "  " + _LAUNCHER_NOT_READY + ",\n"
    '  "vm", "$1", "pod", "virt-launcher-(.+)-[a-z0-9]{5}"\n'
    ")"
)

# A new panic either increments an existing series or creates a new one (each bugcheck code is
# its own series, which starts at 1): increase() misses the latter, hence the second branch (a
# series younger than the window with a non-zero value).
GUEST_OS_PANIC_EXPR = (
    "label_replace(\n"
    "  increase(kubevirt_vmi_guest_os_panic_total[10m]) > 0\n"
    "  or\n"
    "  (kubevirt_vmi_guest_os_panic_total > 0 unless kubevirt_vmi_guest_os_panic_total offset 10m),\n"
    '  "vm", "$1", "name", "(.+)"\n'
    ")"
)

#: How long GuestRebootedByWatchdog keeps firing after the reset (seconds).
WATCHDOG_ALERT_WINDOW = 3600

# The guest_watchdog role's boot reporter writes both gauges (label ``device``) through
# node_exporter's textfile collector: ..._reset is 1 when the current boot followed a watchdog
# reset, ..._timestamp the boot time of that boot (0 when never). The alert's value is that time.
WATCHDOG_EXPR = (
    "vmhealth_guest_watchdog_last_reset_timestamp_seconds\n"
    "  and on (instance, job) (vmhealth_guest_watchdog_reset == 1)\n"
    "  and (time() - vmhealth_guest_watchdog_last_reset_timestamp_seconds < {0})"
).format(WATCHDOG_ALERT_WINDOW)

#: The pack, in the order the alerts are written. Annotations use Prometheus templating.
PACK = (
    {
        "alert": "VirtualMachinePodNotReady",
        "expr": POD_NOT_READY_EXPR,
        "for": "5m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "VM {{ $labels.namespace }}/{{ $labels.vm }} is running but not ready",
            "description": (
                "The compute container of pod {{ $labels.pod }} (VM {{ $labels.namespace }}/{{ $labels.vm }}) "
                "is running but has kept failing the VM's readiness probe. With a guestAgentPing probe the "
                "guest does not answer its agent: the agent is missing or stopped, or the guest hangs or has "
                "crashed (e.g. a Windows stop error). A wrong probe definition gives the same picture."
            ),
        },
    },
    {
        "alert": "VirtualMachineGuestOSPanic",
        "expr": GUEST_OS_PANIC_EXPR,
        "for": "0s",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Guest OS of VM {{ $labels.namespace }}/{{ $labels.name }} crashed",
            "description": (
                "The {{ $labels.type }} panic device of VM {{ $labels.namespace }}/{{ $labels.name }} reported "
                "a guest operating system crash (Windows stop error or Linux kernel panic)"
                "{{ with $labels.bugcheck_code }} with bugcheck code {{ . }}{{ end }}."
            ),
        },
    },
    {
        "alert": "GuestRebootedByWatchdog",
        "expr": WATCHDOG_EXPR,
        "for": "0s",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Guest {{ $labels.instance }} was reset by its watchdog",
            "description": (
                "The guest behind {{ $labels.instance }} stopped feeding its watchdog device, was reset by "
                "the hypervisor and booted again at {{ $value | humanizeTimestamp }}. It is up, but whatever "
                "hung it (kernel, I/O stall, the watchdog daemon itself) may come back."
            ),
        },
    },
)

PACK_BY_NAME = {rule["alert"]: rule for rule in PACK}
PACK_NAMES = tuple(rule["alert"] for rule in PACK)
