"""execution-environment.yml: `ansible-builder create` writes a complete build context."""

import subprocess

import yaml

from .playbook_helpers import BIN, REPO, ansible_env

EE = yaml.safe_load((REPO / "execution-environment.yml").read_text())
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
TARBALL = "vmhealth-kvm-{}.tar.gz".format(GALAXY["version"])


def test_definition():
    assert EE["version"] == 3
    assert EE["images"]["base_image"]["name"]
    deps = EE["dependencies"]
    for key in ("galaxy", "python", "system"):
        assert (REPO / deps[key]).is_file(), deps[key]
    collections = {
        c["name"]: c for c in yaml.safe_load((REPO / deps["galaxy"]).read_text())["collections"]
    }
    assert collections["kubernetes.core"]["version"] == GALAXY["dependencies"]["kubernetes.core"]
    assert {
        "kubevirt.core",
        "community.proxmox",
        "community.libvirt",
        "ansible.windows",
        "ansible.posix",
        "community.general",
    } <= set(collections)
    # This collection, from the tarball of the version galaxy.yml builds.
    assert collections["collections/{}".format(TARBALL)]["type"] == "file"
    assert EE["additional_build_files"][0]["src"] == "build/ee/{}".format(TARBALL)
    python = (REPO / deps["python"]).read_text()
    for package in ("kubernetes", "proxmoxer", "libvirt-python", "PyYAML", "jsonschema"):
        assert package in python


def test_ansible_builder_create(tmp_path):
    env = ansible_env()
    build = subprocess.run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "build",
            "--force",
            "--output-path",
            str(REPO / "build" / "ee"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    context = tmp_path / "context"
    result = subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "--file",
            "execution-environment.yml",
            "--context",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    assert (
        "FROM {}".format(EE["images"]["base_image"]["name"]) in containerfile
        or 'ARG EE_BASE_IMAGE="{}"'.format(EE["images"]["base_image"]["name"]) in containerfile
    )
    assert "ansible-galaxy collection install" in containerfile
    built = context / "_build"
    assert (built / "requirements.txt").read_text() == (
        REPO / EE["dependencies"]["python"]
    ).read_text()
    assert (built / "bindep.txt").read_text() == (REPO / EE["dependencies"]["system"]).read_text()
    requirements = yaml.safe_load((built / "requirements.yml").read_text())
    names = [c["name"] for c in requirements["collections"]]
    assert "kubernetes.core" in names and "kubevirt.core" in names and "community.proxmox" in names
    assert (built / "collections" / TARBALL).stat().st_size > 0
