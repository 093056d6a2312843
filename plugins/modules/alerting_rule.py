#!/usr/bin/python
# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: alerting_rule
short_description: Manage VM-health alerting rules for OpenShift, the Prometheus Operator or a Prometheus rule file
version_added: 0.1.0
author:
  - vmhealth.kvm contributors (@vmhealth)
description:
  - Writes alerting rules that detect unhealthy virtual machines to one of three targets,
    selected with O(target).
  - V(openshift) manages an C(AlertingRule) (C(monitoring.openshift.io/v1)) in C(openshift-monitoring),
    the only namespace OpenShift's monitoring stack takes them from.
  - V(prometheus_operator) manages a C(PrometheusRule) (C(monitoring.coreos.com/v1)); use O(labels) to
    match the C(ruleSelector) of your Prometheus (often C(release=<name>)).
  - V(file) manages a Prometheus rule file on the target host. The new content is checked with
    C(promtool check rules) and written atomically (a temporary file in the same directory, renamed
    over the old one, with the old file's mode and owner); optionally a backup is kept and Prometheus
    is told to reload.
  - The rules are the alerts of the built-in VM-health pack selected with O(rules) and/or custom
    O(groups). Each built-in alert has a runbook and a C(runbook_url) annotation pointing at it.
  - Everything is validated before the first API request or file write (PromQL syntax, with
    C(promtool) when it is installed where the module runs, else with the C(promql_parser) Python
    package, else a warning), durations, label and annotation names, unique alert names per group,
    what the target supports, and object names); each message names the group and the rule.
  - For the cluster targets nothing is written when the stored rules and labels already match, and
    nothing at all in check mode (not even a server-side dry run); updates carry the object's
    C(resourceVersion), so a concurrent change is re-read instead of overwritten.
extends_documentation_fragment:
  - vmhealth.kvm.attributes
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    details: Reads only; makes no write request (not even a server-side dry run) and leaves files untouched.
  diff_mode:
    support: full
    details: The object's labels and spec, or the rule file's text, before and after.
