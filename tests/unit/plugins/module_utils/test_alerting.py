"""Unit tests of the alerting rules layer: pack selection, validation, rendering, PromQL checks."""

from pathlib import Path

import pytest
import yaml

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import (
    pack,
    promql,
    render,
    rules,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ValidationError,
    VmHealthError,
)

OPENSHIFT = rules.TARGETS["openshift"]
OPERATOR = rules.TARGETS["prometheus_operator"]
FILE = rules.TARGETS["file"]


def params(**kwargs):
    base = {
        "rules": None,
        "groups": None,
        "rule_overrides": None,
        "runbook_base_url": None,
        "group_name": None,
    }
    base.update(kwargs)
    return base


def custom(rule=None, **group):
    one = {"alert": "HighLoad", "expr": "node_load1 > 10", "for": "5m"}
    one.update(rule or {})
    out = {"name": "custom", "rules": [one]}
    out.update(group)
    return out


# --------------------------------------------------------------------------- build_groups


def test_whole_pack_by_default_with_runbook_urls():
    groups = rules.build_groups(params())
    assert [g["name"] for g in groups] == [pack.DEFAULT_GROUP_NAME]
    assert rules.alert_names(groups) == list(pack.PACK_NAMES)
    for rule in groups[0]["rules"]:
        assert rule["annotations"]["runbook_url"] == "{0}/{1}.md".format(
            pack.DEFAULT_RUNBOOK_BASE_URL, rule["alert"]
        )


def test_pack_names_are_the_three_alerts_of_the_issue():
    assert pack.PACK_NAMES == (
        "VirtualMachinePodNotReady",
        "VirtualMachineGuestOSPanic",
        "GuestRebootedByWatchdog",
    )


def test_selection_keeps_pack_order_and_deduplicates():
    groups = rules.build_groups(
        params(
            rules=[
                "GuestRebootedByWatchdog",
                "VirtualMachinePodNotReady",
                "GuestRebootedByWatchdog",
            ]
        )
    )
    assert rules.alert_names(groups) == ["VirtualMachinePodNotReady", "GuestRebootedByWatchdog"]


def test_unknown_pack_alert_is_refused():
    with pytest.raises(ValidationError, match="rules: unknown built-in alert 'VMDown'"):
        rules.build_groups(params(rules=["VMDown"]))


def test_custom_groups_only_exclude_the_pack_and_get_no_default_runbook():
    groups = rules.build_groups(params(groups=[custom()]))
    assert [g["name"] for g in groups] == ["custom"]
    assert "annotations" not in groups[0]["rules"][0]


def test_runbook_base_url_template_form_and_custom_rules():
    groups = rules.build_groups(
        params(rules=["all"], groups=[custom()], runbook_base_url="https://wiki/rb/{alert}")
    )
    urls = [r["annotations"]["runbook_url"] for g in groups for r in g["rules"]]
    assert urls[0] == "https://wiki/rb/VirtualMachinePodNotReady"
    assert urls[-1] == "https://wiki/rb/HighLoad"
    groups = rules.build_groups(
        params(rules=["VirtualMachineGuestOSPanic"], runbook_base_url="https://x/y/")
    )
    assert (
        groups[0]["rules"][0]["annotations"]["runbook_url"]
        == "https://x/y/VirtualMachineGuestOSPanic.md"
    )


def test_custom_runbook_url_is_kept():
    rule = {"annotations": {"runbook_url": "https://mine"}}
    groups = rules.build_groups(params(groups=[custom(rule)], runbook_base_url="https://wiki"))
    assert groups[0]["rules"][0]["annotations"]["runbook_url"] == "https://mine"


