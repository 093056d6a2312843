#!/usr/bin/python
# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubevirt_vm_probe
short_description: Ensure a readiness or liveness probe on KubeVirt VirtualMachines
version_added: 0.1.0
author:
  - vmhealth.kvm contributors (@vmhealth)
description:
  - Ensures one readiness or liveness probe on C(spec.template.spec) of one KubeVirt
    VirtualMachine or a whole fleet selected by namespace and labels, and optionally on
    OpenShift Templates that embed VirtualMachines.
  - A C(guestAgentPing) probe detects a hung or crashed guest (a Windows blue screen, a stalled
    Linux kernel) that the hypervisor still reports as running; C(exec) probes run a command
    in the guest through qemu-guest-agent; C(httpGet) and C(tcpSocket) probe a service over
    the pod network.
  - The probe is written exactly as given (KubeVirt stores the VM template as sent), only VMs
    whose stored probe differs are written, and each write is a merge patch of the probe field
    alone, guarded by the object's resourceVersion, so concurrent changes to other fields are
    never lost.
  - A probe change takes effect only after a restart of a running VM (see O(restart)).
  - All parameters are validated before the first API request.
extends_documentation_fragment:
  - vmhealth.kvm.attributes
  - kubernetes.core.k8s_auth_options
  - vmhealth.kvm.kubevirt_fleet
attributes:
  check_mode:
    support: full
    details: Makes no write request at all (not even a server-side dry run).
  diff_mode:
    support: full
    details: Returns the probe before and after for every VM and Template that changes.
options:
  probe:
    description:
      - Which probe to manage. V(readiness) marks the VM's pod not Ready while it fails (use it to
        alert); V(liveness) makes KubeVirt restart the VM when it fails.
    type: str
    required: true
    choices: [readiness, liveness]
  state:
    description:
      - V(present) ensures the probe exactly as described; V(absent) removes the probe.
    type: str
    default: present
    choices: [present, absent]
  guest_agent_ping:
    description:
      - Probe by pinging qemu-guest-agent in the guest. The agent must be installed and running
        in every guest, Windows included.
      - Exactly one of O(guest_agent_ping=true), O(exec), O(http_get) and O(tcp_socket) is
        required with O(state=present).
    type: bool
  exec:
    description:
      - Probe by running a command in the guest through qemu-guest-agent (guest-exec must not be
        blocked in the agent). Exit status 0 is success.
    type: dict
    suboptions:
      command:
        description: The program and its arguments.
        type: list
        elements: str
        required: true
  http_get:
    description:
      - Probe with an HTTP GET to the VM over the pod network; a 2xx or 3xx answer is success.
      - Requires the VM to be attached to the pod network.
    type: dict
    suboptions:
      port:
        description: Port number (1-65535) or port name.
        type: raw
        required: true
      path:
        description: Path to request; must start with C(/).
        type: str
      host:
        description: Host to connect to; defaults to the VM's pod IP.
        type: str
      scheme:
        description: V(HTTP) or V(HTTPS).
        type: str
        choices: [HTTP, HTTPS]
      http_headers:
        description: Extra request headers.
        type: list
        elements: dict
        suboptions:
          name:
            description: Header name.
            type: str
            required: true
          value:
            description: Header value.
            type: str
            required: true
  tcp_socket:
    description:
      - Probe by opening a TCP connection to the VM over the pod network.
      - Requires the VM to be attached to the pod network.
    type: dict
    suboptions:
      port:
        description: Port number (1-65535) or port name.
        type: raw
        required: true
      host:
        description: Host to connect to; defaults to the VM's pod IP.
        type: str
  initial_delay_seconds:
    description: Seconds after the VM starts before the first probe (0 or more).
    type: int
  period_seconds:
    description: Seconds between probes (1 or more; KubeVirt uses 10 when unset).
    type: int
  timeout_seconds:
    description:
      - Seconds after which one probe counts as failed (1 or more; KubeVirt uses 1 when unset).
      - Must be lower than O(period_seconds).
    type: int
  failure_threshold:
    description: Consecutive failures before the probe is failed (1 or more; default 3 in KubeVirt).
    type: int
  success_threshold:
    description:
      - Consecutive successes before the probe passes again (1 or more).
      - Must be 1 for liveness probes; Kubernetes would refuse the VM's pod otherwise.
    type: int
  max_detection_seconds:
    description:
      - Fail before any write when the probe needs longer than this to declare a failed guest, that
        is RV(detection_seconds) = period x failure threshold + timeout.
    type: int
