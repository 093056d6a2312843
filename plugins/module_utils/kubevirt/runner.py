# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between an Ansible module and the fleet engine: validate, connect, run, report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ValidationError,
    VmHealthError,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.k8s_api import KubeApi
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.args import MAX_PARALLEL
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.fleet import FleetReconciler
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.selection import (
    Selection,
    parse_max_unavailable,
)

#: How many failed objects the failure message lists by name.
FAILURES_LISTED = 20


def validate_fleet_options(params):
    """Check the selection and rollout options; return the Selection. No API access."""
    selection = Selection.from_params(params)
    if not 1 <= params["parallel"] <= MAX_PARALLEL:
        raise ValidationError("parallel: must be between 1 and {0}".format(MAX_PARALLEL))
    if params["wait_timeout"] < 1:
        raise ValidationError("wait_timeout: must be at least 1 second")
    if params["wait_sleep"] < 1:
        raise ValidationError("wait_sleep: must be at least 1 second")
    # Resolving against any population checks the syntax before the first request.
    parse_max_unavailable(params["max_unavailable"], 100)
    return selection


def failure_message(failed, rollout):
    """One line that says what went wrong, naming the objects."""
    parts = []
    if failed:
        listed = "; ".join(
            "{0} {1}/{2}: {3}".format(i.kind, i.namespace, i.name, i.reason)
            for i in failed[:FAILURES_LISTED]
        )
        if len(failed) > FAILURES_LISTED:
            listed += "; and {0} more".format(len(failed) - FAILURES_LISTED)
        parts.append("{0} object(s) failed: {1}".format(len(failed), listed))
    if rollout and rollout.get("stopped"):
        parts.append(
            "the restart rollout stopped at batch {0} of {1}: {2} not Ready within the wait timeout".format(
                rollout["stopped_at_batch"], rollout["batches"], ", ".join(rollout["not_ready"])
            )
        )
    return "; ".join(parts)


def connect(module):
    """A KubeApi on kubernetes.core's client (auth options, kubeconfig, TLS settings)."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
        CoreException,
    )

    try:
        return KubeApi(get_api_client(module=module))
    except CoreException as exc:
        raise VmHealthError(str(exc)) from exc


def run_fleet_module(module, build_policy, api=None):
    """Validate everything, then apply the module's policy to the selected fleet.

    ``build_policy(params)`` validates the module's own options and returns
    ``(policy, extra_result)``. Ends the module with exit_json or fail_json.
    """
    params = module.params
    policy, extra = build_policy(params)
    selection = validate_fleet_options(params)
    reconciler = FleetReconciler(
        api or connect(module),
        selection,
        policy,
        check_mode=module.check_mode,
        diff_mode=module._diff,
        parallel=params["parallel"],
        templates=params["templates"],
        restart=params["restart"],
        max_unavailable=params["max_unavailable"],
        wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"],
    )
    result = reconciler.run()
    result.update(extra)
    for warning in reconciler.warnings:
        module.warn(warning)
    failed, stopped = reconciler.failures()
    if failed or stopped:
        module.fail_json(msg=failure_message(failed, reconciler.rollout), **result)
    module.exit_json(**result)
