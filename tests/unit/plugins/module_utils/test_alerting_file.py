"""Unit tests of the file target service (atomic write, backup, check/diff mode, reload)."""

import os
import stat
from pathlib import Path

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import file_target
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.file_target import FileTarget
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ValidationError,
    VmHealthError,
)

GOOD = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"
BETTER = GOOD.replace("up == 0", "up == 0 and on() vector(1)")
BAD = GOOD.replace("up == 0", "sum(up BAD")


@pytest.fixture
def fake_promtool(tmp_path):
    """A promtool stand-in that refuses files containing BAD and logs the files it checked."""
    log = tmp_path / "promtool.log"
    tool = tmp_path / "bin" / "promtool"
    tool.parent.mkdir()
    tool.write_text(
        "#!/bin/sh\n"
        'echo "$3" >> {0}\n'
        'if grep -q BAD "$3"; then echo "$3: group \\"g\\", rule 1, \\"A\\": could not parse expression"; exit 1; fi\n'
        'echo "  SUCCESS: 1 rules found"\n'.format(log)
    )
    tool.chmod(0o755)
    return tool, log


@pytest.fixture
def rules_dir(tmp_path):
    directory = tmp_path / "rules"
    directory.mkdir()
    return directory


def snapshot(path):
    st = os.stat(path)
    return path.read_text(), st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def test_create_new_file_mode_0644(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    result = FileTarget(str(path), promtool=str(fake_promtool[0]), diff_mode=True).apply(GOOD)
    assert result["changed"] and result["action"] == "created"
    assert path.read_text() == GOOD
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert result["diff"]["before"] == "" and result["diff"]["after"] == GOOD
    assert result["diff"]["before_header"].endswith("(absent)")
    # checked, then renamed: the temporary file was in the same directory and is gone
    checked = fake_promtool[1].read_text().split()
    assert len(checked) == 1 and os.path.dirname(checked[0]) == str(rules_dir)
    assert not os.path.basename(checked[0]).endswith((".yml", ".yaml"))
    assert os.listdir(rules_dir) == ["vm.yml"]


def test_unchanged_file_is_not_rewritten(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    before = snapshot(path)
    result = FileTarget(str(path), promtool=str(fake_promtool[0]), diff_mode=True).apply(GOOD)
    assert result == {"changed": False, "path": str(path), "action": "unchanged"}
    assert snapshot(path) == before
    assert not fake_promtool[1].exists()


def test_update_keeps_mode_and_diff_shows_before_after(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    path.chmod(0o640)
    result = FileTarget(str(path), promtool=str(fake_promtool[0]), diff_mode=True).apply(BETTER)
    assert result["action"] == "updated"
    assert result["diff"] == {
        "before": GOOD,
        "after": BETTER,
        "before_header": str(path),
        "after_header": str(path),
    }
    assert path.read_text() == BETTER
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_refused_rule_never_replaces_the_file(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = snapshot(path)
    with pytest.raises(
        ValidationError, match='old file is unchanged: group "g", rule 1, "A": could not parse'
    ):
        FileTarget(str(path), promtool=str(fake_promtool[0]), backup=True).apply(BAD)
    assert snapshot(path) == before
    assert os.listdir(rules_dir) == ["vm.yml"]  # no temporary file, no backup left behind


def test_backup(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    result = FileTarget(str(path), promtool=str(fake_promtool[0]), backup=True).apply(BETTER)
    backup = result["backup_file"]
    assert backup.startswith(str(path) + ".") and backup.endswith("~")
    assert Path(backup).read_text() == GOOD
    assert path.read_text() == BETTER
    # no backup of a file that does not exist yet
    result = FileTarget(
        str(rules_dir / "new.yml"), promtool=str(fake_promtool[0]), backup=True
    ).apply(GOOD)
    assert "backup_file" not in result


def test_check_mode_touches_nothing(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    before = snapshot(path)
    result = FileTarget(
        str(path), promtool=str(fake_promtool[0]), backup=True, check_mode=True, diff_mode=True
    ).apply(BETTER)
    assert result["changed"] and result["action"] == "updated" and result["diff"]["after"] == BETTER
    assert snapshot(path) == before
    assert os.listdir(rules_dir) == ["vm.yml"]
    missing = rules_dir / "missing.yml"
    assert FileTarget(str(missing), check_mode=True).apply(GOOD)["action"] == "created"
    assert not missing.exists()
    assert FileTarget(str(path), check_mode=True).remove()["action"] == "removed"
    assert snapshot(path) == before


def test_remove_with_backup(rules_dir):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    result = FileTarget(str(path), backup=True, diff_mode=True).remove()
    assert result["action"] == "removed" and result["diff"]["after"] == ""
    assert not path.exists()
    assert Path(result["backup_file"]).read_text() == GOOD
    assert FileTarget(str(path)).remove() == {
        "changed": False,
        "path": str(path),
        "action": "unchanged",
    }


def test_destination_checks(tmp_path):
    with pytest.raises(ValidationError, match="an absolute path is required"):
        file_target.check_destination("rules/vm.yml")
    with pytest.raises(ValidationError, match="does not exist"):
        file_target.check_destination(str(tmp_path / "nope" / "vm.yml"))
    with pytest.raises(ValidationError, match="is a directory"):
        file_target.check_destination(str(tmp_path))


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to chown")
def test_update_keeps_owner(rules_dir, fake_promtool):
    path = rules_dir / "vm.yml"
    path.write_text(GOOD)
    os.chown(path, 65534, 65534)
    FileTarget(str(path), promtool=str(fake_promtool[0])).apply(BETTER)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (65534, 65534)


# --------------------------------------------------------------------------- reload


class FakeResponse:
    def __init__(self, status):
        self.status = status

    def getcode(self):
        return self.status


class FakeOpenUrl:
    def __init__(self, status=200, error=None):
        self.status = status
        self.error = error
        self.calls = []

    def __call__(self, url, **kwargs):
        self.calls.append((url, kwargs))
        if self.error:
            raise self.error
        return FakeResponse(self.status)


def test_reload_posts_with_basic_auth_and_verifies_tls_by_default():
    opener = FakeOpenUrl()
    file_target.reload_prometheus(
        "https://prom:9090/-/reload", opener, username="admin", password="s3cret"
    )
    url, kwargs = opener.calls[0]
    assert url == "https://prom:9090/-/reload"
    assert kwargs["method"] == "POST"
    assert kwargs["validate_certs"] is True
    assert kwargs["headers"]["Authorization"] == "Basic YWRtaW46czNjcmV0"


def test_reload_bearer_token_and_no_verify():
    opener = FakeOpenUrl()
    file_target.reload_prometheus(
        "https://prom/-/reload", opener, bearer_token="tok", validate_certs=False
    )
    assert opener.calls[0][1]["headers"] == {"Authorization": "Bearer tok"}
    assert opener.calls[0][1]["validate_certs"] is False


def test_reload_failure_reports_the_body():
    class HTTPError(Exception):
        def read(self):
            return b"failed to reload config: rule file broken"

    with pytest.raises(
        VmHealthError, match="reload through http://p/-/reload failed: .*rule file broken"
    ):
        file_target.reload_prometheus(
            "http://p/-/reload", FakeOpenUrl(error=HTTPError("HTTP Error 500"))
        )
    with pytest.raises(VmHealthError, match="HTTP 204|failed"):
        file_target.reload_prometheus("http://p/-/reload", FakeOpenUrl(status=503))
