# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alerting rules: targets, the desired rule groups, and their validation.

Pure computation, no I/O. :func:`build_groups` turns the module parameters into the list of
rule groups to write (pack alerts plus custom groups); :func:`validate_request` checks
everything a target would refuse (the CRD schemas of AlertingRule and PrometheusRule and
Prometheus' own rule-file checks), so that bad input fails before the first API request or
file write. PromQL syntax is checked separately (:mod:`.promql`), because that needs a tool.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import pack
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError

#: Duration pattern of both CRDs (and what Prometheus' model.ParseDuration accepts).
DURATION_RE = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
#: Prometheus label (and annotation) names.
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Prometheus metric names (recording rule names).
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
K8S_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
K8S_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

OPENSHIFT_MONITORING = "openshift-monitoring"

#: Field order of a rule as written (file target and objects alike).
RULE_FIELDS = ("alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations")


class Target:
    """What one target is and supports."""

    def __init__(
        self,
        name,
        kind=None,
        group_version=None,
        plural=None,
        keep_firing_for=True,
        record=True,
        max_length=None,
    ):
        self.name = name
        self.kind = kind
        self.group_version = group_version
        self.plural = plural
        self.keep_firing_for = keep_firing_for
        self.record = record
        #: maxLength of names, alert names and durations in the CRD (None: unlimited).
        self.max_length = max_length

    @property
    def is_cluster(self):
        return self.kind is not None


TARGETS = {
    "openshift": Target(
        "openshift",
        kind="AlertingRule",
        group_version="monitoring.openshift.io/v1",
        plural="alertingrules",
        keep_firing_for=False,
        record=False,
        max_length=2048,
    ),
    "prometheus_operator": Target(
        "prometheus_operator",
        kind="PrometheusRule",
        group_version="monitoring.coreos.com/v1",
        plural="prometheusrules",
    ),
    "file": Target("file"),
}


#: Names longer than this are shortened in messages.
NAME_IN_MESSAGE = 80


def _short(name):
    name = str(name)
    return name if len(name) <= NAME_IN_MESSAGE else name[: NAME_IN_MESSAGE - 3] + "..."


def rule_ref(group, rule):
    """How messages name a rule: group "g", alert "A" (or record "r", or rule #n)."""
    if rule.get("alert"):
        what = 'alert "{0}"'.format(_short(rule["alert"]))
    elif rule.get("record"):
        what = 'record "{0}"'.format(_short(rule["record"]))
    else:
        what = "rule #{0}".format(rule.get("_index", 0) + 1)
    return 'group "{0}", {1}'.format(_short(group.get("name")), what)


def runbook_url(base, alert):
    """The runbook address of an alert: ``base`` with ``{alert}`` replaced, else ``<base>/<alert>.md``."""
    if "{alert}" in base:
        return base.replace("{alert}", alert)
    return "{0}/{1}.md".format(base.rstrip("/"), alert)


def _clean_map(value):
    """Labels/annotations as given, or {} when unset."""
    return dict(value) if value else {}


def _clean_rule(rule, index):
    """One rule dict with only the fields that are set, in RULE_FIELDS order."""
    out = {"_index": index}
    for field in RULE_FIELDS:
        value = rule.get(field)
        if field in ("labels", "annotations"):
            value = _clean_map(value)
            if value:
                out[field] = value
        elif value is not None and value != "":
            out[field] = value
    # keep an explicit empty alert/record/expr visible to validation
    for field in ("alert", "record", "expr"):
        if rule.get(field) == "":
            out[field] = ""
    return out


def _selected_pack_names(rules):
    if rules is None:
        return []
    names = []
    for name in rules:
        if name == pack.ALL:
            candidates = pack.PACK_NAMES
        elif name in pack.PACK_BY_NAME:
            candidates = (name,)
        else:
            raise ValidationError(
                "rules: unknown built-in alert {0!r}; choose from {1} or {2!r}".format(
                    name, ", ".join(pack.PACK_NAMES), pack.ALL
                )
            )
        for candidate in candidates:
            if candidate not in names:
                names.append(candidate)
    # keep the pack's own order whatever the order of the request
    return [n for n in pack.PACK_NAMES if n in names]


def build_groups(params):
    """The rule groups to write, from the module parameters (not yet validated).

    ``rules`` selects pack alerts (default: the whole pack unless custom ``groups`` are given),
    ``rule_overrides`` changes their ``for``/``keep_firing_for``/labels/annotations, and the
    runbook_url annotation is set from ``runbook_base_url``. Custom ``groups`` follow as given;
    they get a runbook_url only when ``runbook_base_url`` was given and they have none.
    """
    rules = params.get("rules")
    if rules is None and not params.get("groups"):
        rules = [pack.ALL]
    names = _selected_pack_names(rules)
    overrides = params.get("rule_overrides") or {}
    if not isinstance(overrides, dict):
        raise ValidationError("rule_overrides: must be a dictionary keyed by built-in alert name")
    for alert in overrides:
        if alert not in names:
            raise ValidationError(
                "rule_overrides: {0!r} is not a selected built-in alert (selected: {1})".format(
                    alert, ", ".join(names) or "none"
                )
            )
    explicit_base = params.get("runbook_base_url")
    base = explicit_base or pack.DEFAULT_RUNBOOK_BASE_URL

    groups = []
    if names:
        group_name = params.get("group_name") or pack.DEFAULT_GROUP_NAME
        group = {"name": group_name, "rules": []}
        if params.get("group_interval"):
            group["interval"] = params["group_interval"]
        for index, alert in enumerate(names):
            rule = copy.deepcopy(pack.PACK_BY_NAME[alert])
            override = overrides.get(alert) or {}
            if not isinstance(override, dict):
                raise ValidationError("rule_overrides.{0}: must be a dictionary".format(alert))
            unknown = sorted(set(override) - {"for", "keep_firing_for", "labels", "annotations"})
            if unknown:
                raise ValidationError(
                    "rule_overrides.{0}: unsupported key(s) {1}; use for, keep_firing_for, labels, annotations".format(
                        alert, ", ".join(unknown)
                    )
                )
            for field in ("for", "keep_firing_for"):
                if override.get(field) is not None:
                    rule[field] = override[field]
            for field in ("labels", "annotations"):
                if override.get(field):
                    if not isinstance(override[field], dict):
                        raise ValidationError(
                            "rule_overrides.{0}.{1}: must be a dictionary".format(alert, field)
                        )
                    rule[field].update(override[field])
            rule["annotations"]["runbook_url"] = runbook_url(base, alert)
            group["rules"].append(_clean_rule(rule, index))
        groups.append(group)

    for gindex, given in enumerate(params.get("groups") or []):
        if not isinstance(given, dict):
            raise ValidationError("groups[{0}]: must be a dictionary".format(gindex))
        group = {"name": given.get("name")}
        if given.get("interval"):
            group["interval"] = given["interval"]
        group["rules"] = []
        for index, rule in enumerate(given.get("rules") or []):
            if not isinstance(rule, dict):
                raise ValidationError(
                    'group "{0}", rule #{1}: must be a dictionary'.format(group["name"], index + 1)
                )
            rule = _clean_rule(rule, index)
            if (
                explicit_base
                and rule.get("alert")
                and "runbook_url" not in rule.get("annotations", {})
            ):
                rule.setdefault("annotations", {})["runbook_url"] = runbook_url(
                    explicit_base, rule["alert"]
                )
            group["rules"].append(rule)
        groups.append(group)
    return groups


def _check_duration(value, where, field, target, allow_empty=True):
    if not isinstance(value, str):
        raise ValidationError(
            "{0}: {1} must be a string such as 5m, got {2!r}".format(where, field, value)
        )
    if (value == "" and not allow_empty) or not DURATION_RE.match(value):
        raise ValidationError(
            "{0}: {1} {2!r} is not a valid duration (units y, w, d, h, m, s, ms from largest to smallest, "
            "e.g. 1h30m or 90s)".format(where, field, value)
        )
    _check_length(value, where, field, target)


def _check_length(value, where, field, target):
    if target.max_length and len(value) > target.max_length:
        raise ValidationError(
            "{0}: {1} is longer than the {2} characters a {3} allows".format(
                where, field, target.max_length, target.kind
            )
        )


def _check_prom_map(mapping, where, field):
    for key, value in mapping.items():
        if not isinstance(key, str) or not LABEL_NAME_RE.match(key) or key.startswith("__"):
            raise ValidationError(
                "{0}: {1} name {2!r} is invalid (letters, digits and _, not starting with a digit or __)".format(
                    where, field[:-1], key
                )
            )
        if not isinstance(value, str):
            raise ValidationError(
                "{0}: {1}.{2} must be a string, got {3!r} (quote it)".format(
                    where, field, key, value
                )
            )


def _validate_rule(group, rule, target):
    where = rule_ref(group, rule)
    alert, record = rule.get("alert"), rule.get("record")
    if alert is not None and record is not None:
        raise ValidationError("{0}: set either alert or record, not both".format(where))
    if alert is None and record is None:
        raise ValidationError("{0}: alert (or record) is required".format(where))
    if record is not None:
        if not target.record:
            raise ValidationError(
                "{0}: recording rules are not supported by the {1} target ({2} holds alerting rules only)".format(
                    where, target.name, target.kind
                )
            )
        if not isinstance(record, str) or not METRIC_NAME_RE.match(record):
            raise ValidationError("{0}: record must be a valid metric name".format(where))
        for field in ("for", "keep_firing_for", "annotations"):
            if field in rule:
                raise ValidationError(
                    "{0}: {1} is only valid for alerting rules".format(where, field)
                )
    else:
        if not isinstance(alert, str) or not alert.strip():
            raise ValidationError("{0}: alert must be a non-empty string".format(where))
        _check_length(alert, where, "alert", target)
    expr = rule.get("expr")
    if expr is None or (isinstance(expr, str) and not expr.strip()):
        raise ValidationError("{0}: expr is required".format(where))
    if not isinstance(expr, str):
        raise ValidationError("{0}: expr must be a string (a PromQL expression)".format(where))
    if "for" in rule:
        _check_duration(rule["for"], where, "for", target)
    if "keep_firing_for" in rule:
        if not target.keep_firing_for:
            raise ValidationError(
                "{0}: keep_firing_for is not supported by the {1} target ({2} has no such field)".format(
                    where, target.name, target.kind
                )
            )
        _check_duration(
            rule["keep_firing_for"], where, "keep_firing_for", target, allow_empty=False
        )
    for field in ("labels", "annotations"):
        value = rule.get(field, {})
        if not isinstance(value, dict):
            raise ValidationError("{0}: {1} must be a dictionary".format(where, field))
        _check_prom_map(value, where, field)


def validate_groups(groups, target):
    """Check the rule groups against what the target accepts; raise ValidationError naming the rule."""
    if not groups:
        raise ValidationError(
            "nothing to write: select built-in alerts with rules or give custom groups"
        )
    seen_groups = set()
    for group in groups:
        name = group.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("groups: every group needs a non-empty name")
        _check_length(name, 'group "{0}"'.format(name), "name", target)
        if name in seen_groups:
            raise ValidationError('group "{0}": group names must be unique'.format(name))
        seen_groups.add(name)
        if "interval" in group:
            _check_duration(group["interval"], 'group "{0}"'.format(name), "interval", target)
        if not group["rules"]:
            raise ValidationError('group "{0}": at least one rule is required'.format(name))
        seen = set()
        for rule in group["rules"]:
            _validate_rule(group, rule, target)
            alert = rule.get("alert")
            if alert is not None:
                if alert in seen:
                    raise ValidationError(
                        "{0}: the alert name is used twice in this group".format(
                            rule_ref(group, rule)
                        )
                    )
                seen.add(alert)


def validate_object_meta(params, target):
    """Check name, namespace and object labels of a cluster target; return (name, namespace)."""
    name = params.get("name")
    if not name or len(name) > 253 or not DNS1123_SUBDOMAIN_RE.match(name):
        raise ValidationError(
            "name: {0!r} is not a valid object name (DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
            "at most 253 characters, starting and ending with a letter or digit)".format(name)
        )
    namespace = params.get("namespace")
    if target.name == "openshift":
        if namespace in (None, ""):
            namespace = OPENSHIFT_MONITORING
        elif namespace != OPENSHIFT_MONITORING:
            raise ValidationError(
                "namespace: OpenShift only evaluates AlertingRule objects in {0!r}; one in {1!r} would be silently "
                "ignored. Leave namespace unset or use {0!r}".format(
                    OPENSHIFT_MONITORING, namespace
                )
            )
    if not namespace:
        raise ValidationError("namespace: required with target={0}".format(target.name))
    if len(namespace) > 63 or not DNS1123_LABEL_RE.match(namespace):
        raise ValidationError(
            "namespace: {0!r} is not a valid namespace name (DNS-1123 label)".format(namespace)
        )
    for key, value in (params.get("labels") or {}).items():
        validate_k8s_label(key, value)
    return name, namespace


def validate_k8s_label(key, value):
    """A Kubernetes label: optional DNS-1123 prefix + name of at most 63 characters, value likewise."""
    prefix, _sep, name = key.rpartition("/") if "/" in key else ("", "", key)
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN_RE.match(prefix)):
        raise ValidationError(
            "labels: {0!r} has an invalid prefix (must be a DNS-1123 subdomain)".format(key)
        )
    if not name or len(name) > 63 or not K8S_LABEL_NAME_RE.match(name):
        raise ValidationError(
            "labels: {0!r} is not a valid label name (at most 63 letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit)".format(key)
        )
    if not isinstance(value, str):
        raise ValidationError(
            "labels.{0}: must be a string, got {1!r} (quote it)".format(key, value)
        )
    if len(value) > 63 or not K8S_LABEL_VALUE_RE.match(value):
        raise ValidationError("labels.{0}: {1!r} is not a valid label value".format(key, value))


def public_groups(groups):
    """The groups without internal bookkeeping keys, as written to the target."""
    out = []
    for group in groups:
        clean = {"name": group["name"]}
        if "interval" in group:
            clean["interval"] = group["interval"]
        clean["rules"] = [
            {k: copy.deepcopy(rule[k]) for k in RULE_FIELDS if k in rule} for rule in group["rules"]
        ]
        out.append(clean)
    return out


def alert_names(groups):
    """Names of all alerts in the groups, in order."""
    return [rule["alert"] for group in groups for rule in group["rules"] if rule.get("alert")]
