# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The alerting_rule module's flow: validate everything, then apply to one target.

Every check (parameters, rule groups, PromQL) runs before the first API request or file write,
so bad input fails with nothing done.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import promql
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.cluster_target import (
    ClusterTarget,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.file_target import (
    FileTarget,
    check_destination,
    reload_prometheus,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.render import (
    desired_object,
    rule_file_text,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.rules import (
    TARGETS,
    alert_names,
    build_groups,
    public_groups,
    validate_groups,
    validate_object_meta,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError

#: Options that only make sense for the file target.
FILE_ONLY = ("path", "backup", "reload")


class Plan:
    """What validation produced: the target, the groups and what to tell the user."""

    def __init__(self, target, groups, checker, warnings, name=None, namespace=None):
        self.target = target
        self.groups = groups
        self.checker = checker
        self.warnings = warnings
        self.name = name
        self.namespace = namespace


def plan(params, promtool=None, parser=None):
    """Validate the parameters and rules (no API access, no write); return a Plan.

    ``promtool`` is the promtool executable to use (None: none available).
    """
    target = TARGETS[params["target"]]
    warnings = []
    name = namespace = None
    if target.is_cluster:
        for option in FILE_ONLY:
            if params.get(option):
                raise VmHealthError("{0}: only valid with target=file".format(option))
        name, namespace = validate_object_meta(params, target)
    else:
        check_destination(params.get("path"))
        if params.get("labels"):
            warnings.append("labels: ignored by the file target (a rule file has no object labels)")
    groups = []
    checker = "none"
    if params["state"] == "present":
        groups = build_groups(params)
        validate_groups(groups, target)
        checker, found = promql.check_expressions(
            groups, promtool=promtool, parser=parser, require_promtool=not target.is_cluster
        )
        warnings.extend(found)
    return Plan(target, groups, checker, warnings, name=name, namespace=namespace)


def apply_cluster(the_plan, params, api, check_mode, diff_mode):
    service = ClusterTarget(
        api,
        the_plan.target,
        the_plan.name,
        the_plan.namespace,
        check_mode=check_mode,
        diff_mode=diff_mode,
    )
    if params["state"] == "absent":
        return service.remove()
    desired = desired_object(
        the_plan.target, the_plan.name, the_plan.namespace, params.get("labels"), the_plan.groups
    )
    return service.apply(desired)


def apply_file(the_plan, params, promtool, open_url, check_mode, diff_mode):
    service = FileTarget(
        params["path"],
        promtool=promtool,
        backup=params.get("backup"),
        check_mode=check_mode,
        diff_mode=diff_mode,
    )
    result = (
        service.remove()
        if params["state"] == "absent"
        else service.apply(rule_file_text(the_plan.groups))
    )
    result["reloaded"] = False
    if params.get("reload") and result["changed"] and not check_mode:
        try:
            reload_prometheus(
                params["reload_url"],
                open_url,
                username=params.get("reload_username"),
                password=params.get("reload_password"),
                bearer_token=params.get("reload_bearer_token"),
                validate_certs=params.get("reload_validate_certs", True),
                ca_path=params.get("reload_ca_path"),
                timeout=params.get("reload_timeout") or 10,
            )
        except VmHealthError as exc:
            exc.result = result
            raise
        result["reloaded"] = True
    return result


def run(
    params,
    check_mode=False,
    diff_mode=False,
    connect=None,
    promtool=None,
    parser=None,
    open_url=None,
):
    """Validate, then apply; return (module result, warnings). Raises VmHealthError on failure.

    ``connect()`` returns a KubeApi and is called only after validation passed.
    """
    the_plan = plan(params, promtool=promtool, parser=parser)
    if the_plan.target.is_cluster:
        result = apply_cluster(the_plan, params, connect(), check_mode, diff_mode)
    else:
        result = apply_file(the_plan, params, promtool, open_url, check_mode, diff_mode)
    result.update(
        {
            "target": params["target"],
            "state": params["state"],
            "alerts": alert_names(the_plan.groups),
            "groups": public_groups(the_plan.groups),
            "checked_with": the_plan.checker,
        }
    )
    return result, the_plan.warnings
