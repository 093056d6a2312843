"""The antsibull-docs build (scripts/build-docs.sh) and the antsibull-changelog release."""

import shutil
import subprocess

from .playbook_helpers import BIN, REPO, ansible_env


def test_build_docs_without_warnings(tmp_path):
    dest = tmp_path / "collection"
    result = subprocess.run(
        [str(REPO / "scripts" / "build-docs.sh"), str(dest)],
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in (
        "kubevirt_vm_probe_module.rst",
        "alerting_rule_module.rst",
        "qemu_watchdog_module.rst",
        "guest_agent_role.rst",
        "guest_watchdog_role.rst",
        "index.rst",
    ):
        assert (dest / page).stat().st_size > 0, page


def test_changelog_release_from_the_fragments(tmp_path):
    """`antsibull-changelog release` on a copy: the fragments make a valid changelog."""
    copy = tmp_path / "vmhealth.kvm"
    copy.mkdir()
    for name in ("galaxy.yml", "changelogs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, copy / name)
    fragments = sorted(p.name for p in (REPO / "changelogs" / "fragments").glob("*.yml"))
    result = subprocess.run(
        [str(BIN / "antsibull-changelog"), "release", "--version", "0.1.0", "--date", "2026-01-01"],
        cwd=copy,
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    changelog = (copy / "CHANGELOG.rst").read_text()
    assert "v0.1.0" in changelog
    assert "playbooks - new playbooks" in changelog
    assert len(fragments) >= 1