notes:
  - Probes are applied by KubeVirt to the VMI when the VM starts; a running VM keeps its old probe
    (and carries the C(RestartRequired) condition) until restarted. Use O(restart) to restart
    safely.
  - An C(httpGet) or C(tcpSocket) probe needs the pod network, and KubeVirt refuses a liveness probe
    on a VM that starts paused (C(startStrategy=Paused)); such VMs are reported as V(failed) with the reason while
    the others proceed, and the task fails at the end.
  - Windows VMs (detected from OS labels, the C(vm.kubevirt.io/os) annotation or a windows
    preference) need qemu-guest-agent from the virtio-win ISO for C(guestAgentPing) and C(exec).
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
seealso:
  - module: vmhealth.kvm.qemu_watchdog
  - module: vmhealth.kvm.alerting_rule
  - name: KubeVirt liveness and readiness probes
    description: The KubeVirt user guide on probes.
    link: https://kubevirt.io/user-guide/user_workloads/liveness_and_readiness_probes/
"""

EXAMPLES = r"""
- name: Detect a hung guest (e.g. a Windows blue screen) on every VM of a namespace
  vmhealth.kvm.kubevirt_vm_probe:
    namespace: vms-prod
    probe: readiness
    guest_agent_ping: true
    initial_delay_seconds: 120
    period_seconds: 10
    timeout_seconds: 5
    failure_threshold: 3

- name: Same on labelled VMs in all namespaces and the Templates they come from, rolling restart
  vmhealth.kvm.kubevirt_vm_probe:
    all_namespaces: true
    label_selectors:
      - vmhealth.io/probe=enabled
      - env in (prod,stage)
    templates: true
    probe: readiness
    guest_agent_ping: true
    restart: rolling
    max_unavailable: 10%
    wait_timeout: 600
  register: probe_rollout

- name: Restart a VM automatically when its web service stops answering
  vmhealth.kvm.kubevirt_vm_probe:
    name: web-01
    namespace: shop
    probe: liveness
    http_get:
      port: 80
      path: /healthz
    initial_delay_seconds: 60
    max_detection_seconds: 60

- name: Probe a service with a command run in the guest
  vmhealth.kvm.kubevirt_vm_probe:
    name: db-01
    namespace: shop
    probe: readiness
    exec:
      command: [systemctl, is-active, postgresql]

- name: Remove the liveness probe from one VM, restarting it if it runs
  vmhealth.kvm.kubevirt_vm_probe:
    name: web-01
    namespace: shop
    probe: liveness
    state: absent
    restart: if_needed
"""

RETURN = r"""
changed:
  description: Whether any VM or Template was written or restarted.
  returned: always
  type: bool
vms:
  description: One result per selected VirtualMachine and Template.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(VirtualMachine) or V(Template).
      type: str
      sample: VirtualMachine
    namespace:
      description: Namespace of the object.
      type: str
      sample: vms-prod
    name:
      description: Name of the object.
      type: str
      sample: win2022-01
    action:
      description:
        - V(created) (the probe was added), V(updated), V(removed), V(unchanged),
          V(failed) (see RV(vms[].reason)) or V(skipped) (excluded).
        - In check mode, what would be done.
      type: str
      sample: created
    restart_required:
      description:
        - Whether the VM runs with an outdated template (its probe changed or it carries
          the RestartRequired condition) and still needs a restart.
      type: bool
      sample: true
    restarted:
      description: Whether the module restarted the VM.
      type: bool
      sample: false
    ready:
      description: For restarted VMs, whether the new VMI became Ready within O(wait_timeout).
      type: bool
      returned: when the VM was restarted
      sample: true
    reason:
      description: Why the VM failed, was skipped or not restarted; empty otherwise.
      type: str
      sample: "not restarted: runStrategy Once does not allow restarts through the API; restart it by hand"
    diff:
      description: The probe before and after.
      type: dict
      returned: in diff mode, when the object changes
      sample: {"before": {}, "after": {"readinessProbe": {"guestAgentPing": {}}}}