options:
  target:
    description:
      - Where the rules go. V(openshift) for an C(AlertingRule) object, V(prometheus_operator) for a
        C(PrometheusRule) object, V(file) for a Prometheus rule file at O(path).
      - The C(kubernetes.core) authentication options apply to the cluster targets only.
    type: str
    required: true
    choices: [openshift, prometheus_operator, file]
  state:
    description:
      - V(present) ensures the object or file holds exactly the selected rules; V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  name:
    description:
      - Name of the C(AlertingRule) or C(PrometheusRule) object (a DNS-1123 subdomain).
    type: str
    default: vmhealth-vm-health
  namespace:
    description:
      - Namespace of the object.
      - With O(target=openshift) it defaults to V(openshift-monitoring) and any other value is refused,
        because OpenShift silently ignores C(AlertingRule) objects anywhere else.
      - Required with O(target=prometheus_operator).
    type: str
  labels:
    description:
      - Labels to set on the object, e.g. C(release=kube-prometheus-stack) so that the Prometheus
        C(ruleSelector) selects a C(PrometheusRule). Other labels on the object are left alone.
      - Ignored (with a warning) by O(target=file).
    type: dict
  rules:
    description:
      - Alerts of the built-in pack to write, or V(all) for the whole pack.
      - The pack holds V(VirtualMachinePodNotReady), V(VirtualMachineGuestOSPanic) and
        V(GuestRebootedByWatchdog); see the collection's C(docs/alerting.md).
      - Defaults to V(all) unless O(groups) is given, in which case no pack alert is included
        unless listed here.
    type: list
    elements: str
  group_name:
    description: Name of the rule group that holds the selected pack alerts.
    type: str
    default: vmhealth-kvm.vm-health
  group_interval:
    description: Evaluation interval of the pack's group (a duration such as V(30s)); Prometheus' global one when unset.
    type: str
  rule_overrides:
    description:
      - "Per built-in alert changes, keyed by alert name, e.g. C({VirtualMachinePodNotReady: {for: 10m}})."
      - Accepted keys are C(for), C(keep_firing_for) (not with O(target=openshift)), C(labels) and
        C(annotations); labels and annotations are merged into the pack's. The expression cannot be changed.
    type: dict
  groups:
    description:
      - Custom rule groups written after the pack's group.
      - Prometheus templating in annotations (C({{ $labels.pod }})) must be protected from Ansible's
        templating, for example with C(!unsafe) or C({% raw %}).
    type: list
    elements: dict
    suboptions:
      name:
        description: Group name, unique in the object or file.
        type: str
        required: true
      interval:
        description: Evaluation interval of the group (a duration).
        type: str
      rules:
        description: The group's rules (at least one).
        type: list
        elements: dict
        required: true
        suboptions:
          alert:
            description: Alert name (unique within the group). Exactly one of O(groups[].rules[].alert) and O(groups[].rules[].record) is required.
            type: str
          record:
            description: Name of the series a recording rule writes. Not with O(target=openshift) (C(AlertingRule) holds alerts only).
            type: str
          expr:
            description: The PromQL expression (required).
            type: str
          for:
            description: How long the expression must hold before the alert fires (a duration such as V(5m)).
            type: str
          keep_firing_for:
            description:
              - How long the alert keeps firing after the expression stopped holding (a duration).
              - Not with O(target=openshift), because C(AlertingRule) has no such field.
            type: str
          labels:
            description: Labels added to the alert (names C([a-zA-Z_][a-zA-Z0-9_]*), string values).
            type: dict
          annotations:
            description: Annotations of the alert (string values; Prometheus templates allowed).
            type: dict
  runbook_base_url:
    description:
      - Where the runbooks live. Each built-in alert gets the annotation C(runbook_url) = C(<runbook_base_url>/<Alert>.md),
        or O(runbook_base_url) with C({alert}) replaced by the alert name when it contains C({alert})
        (e.g. V(https://wiki.example.com/runbooks/{alert})).
      - When given, custom alerts without a C(runbook_url) annotation get one built the same way.
      - Defaults to the runbooks in the collection's repository,
        V(https://github.com/vmhealth/kvm/blob/main/docs/runbooks).
    type: str
  path:
    description: The rule file to manage with O(target=file) (absolute; its directory must exist).
    type: path
  backup:
    description: With O(target=file), keep a copy of the old file (C(<path>.<pid>.<timestamp>~)) before it is replaced or removed.
    type: bool
    default: false
  promtool_path:
    description:
      - The C(promtool) to check rules with; C(promtool) on the E(PATH) when unset.
      - Required to exist for O(target=file) with O(state=present).
    type: path
  reload:
    description:
      - With O(target=file), tell Prometheus to reload its configuration with a C(POST) to O(reload_url)
        when the file changed. Prometheus must run with C(--web.enable-lifecycle).
      - A failed reload fails the task; the file stays written (C(changed=true)).
    type: bool
    default: false
  reload_url:
    description: Prometheus' reload endpoint.
    type: str
    default: http://127.0.0.1:9090/-/reload
  reload_username:
    description: User name for HTTP basic authentication of the reload request.
    type: str
  reload_password:
    description: Password for HTTP basic authentication of the reload request.
    type: str
  reload_bearer_token:
    description: Bearer token for the reload request (instead of basic authentication).
    type: str
  reload_validate_certs:
    description: Whether to verify the TLS certificate of O(reload_url).
    type: bool
    default: true
  reload_ca_path:
    description: CA bundle to verify the TLS certificate of O(reload_url) with.
    type: path
  reload_timeout:
    description: Seconds to wait for the reload request.
    type: int
    default: 10
notes:
  - C(VirtualMachinePodNotReady) needs a readiness probe on the VMs (see M(vmhealth.kvm.kubevirt_vm_probe))
    and kube-state-metrics; the VM name comes from the pod label C(vm.kubevirt.io/name) when kube-state-metrics
    exports it (C(--metric-labels-allowlist=pods=[vm.kubevirt.io/name])), otherwise from the pod name.
  - C(VirtualMachineGuestOSPanic) needs a panic device on the VM and KubeVirt's
    C(kubevirt_vmi_guest_os_panic_total) metric. C(GuestRebootedByWatchdog) needs the boot reporter of the
    C(vmhealth.kvm.guest_watchdog) role and node_exporter's textfile collector in the guest.
  - The file target keeps the mode and owner of the file it replaces (new files get mode C(0644)); the temporary
    file is created in the same directory, whose default SELinux context it gets.
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0 (cluster targets)
  - promtool (file target; optional but recommended for the cluster targets)
seealso:
  - module: vmhealth.kvm.kubevirt_vm_probe
  - name: Alerting rules in Prometheus
    description: The rule file format the file target writes.
    link: https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/
  - name: Creating alerting rules for user-defined projects in OpenShift
    description: Where AlertingRule objects fit in OpenShift monitoring.
    link: https://docs.openshift.com/container-platform/latest/observability/monitoring/managing-alerts.html
"""

EXAMPLES = r"""
- name: The whole VM-health pack on OpenShift (AlertingRule in openshift-monitoring)
  vmhealth.kvm.alerting_rule:
    target: openshift

- name: Two pack alerts for kube-prometheus-stack, with runbooks on the internal wiki
  vmhealth.kvm.alerting_rule:
    target: prometheus_operator
    namespace: monitoring
    name: vm-health
    labels:
      release: kube-prometheus-stack
    rules:
      - VirtualMachinePodNotReady
      - VirtualMachineGuestOSPanic
    rule_overrides:
      VirtualMachinePodNotReady:
        for: 10m
        labels:
          team: virtualization
    runbook_base_url: https://wiki.example.com/runbooks/{alert}

- name: A Prometheus rule file with the pack and a custom alert, checked, backed up and reloaded
  vmhealth.kvm.alerting_rule:
    target: file
    path: /etc/prometheus/rules/vm-health.yml
    backup: true
    reload: true
    reload_url: https://prometheus.example.com:9090/-/reload
    reload_username: admin
    reload_password: "{{ prometheus_admin_password }}"
    groups:
      - name: vm-capacity
        rules:
          - alert: VirtualMachineMemoryLow
            expr: kubevirt_vmi_memory_available_bytes < 100 * 1024 * 1024
            for: 15m
            labels:
              severity: warning
            annotations:
              # raw keeps Ansible from templating Prometheus' own {{ }}
              summary: "{% raw %}VM {{ $labels.namespace }}/{{ $labels.name }} is low on memory{% endraw %}"
    rules: [all]

- name: Remove the rules again
  vmhealth.kvm.alerting_rule:
    target: prometheus_operator
    namespace: monitoring
    name: vm-health
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the object or file was (or in check mode would be) written or removed.
  returned: always
  type: bool
action:
  description: V(created), V(updated), V(removed) or V(unchanged); in check mode what would be done.
  returned: always
  type: str
  sample: created
target:
  description: The target used.
  returned: always
  type: str
  sample: prometheus_operator
alerts:
  description: Names of the alerts written (empty with O(state=absent)).
  returned: always
  type: list
  elements: str
  sample: [VirtualMachinePodNotReady, VirtualMachineGuestOSPanic, GuestRebootedByWatchdog]
groups:
  description: The rule groups as written (empty with O(state=absent)).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "vmhealth-kvm.vm-health", "rules": [{"alert": "VirtualMachineGuestOSPanic", "expr": "...", "for": "0s",
            "labels": {"severity": "critical"}, "annotations": {"summary": "..."}}]}]
checked_with:
  description: What checked the PromQL expressions, V(promtool), V(promql_parser) or V(none) (see the warning then).
  returned: always
  type: str
  sample: promtool
kind:
  description: V(AlertingRule) or V(PrometheusRule).
  returned: for the cluster targets
  type: str
  sample: PrometheusRule
api_version:
  description: API group and version of the object.
  returned: for the cluster targets
  type: str
  sample: monitoring.coreos.com/v1
name:
  description: Name of the object.
  returned: for the cluster targets
  type: str
  sample: vm-health
namespace:
  description: Namespace of the object.
  returned: for the cluster targets
  type: str
  sample: monitoring
object:
  description: The object as stored (in check mode, as it would be); null once removed or absent.
  returned: for the cluster targets
  type: dict
path:
  description: The rule file.
  returned: for the file target
  type: str
  sample: /etc/prometheus/rules/vm-health.yml
backup_file:
  description: The backup of the old rule file.
  returned: for the file target, when O(backup=true) and the file was replaced or removed
  type: str
  sample: /etc/prometheus/rules/vm-health.yml.4242.2026-01-31@12:00:00~
reloaded:
  description: Whether Prometheus was told to reload.
  returned: for the file target
  type: bool
  sample: true
diff:
  description:
    - The object's labels and spec before and after, or the rule file's text before and after.
  returned: in diff mode, when something changes
  type: dict
"""

from ansible.module_utils.urls import open_url
from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import pack
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.promql import find_promtool
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.runner import run
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError

RULE_SPEC = {
    "alert": {"type": "str"},
    "record": {"type": "str"},
    "expr": {"type": "str"},
    "for": {"type": "str"},
    "keep_firing_for": {"type": "str"},
    "labels": {"type": "dict"},
    "annotations": {"type": "dict"},
}


def argument_spec():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        {
            "target": {
                "type": "str",
                "required": True,
                "choices": ["openshift", "prometheus_operator", "file"],
            },
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "name": {"type": "str", "default": "vmhealth-vm-health"},
            "namespace": {"type": "str"},
            "labels": {"type": "dict"},
            "rules": {"type": "list", "elements": "str"},
            "group_name": {"type": "str", "default": pack.DEFAULT_GROUP_NAME},
            "group_interval": {"type": "str"},
            "rule_overrides": {"type": "dict"},
            "groups": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "name": {"type": "str", "required": True},
                    "interval": {"type": "str"},
                    "rules": {
                        "type": "list",
                        "elements": "dict",
                        "required": True,
                        "options": RULE_SPEC,
                    },
                },
            },
            "runbook_base_url": {"type": "str"},
            "path": {"type": "path"},
            "backup": {"type": "bool", "default": False},
            "promtool_path": {"type": "path"},
            "reload": {"type": "bool", "default": False},
            "reload_url": {"type": "str", "default": "http://127.0.0.1:9090/-/reload"},
            "reload_username": {"type": "str"},
            "reload_password": {"type": "str", "no_log": True},
            "reload_bearer_token": {"type": "str", "no_log": True},
            "reload_validate_certs": {"type": "bool", "default": True},
            "reload_ca_path": {"type": "path"},
            "reload_timeout": {"type": "int", "default": 10},
        }
    )
    return spec


def main():
    module = AnsibleK8SModule(
        module_class=AnsibleModule,
        argument_spec=argument_spec(),
        required_if=[
            ("target", "prometheus_operator", ["namespace"]),
            ("target", "file", ["path"]),
        ],
        mutually_exclusive=[("reload_password", "reload_bearer_token")],
        supports_check_mode=True,
        # The file target runs on Prometheus hosts without the kubernetes client: check it below,
        # for the cluster targets only.
        check_k8s=False,
        check_pyyaml=False,
    )
    params = module.params

    def connect():
        from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.runner import (
            connect as k8s_connect,
        )

        module.requires("kubernetes")
        return k8s_connect(module)

    try:
        promtool = find_promtool(params.get("promtool_path"))
        result, warnings = run(
            params,
            check_mode=module.check_mode,
            diff_mode=module._diff,
            connect=connect,
            promtool=promtool,
            open_url=open_url,
        )
    except VmHealthError as exc:
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