def test_overrides_change_for_and_merge_labels_but_not_expr():
    groups = rules.build_groups(
        params(
            rules=["VirtualMachinePodNotReady"],
            rule_overrides={
                "VirtualMachinePodNotReady": {"for": "10m", "labels": {"team": "virt"}}
            },
        )
    )
    rule = groups[0]["rules"][0]
    assert rule["for"] == "10m"
    assert rule["labels"] == {"severity": "warning", "team": "virt"}
    assert rule["expr"] == pack.POD_NOT_READY_EXPR
    # the pack itself is not modified
    assert pack.PACK_BY_NAME["VirtualMachinePodNotReady"]["for"] == "5m"
    with pytest.raises(ValidationError, match="unsupported key"):
        rules.build_groups(params(rule_overrides={"VirtualMachinePodNotReady": {"expr": "up"}}))
    with pytest.raises(ValidationError, match="not a selected built-in alert"):
        rules.build_groups(
            params(
                rules=["VirtualMachineGuestOSPanic"],
                rule_overrides={"VirtualMachinePodNotReady": {"for": "1m"}},
            )
        )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("group", "target", "message"),
    [
        (
            custom({"for": "5 minutes"}),
            OPERATOR,
            'group "custom", alert "HighLoad": for \'5 minutes\' is not a valid duration',
        ),
        (
            custom({"for": "1m1h"}),
            OPERATOR,
            "alert \"HighLoad\": for '1m1h' is not a valid duration",
        ),
        (custom({"for": 5}), OPERATOR, 'alert "HighLoad": for must be a string'),
        (
            custom(interval="1 min"),
            OPERATOR,
            "group \"custom\": interval '1 min' is not a valid duration",
        ),
        (
            custom({"keep_firing_for": "10x"}),
            OPERATOR,
            "keep_firing_for '10x' is not a valid duration",
        ),
        (
            custom({"keep_firing_for": "10m"}),
            OPENSHIFT,
            'alert "HighLoad": keep_firing_for is not supported by the openshift target',
        ),
        (custom({"labels": {"1team": "x"}}), FILE, "label name '1team' is invalid"),
        (custom({"labels": {"team-name": "x"}}), FILE, "label name 'team-name' is invalid"),
        (custom({"labels": {"__name__": "x"}}), FILE, "label name '__name__' is invalid"),
        (custom({"labels": {"prio": 1}}), FILE, "labels.prio must be a string"),
        (
            custom({"annotations": {"runbook-url": "x"}}),
            FILE,
            "annotation name 'runbook-url' is invalid",
        ),
        (custom({"expr": ""}), FILE, 'alert "HighLoad": expr is required'),
        (custom({"alert": None}), FILE, 'group "custom", rule #1: alert (or record) is required'),
        (custom({"record": "job:up:sum"}), FILE, "set either alert or record, not both"),
        (
            custom({"alert": None, "record": "job:up:sum", "for": None}),
            OPENSHIFT,
            "recording rules are not supported by the openshift target",
        ),
        (
            custom({"alert": None, "record": "bad-name", "for": None}),
            OPERATOR,
            "record must be a valid metric name",
        ),
        (
            custom({"alert": "A" * 2049}),
            OPENSHIFT,
            "longer than the 2048 characters a AlertingRule allows",
        ),
        ({"name": "empty", "rules": []}, FILE, 'group "empty": at least one rule is required'),
    ],
)
def test_invalid_rules_are_refused_naming_the_rule(group, target, message):
    groups = rules.build_groups(params(groups=[group]))
    with pytest.raises(ValidationError) as err:
        rules.validate_groups(groups, target)
    assert message in str(err.value)


def test_alert_names_unique_within_a_group_only():
    twice = {
        "name": "g",
        "rules": [{"alert": "A", "expr": "up"}, {"alert": "A", "expr": "up == 0"}],
    }
    with pytest.raises(ValidationError, match='group "g", alert "A": the alert name is used twice'):
        rules.validate_groups(rules.build_groups(params(groups=[twice])), FILE)
    other = {"name": "h", "rules": [{"alert": "A", "expr": "up"}]}
    single = {"name": "g", "rules": [{"alert": "A", "expr": "up"}]}
    rules.validate_groups(rules.build_groups(params(groups=[single, other])), FILE)


def test_group_names_unique():
    with pytest.raises(ValidationError, match='group "custom": group names must be unique'):
        rules.validate_groups(rules.build_groups(params(groups=[custom(), custom()])), FILE)


def test_valid_durations_pass():
    for value in ("0", "0s", "30s", "1h30m", "1y2w3d4h5m6s7ms", "500ms"):
        group = custom({"for": value, "keep_firing_for": value})
        rules.validate_groups(rules.build_groups(params(groups=[group])), OPERATOR)


def test_keep_firing_for_and_recording_rules_are_fine_for_prometheus_operator_and_file():
    rec = {
        "name": "rec",
        "rules": [{"record": "namespace:up:sum", "expr": "sum by (namespace) (up)"}],
    }
    for target in (OPERATOR, FILE):
        rules.validate_groups(
            rules.build_groups(params(groups=[custom({"keep_firing_for": "5m"}), rec])), target
        )


def test_whole_pack_is_valid_for_every_target():
    for target in rules.TARGETS.values():
        rules.validate_groups(rules.build_groups(params()), target)


