"""Prometheus' own rule evaluator on the built-in pack: `promtool test rules` for every alert.

The pack is rendered exactly as the module writes it (render.rule_file_text) into a temporary
directory next to copies of tests/rules/*.test.yml, so the tests check the shipped rules, not a
copy of them. promtool comes from Debian's `prometheus` package (tests/debian-packages.txt).
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import pack
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.render import rule_file_text
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.rules import build_groups

RULE_TESTS = Path(__file__).resolve().parents[1] / "rules"
PROMTOOL = shutil.which("promtool")


def _pack_file(directory):
    groups = build_groups({"rules": ["all"]})
    (directory / "vm-health.rules.yml").write_text(rule_file_text(groups))


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory):
    assert PROMTOOL, "promtool is required (Debian package prometheus; `make apt` installs it)"
    directory = tmp_path_factory.mktemp("rules")
    _pack_file(directory)
    for test_file in RULE_TESTS.glob("*.test.yml"):
        shutil.copy(test_file, directory / test_file.name)
    return directory


def test_every_pack_alert_has_a_rule_test():
    assert sorted(p.name.split(".")[0] for p in RULE_TESTS.glob("*.test.yml")) == sorted(
        pack.PACK_NAMES
    )


def test_rendered_pack_passes_promtool_check(rules_dir):
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_dir / "vm-health.rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: {0} rules found".format(len(pack.PACK)) in proc.stdout


@pytest.mark.parametrize("alert", pack.PACK_NAMES)
def test_promtool_rule_tests(rules_dir, alert):
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", "{0}.test.yml".format(alert)],
        cwd=rules_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rule_tests_fail_on_a_broken_rule(rules_dir, tmp_path):
    """The harness can fail: a pack whose PodNotReady rule forgot the phase join alerts on a
    Pending pod, and promtool reports it."""
    for item in rules_dir.iterdir():
        shutil.copy(item, tmp_path / item.name)
    text = (tmp_path / "vm-health.rules.yml").read_text()
    broken = text.replace(
        'and on (namespace, pod) (kube_pod_status_phase{phase="Running"} == 1)', ""
    )
    assert broken != text
    (tmp_path / "vm-health.rules.yml").write_text(broken)
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", "VirtualMachinePodNotReady.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "stuck in Pending" in proc.stdout + proc.stderr
