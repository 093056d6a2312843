"""Helpers of the playbook, AWX and EE tests: paths, the specification, ansible-playbook runs."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
PLAYBOOK_NAMES = ["guests", "kubevirt", "libvirt", "proxmox", "site", "crash_test"]
SPEC = yaml.safe_load((PLAYBOOKS / "vars" / "spec.yml").read_text())["_vmhealth_spec"]
BIN = Path(sys.executable).parent

# Which spec sections each playbook validates in its preflight.
PLAYBOOK_SECTIONS = {
    "guests": ["guests"],
    "kubevirt": ["kubevirt"],
    "libvirt": ["libvirt", "alert_file"],
    "proxmox": ["proxmox", "alert_file"],
    "site": ["site", "guests", "kubevirt", "libvirt", "proxmox", "alert_file"],
    "crash_test": ["crash_test"],
}


def spec_vars(sections):
    return {v["name"]: v for s in sections for v in SPEC[s]}


def ansible_env():
    """The environment of `make env`: this collection and those of the `ansible` package."""
    env = dict(os.environ)
    collections = REPO / "build" / "collections"
    env["ANSIBLE_COLLECTIONS_PATH"] = "{}:{}".format(collections, sysconfig.get_paths()["purelib"])
    env["PATH"] = "{}:{}".format(BIN, env.get("PATH", ""))
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env["ANSIBLE_LOCALHOST_WARNING"] = "0"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "0"
    return env


def run_playbook(name, *args, inventory=None, timeout=120):
    cmd = [str(BIN / "ansible-playbook"), str(PLAYBOOKS / "{}.yml".format(name))]
    if inventory:
        cmd += ["-i", str(inventory)]
    cmd += list(args)
    return subprocess.run(
        cmd, env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