def test_nothing_selected():
    with pytest.raises(ValidationError, match="nothing to write"):
        rules.validate_groups(rules.build_groups(params(rules=[])), FILE)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"name": "Bad_Name"}, "name: 'Bad_Name' is not a valid object name"),
        ({"name": "-x"}, "not a valid object name"),
        ({"name": "a" * 254}, "not a valid object name"),
        (
            {"namespace": "monitoring"},
            "OpenShift only evaluates AlertingRule objects in 'openshift-monitoring'",
        ),
    ],
)
def test_openshift_object_meta_errors(meta, message):
    values = {"name": "vm-health", "namespace": None, "labels": None}
    values.update(meta)
    with pytest.raises(ValidationError) as err:
        rules.validate_object_meta(values, OPENSHIFT)
    assert message in str(err.value)


def test_openshift_namespace_defaults_to_openshift_monitoring():
    assert rules.validate_object_meta({"name": "vm.health", "namespace": None}, OPENSHIFT) == (
        "vm.health",
        "openshift-monitoring",
    )
    assert (
        rules.validate_object_meta({"name": "x", "namespace": "openshift-monitoring"}, OPENSHIFT)[1]
        == "openshift-monitoring"
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"bad key": "x"}, "'bad key' is not a valid label name"),
        ({"example.com/": "x"}, "not a valid label name"),
        ({"Bad_Prefix/x": "x"}, "invalid prefix"),
        ({"release": "has space"}, "labels.release: 'has space' is not a valid label value"),
        ({"release": 5}, "labels.release: must be a string"),
    ],
)
def test_object_labels(labels, message):
    with pytest.raises(ValidationError) as err:
        rules.validate_object_meta(
            {"name": "x", "namespace": "monitoring", "labels": labels}, OPERATOR
        )
    assert message in str(err.value)


def test_object_labels_ok():
    meta = {
        "name": "x",
        "namespace": "monitoring",
        "labels": {"release": "kube-prometheus-stack", "app.kubernetes.io/part-of": "vm"},
    }
    assert rules.validate_object_meta(meta, OPERATOR) == ("x", "monitoring")


def test_prometheus_operator_needs_a_valid_namespace():
    with pytest.raises(ValidationError, match="namespace: 'Mon' is not a valid namespace"):
        rules.validate_object_meta({"name": "x", "namespace": "Mon"}, OPERATOR)


# --------------------------------------------------------------------------- rendering


TRICKY = [
    "plain",
    'with "quotes" and \\ backslash',
    "unicode: é ü ✓",
    "multi\nline\n\nwith blank",
    "  leading spaces\nsecond",
    "trailing space \nsecond",
    "tab\there\nx",
    "ends with newline\n",
    "{{ $labels.pod }}: yes/no true null ~ 0x1f #comment",
    "",
]


def test_to_yaml_round_trips():
    data = {
        "groups": [
            {
                "name": "g",
                "rules": [{"alert": "A", "expr": text, "labels": {"k": text}} for text in TRICKY],
            }
        ]
    }
    assert yaml.safe_load(render.to_yaml(data)) == data


def test_rule_file_is_stable_and_parses():
    groups = rules.build_groups(params())
    text = render.rule_file_text(groups)
    assert text.startswith("# Managed by Ansible")
    assert render.rule_file_text(rules.build_groups(params())) == text
    loaded = yaml.safe_load(text)
    assert loaded == {"groups": rules.public_groups(groups)}
    assert "_index" not in text


def test_desired_object_per_target():
    groups = rules.build_groups(params(rules=["VirtualMachineGuestOSPanic"]))
    obj = render.desired_object(OPENSHIFT, "vm-health", "openshift-monitoring", {"a": "b"}, groups)
    assert obj["apiVersion"] == "monitoring.openshift.io/v1" and obj["kind"] == "AlertingRule"
    assert obj["metadata"] == {
        "name": "vm-health",
        "namespace": "openshift-monitoring",
        "labels": {"a": "b"},
    }
    assert obj["spec"]["groups"][0]["rules"][0]["alert"] == "VirtualMachineGuestOSPanic"
    obj = render.desired_object(OPERATOR, "vm-health", "monitoring", None, groups)
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    assert "labels" not in obj["metadata"]


