"""The playbooks: syntax, and a preflight that rejects bad variables before any change.

The preflight runs first on localhost, so these runs need no cluster, hypervisor or guest: a
bad variable must stop the play with a message that names it. No test here reaches a module.
"""

import json
import sys

import pytest

from .playbook_helpers import PLAYBOOK_NAMES, PLAYBOOKS, run_playbook

GUEST_INVENTORY = """
vmhealth_guests:
  hosts:
    canary-1:
      ansible_connection: local
      ansible_python_interpreter: {python}
"""
CONFIRM = "I understand this crashes the canary guests"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    path.write_text(GUEST_INVENTORY.format(python=sys.executable))
    return path


def test_every_playbook_is_tested():
    assert sorted(p.stem for p in PLAYBOOKS.glob("*.yml")) == sorted(PLAYBOOK_NAMES)


@pytest.mark.parametrize("name", PLAYBOOK_NAMES)
def test_syntax_check(name, inventory):
    result = run_playbook(name, "--syntax-check", inventory=inventory)
    assert result.returncode == 0, result.stdout + result.stderr


def test_site_imports_in_the_safe_order():
    text = (PLAYBOOKS / "site.yml").read_text()
    imports = [
        line.split(":", 1)[1].strip() for line in text.splitlines() if "import_playbook:" in line
    ]
    # Guest agent before any guestAgentPing probe; each platform writes its alerts before restarts.
    assert imports == ["guests.yml", "kubevirt.yml", "libvirt.yml", "proxmox.yml"]
    kubevirt = (PLAYBOOKS / "kubevirt.yml").read_text()
    assert kubevirt.index("vmhealth.kvm.alerting_rule:") < kubevirt.index("Restart the VMs")
    for name in ("libvirt", "proxmox"):
        text = (PLAYBOOKS / "{}.yml".format(name)).read_text()
        assert text.index("vmhealth.kvm.alerting_rule:") < text.index("restart: if_needed")


def _extra(**kwargs):
    return ["-e", json.dumps(kwargs)]


BAD = [
    pytest.param(
        "kubevirt",
        {"vmhealth_kubevirt_namespace": "vms", "vmhealth_kubevirt_restart": "sometimes"},
        'vmhealth_kubevirt_restart must be: a string, one of never, if_needed, rolling; got "sometimes"',
        id="kubevirt-choice",
    ),
    pytest.param(
        "kubevirt",
        {"vmhealth_kubevirt_namespace": "vms", "vmhealth_kubevirt_parallel": "many"},
        'vmhealth_kubevirt_parallel must be: an integer, at least 1, at most 64; got "many"',
        id="kubevirt-int",
    ),
    pytest.param(
        "kubevirt",
        {"vmhealth_kubevirt_namespace": "vms", "vmhealth_kubevirt_parallel": 65},
        "vmhealth_kubevirt_parallel must be: an integer, at least 1, at most 64; got 65",
        id="kubevirt-range",
    ),
    pytest.param(
        "kubevirt",
        {"vmhealth_kubevirt_namespace": "vms", "vmhealth_kubevirt_restrat": "rolling"},
        "Unknown variable(s) vmhealth_kubevirt_restrat",
        id="kubevirt-typo",
    ),
    pytest.param(
        "kubevirt",
        {"vmhealth_kubevirt_namespace": "vms", "vmhealth_kubevirt_all_namespaces": True},
        "Set exactly one of vmhealth_kubevirt_namespace and vmhealth_kubevirt_all_namespaces=true.",
        id="kubevirt-combination",
    ),
    pytest.param(
        "libvirt",
        {},
        "vmhealth_libvirt_domains is required: a list (or a comma-separated string), not empty",
        id="libvirt-required",
    ),
    pytest.param(
        "proxmox",
        {
            "vmhealth_proxmox_api_host": "pve1",
            "vmhealth_proxmox_api_user": "automation@pve",
            "vmhealth_proxmox_vms": [101],
            "vmhealth_proxmox_api_token_secret": "s3cr3t-value",
            "vmhealth_proxmox_validate_certs": "perhaps",
        },
        'vmhealth_proxmox_validate_certs must be: a boolean (true or false); got "perhaps"',
        id="proxmox-bool",
    ),
    pytest.param(
        "site",
        {"vmhealth_site_components": ["guests", "vmware"]},
        "vmhealth_site_components must be: a list (or a comma-separated string), not empty, "
        "with elements from guests, kubevirt, libvirt, proxmox",
        id="site-choices",
    ),
    pytest.param(
        "site",
        {"vmhealth_site_components": "kubevirt,libvirt", "vmhealth_kubevirt_namespace": "vms"},
        "vmhealth_libvirt_domains is required",
        id="site-validates-components-first",
    ),
    pytest.param(
        "crash_test",
        {"vmhealth_crash_test_canaries": ["canary-1"], "vmhealth_crash_test_confirm": "yes"},
        'Set vmhealth_crash_test_confirm to "I understand this crashes the canary guests" to run it.',
        id="crash-test-confirmation",
    ),
    pytest.param(
        "crash_test",
        {"vmhealth_crash_test_canaries": "canary-9", "vmhealth_crash_test_confirm": CONFIRM},
        "Canary canary-9 is not a host of the group vmhealth_guests",
        id="crash-test-unknown-canary",
    ),
]


@pytest.mark.parametrize(("playbook", "extra", "message"), BAD)
def test_preflight_rejects(playbook, extra, message, inventory):
    result = run_playbook(playbook, *_extra(**extra), inventory=inventory)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert message in output, output
    # The preflight stops the run on localhost: no play after it started.
    assert "PLAY [Validate the variables of" in output
    assert output.count("PLAY [") == 1, output
    assert "s3cr3t-value" not in output


def test_preflight_accepts_command_line_strings(inventory):
    """Values as the command line gives them pass; with both roles off, guests changes nothing."""
    result = run_playbook(
        "guests",
        "-e",
        "vmhealth_guests_agent=false",
        "-e",
        "vmhealth_guests_watchdog=no",
        inventory=inventory,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output
