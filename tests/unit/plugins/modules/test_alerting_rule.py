"""Unit tests of the alerting_rule module entry point (argument spec, exit/fail paths)."""

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.vmhealth.kvm.plugins.modules import alerting_rule

from .conftest import Exit, Fail


@pytest.fixture
def promtool(tmp_path):
    tool = tmp_path / "promtool"
    tool.write_text(
        '#!/bin/sh\nif grep -q BROKEN "$3"; then echo "$3: group \\"g\\", rule 1, \\"A\\": bad"; exit 1; fi\nexit 0\n'
    )
    tool.chmod(0o755)
    return str(tool)


def run(args):
    with patch_module_args(args):
        alerting_rule.main()


def test_secrets_are_no_log():
    spec = alerting_rule.argument_spec()
    assert spec["reload_password"]["no_log"] and spec["reload_bearer_token"]["no_log"]
    assert spec["reload_validate_certs"]["default"] is True


def test_file_target_writes_and_reports(module_calls, tmp_path, promtool):
    path = tmp_path / "vm.yml"
    with pytest.raises(Exit) as result:
        run(
            {
                "target": "file",
                "path": str(path),
                "promtool_path": promtool,
                "rules": ["VirtualMachineGuestOSPanic"],
                "_ansible_diff": True,
            }
        )
    out = result.value.args[0]
    assert out["changed"] and out["action"] == "created" and out["checked_with"] == "promtool"
    assert out["alerts"] == ["VirtualMachineGuestOSPanic"]
    assert out["diff"]["after"] == path.read_text()
    assert out["reloaded"] is False


def test_check_mode_file(module_calls, tmp_path, promtool):
    path = tmp_path / "vm.yml"
    with pytest.raises(Exit) as result:
        run(
            {
                "target": "file",
                "path": str(path),
                "promtool_path": promtool,
                "_ansible_check_mode": True,
            }
        )
    assert result.value.args[0]["changed"] and not path.exists()


def test_invalid_input_fails_once_with_the_rule_named(module_calls, tmp_path, promtool):
    args = {
        "target": "file",
        "path": str(tmp_path / "vm.yml"),
        "promtool_path": promtool,
        "groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "for": "five"}]}],
    }
    with pytest.raises(Fail) as result:
        run(args)
    assert result.value.args[0]["msg"].startswith(
        'group "g", alert "A": for \'five\' is not a valid duration'
    )
    assert not (tmp_path / "vm.yml").exists()


def test_reload_failure_keeps_changed(module_calls, tmp_path, promtool, monkeypatch):
    def refuse(url, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(alerting_rule, "open_url", refuse)
    with pytest.raises(Fail) as result:
        run(
            {
                "target": "file",
                "path": str(tmp_path / "vm.yml"),
                "promtool_path": promtool,
                "reload": True,
                "reload_password": "x",
                "reload_username": "u",
            }
        )
    out = result.value.args[0]
    assert (
        "Prometheus reload through http://127.0.0.1:9090/-/reload failed: connection refused"
        in out["msg"]
    )
    assert out["changed"] is True and (tmp_path / "vm.yml").exists()


def test_cluster_target_needs_no_connection_for_invalid_input(module_calls, monkeypatch):
    called = []
    monkeypatch.setattr(
        "ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.runner.connect",
        lambda module: called.append(1),
    )
    with pytest.raises(Fail) as result:
        run({"target": "openshift", "namespace": "default"})
    assert "openshift-monitoring" in result.value.args[0]["msg"]
    assert called == []