def test_needs_update_and_updated_object():
    groups = rules.build_groups(params(rules=["VirtualMachineGuestOSPanic"]))
    desired = render.desired_object(OPERATOR, "r", "monitoring", {"release": "kps"}, groups)
    stored = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "r",
            "namespace": "monitoring",
            "resourceVersion": "7",
            "labels": {"release": "kps", "other": "kept"},
        },
        "spec": desired["spec"],
    }
    assert not render.needs_update(stored, desired)
    stored["metadata"]["labels"]["release"] = "old"
    assert render.needs_update(stored, desired)
    body = render.updated_object(stored, desired)
    assert body["metadata"]["resourceVersion"] == "7"
    assert body["metadata"]["labels"] == {"release": "kps", "other": "kept"}
    stored["metadata"]["labels"]["release"] = "kps"
    stored["spec"] = {"groups": []}
    assert render.needs_update(stored, desired)


# --------------------------------------------------------------------------- PromQL checks


class FakeParser:
    def __init__(self, bad):
        self.bad = bad
        self.parsed = []

    def parse(self, expr):
        self.parsed.append(expr)
        if expr == self.bad:
            raise ValueError("unexpected end of input")


def test_parser_fallback_names_the_rule():
    groups = rules.build_groups(params(groups=[custom({"expr": "sum(up"})]))
    with pytest.raises(
        ValidationError,
        match='group "custom", alert "HighLoad": expr does not parse: unexpected end',
    ):
        promql.check_expressions(groups, promtool=None, parser=FakeParser("sum(up"))


def test_parser_fallback_passes_good_rules():
    parser = FakeParser(None)
    groups = rules.build_groups(params())
    assert promql.check_expressions(groups, promtool=None, parser=parser) == ("promql_parser", [])
    assert len(parser.parsed) == len(pack.PACK)


def test_no_checker_warns(monkeypatch):
    monkeypatch.setattr(promql, "_import_parser", lambda: None)
    checker, warnings = promql.check_expressions(rules.build_groups(params()), promtool=None)
    assert checker == "none"
    assert "were not checked" in warnings[0] and "promql-parser" in warnings[0]


def test_file_target_requires_promtool():
    with pytest.raises(ValidationError, match="promtool not found"):
        promql.check_expressions(rules.build_groups(params()), promtool=None, require_promtool=True)


def test_find_promtool(tmp_path):
    with pytest.raises(ValidationError, match="promtool_path"):
        promql.find_promtool(str(tmp_path / "nope"))
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert promql.find_promtool(str(tool)) == str(tool)


def test_promtool_message_strips_temp_path():
    out = 'Checking /tmp/x.yml\n  FAILED:\n/tmp/x.yml: 9:11: group "g", rule 2, "B": could not parse expression\n'
    assert (
        promql.promtool_message(out, "/tmp/x.yml")
        == '9:11: group "g", rule 2, "B": could not parse expression'
    )


def test_promtool_that_cannot_run():
    with pytest.raises(VmHealthError, match="Failed to run"):
        promql.run_promtool("/nonexistent/promtool", "/tmp/x")


promtool = pytest.mark.skipif(
    promql.find_promtool() is None, reason="promtool not installed (Debian package prometheus)"
)


@promtool
def test_real_promtool_names_group_and_alert():
    groups = rules.build_groups(
        params(rules=["all"], groups=[custom({"expr": "sum(rate(x[5m]) by (a"})])
    )
    with pytest.raises(ValidationError) as err:
        promql.check_expressions(groups, promtool=promql.find_promtool())
    assert 'group "custom", rule 1, "HighLoad": could not parse expression' in str(err.value)


@promtool
def test_real_promtool_checks_annotation_templates():
    groups = rules.build_groups(
        params(groups=[custom({"annotations": {"summary": "{{ $labels.pod "}})])
    )
    with pytest.raises(ValidationError, match='"HighLoad": annotation "summary"'):
        promql.check_expressions(groups, promtool=promql.find_promtool())


@promtool
def test_real_promtool_accepts_the_pack():
    assert promql.check_expressions(
        rules.build_groups(params()), promtool=promql.find_promtool()
    ) == ("promtool", [])


# --------------------------------------------------------------------------- runbooks

RUNBOOKS = Path(__file__).resolve().parents[4] / "docs" / "runbooks"


@pytest.mark.parametrize("alert", pack.PACK_NAMES)
def test_every_pack_alert_has_a_runbook_in_the_openshift_structure(alert):
    text = (RUNBOOKS / "{0}.md".format(alert)).read_text()
    assert text.startswith("# {0}\n".format(alert))
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation"]


def test_pod_not_ready_runbook_covers_the_causes():
    text = (RUNBOOKS / "VirtualMachinePodNotReady.md").read_text()
    for cause in (
        "Guest agent missing or stopped",
        "Guest crashed or hung",
        "blue screen",
        "Probe misconfiguration",
    ):
        assert cause in text