counts:
  description: How many objects got each action, plus C(restarted) and C(restart_required).
  returned: always
  type: dict
  sample: {"created": 10, "updated": 0, "removed": 0, "unchanged": 990, "failed": 0, "skipped": 0,
           "restarted": 0, "restart_required": 10}
detection_seconds:
  description:
    - Worst-case seconds for the probe to declare a failed guest once running
      (period x failure threshold + timeout, with KubeVirt's defaults for unset values).
    - Null with O(state=absent).
  returned: always
  type: int
  sample: 35
rollout:
  description: Summary of the restarts.
  returned: when O(restart) is not V(never)
  type: dict
  contains:
    mode:
      description: V(if_needed) or V(rolling).
      type: str
    batch_size:
      description: VMs restarted at once.
      type: int
    batches:
      description: Number of batches planned.
      type: int
    completed_batches:
      description: Batches whose VMs all became Ready.
      type: int
    stopped:
      description: Whether the rollout stopped at a batch that did not become Ready.
      type: bool
    stopped_at_batch:
      description: The batch that did not become Ready.
      type: int
      returned: when RV(rollout.stopped) is true
    not_ready:
      description: C(namespace/name) of the VMs of that batch that were not Ready.
      type: list
      elements: str
  sample: {"mode": "rolling", "batch_size": 2, "batches": 5, "completed_batches": 5, "stopped": false,
           "not_ready": []}
"""

from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.args import (
    FLEET_MUTUALLY_EXCLUSIVE,
    fleet_argument_spec,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.runner import run_fleet_module
from ansible_collections.vmhealth.kvm.plugins.module_utils.probe import ProbePolicy, ProbeSpec

PORT_SPEC = {"type": "raw", "required": True}


def argument_spec():
    return fleet_argument_spec(
        {
            "probe": {"type": "str", "required": True, "choices": ["readiness", "liveness"]},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "guest_agent_ping": {"type": "bool"},
            "exec": {
                "type": "dict",
                "options": {"command": {"type": "list", "elements": "str", "required": True}},
            },
            "http_get": {
                "type": "dict",
                "options": {
                    "port": PORT_SPEC,
                    "path": {"type": "str"},
                    "host": {"type": "str"},
                    "scheme": {"type": "str", "choices": ["HTTP", "HTTPS"]},
                    "http_headers": {
                        "type": "list",
                        "elements": "dict",
                        "options": {
                            "name": {"type": "str", "required": True},
                            "value": {"type": "str", "required": True},
                        },
                    },
                },
            },
            "tcp_socket": {
                "type": "dict",
                "options": {"port": PORT_SPEC, "host": {"type": "str"}},
            },
            "initial_delay_seconds": {"type": "int"},
            "period_seconds": {"type": "int"},
            "timeout_seconds": {"type": "int"},
            "failure_threshold": {"type": "int"},
            "success_threshold": {"type": "int"},
            "max_detection_seconds": {"type": "int"},
        }
    )


def build_policy(params):
    """Validate the probe options (no API access) and return the policy and extra results."""
    spec = ProbeSpec.from_params(params)
    spec.check_detection(params.get("max_detection_seconds"))
    return ProbePolicy(spec), {"detection_seconds": spec.detection_seconds()}


def main():
    module = AnsibleK8SModule(
        module_class=AnsibleModule,
        argument_spec=argument_spec(),
        mutually_exclusive=FLEET_MUTUALLY_EXCLUSIVE
        + [("guest_agent_ping", "exec", "http_get", "tcp_socket")],
        supports_check_mode=True,
    )
    try:
        run_fleet_module(module, build_policy)
    except VmHealthError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
