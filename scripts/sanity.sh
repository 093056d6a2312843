#!/usr/bin/env bash
# Run `ansible-test sanity` for this collection (called by `make sanity`).
#
#   scripts/sanity.sh [EXTRA ansible-test sanity OPTIONS...]    e.g. --test pep8
#
# ansible-test insists on running from <dir>/ansible_collections/<namespace>/<name>/ and resolves
# symlinks in the working directory, so a symlink to the repository is rejected. The files git
# knows about (tracked, plus untracked files that are not ignored, so this works before a commit)
# are therefore copied to build/sanity/ansible_collections/vmhealth/kvm/ and tested there. The
# collections bundled with the pinned `ansible` package are linked next to it, so that
# kubernetes.core and friends resolve (doc fragments, module_utils) without Galaxy.
#
# Test selection:
#   * Every default test on the venv's Python (3.11), each in ansible-test's own virtual
#     environment (--venv: ansible-test pip-installs its pinned tool versions from PyPI on the
#     first run and reuses them from ~/.ansible/test/venv afterwards). Nothing needs docker.
#   * Skipped: pslint - PowerShell (pwsh) is not packaged in Debian, and the collection has no
#     PowerShell code for it to check.
#   * Then compile and import again on each other Python that ansible-core supports on managed
#     nodes (2.19: 3.8-3.13) that is installed (on PATH or under pyenv), because plugins/ must
#     work there too; missing ones are reported and skipped. SANITY_EXTRA_PYTHONS="3.8 3.12"
#     overrides the list, SANITY_EXTRA_PYTHONS= skips the step, and so does passing options.
#
# Results are left in build/sanity/ansible_collections/vmhealth/kvm/tests/output/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
ansible_test=$venv/bin/ansible-test
skip_tests=(pslint)
# The main run uses the venv's Python (3.11); the others are every Python ansible-test supports.
read -r python_version all_pythons < <("$venv/bin/python" -c 'import sys
from ansible_test._util.target.common.constants import CONTROLLER_PYTHON_VERSIONS as C, REMOTE_ONLY_PYTHON_VERSIONS as R
print("%d.%d" % sys.version_info[:2], *R, *C)')
default_extra=()
for version in $all_pythons; do
    [[ $version == "$python_version" ]] || default_extra+=("$version")
done
extra_pythons=${SANITY_EXTRA_PYTHONS-${default_extra[*]}}

read -r namespace name < <(
    "$venv/bin/python" -c 'import sys, yaml; g = yaml.safe_load(open(sys.argv[1])); print(g["namespace"], g["name"])' \
        "$root/galaxy.yml"
)
sanity_root=$root/build/sanity
dest=$sanity_root/ansible_collections/$namespace/$name

if ! git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "sanity: $root is not a git checkout; the files to test are taken from git" >&2
    exit 1
fi

# Fresh copy each time: removed or renamed files must not linger.
rm -rf "$sanity_root"
mkdir -p "$dest"
git -C "$root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' path; do
        # Skip files deleted in the working tree but still in the index.
        if [[ -e $root/$path || -L $root/$path ]]; then printf '%s\0' "$path"; fi
    done |
    tar -C "$root" --null --files-from=- -cf - |
    tar -C "$dest" -xf -
# ansible-test lists files with git when it finds a .git in the content root or above it; without
# one of its own, the copy would be listed through this repository, where build/ is ignored.
git -C "$dest" init --quiet

# Link the bundled collections (one symlink per namespace) beside the copy.
site_packages=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for ns_dir in "$site_packages"/ansible_collections/*/; do
    ns=$(basename "$ns_dir")
    [[ $ns == "$namespace" || $ns == __pycache__ ]] && continue
    ln -s "${ns_dir%/}" "$sanity_root/ansible_collections/$ns"
done

# ansible-test --venv bootstraps pip in each of its virtual environments with a get-pip.py it
# downloads from ci-files.testing.ansible.com, which is not reachable from the build machines
# (only PyPI is). Unless that script is already cached, cache a stand-in doing the same thing
# with the pip wheel from PyPI: run that pip to `pip install` the pinned pip version.
pip_version=$("$venv/bin/python" -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3"))["pip"])')
pip_cache=$HOME/.ansible/test/cache
get_pip=$pip_cache/get_pip_${pip_version//./_}.py
pip_wheel=$pip_cache/pip-$pip_version-py3-none-any.whl
if [[ ! -s $get_pip ]]; then
    mkdir -p "$pip_cache"
    if [[ ! -s $pip_wheel ]]; then
        "$venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: \
            --dest "$pip_cache" "pip==$pip_version"
    fi
    cat >"$get_pip.tmp" <<PY
# Stand-in for https://ci-files.testing.ansible.com/ansible-test/get-pip-$pip_version.py, written by
# vmhealth.kvm's scripts/sanity.sh: like get-pip.py, run pip from its wheel to install pip.
import os
import sys

wheel = os.path.join(os.path.dirname(os.path.abspath(__file__)), "$(basename "$pip_wheel")")
sys.path.insert(0, wheel)
from pip._internal.cli.main import main  # noqa: E402

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + args))
PY
    mv "$get_pip.tmp" "$get_pip"
fi

cd "$dest"
# ansible-test must only see the copy and the collections beside it.
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

skip_args=()
for test in "${skip_tests[@]}"; do skip_args+=(--skip-test "$test"); done

rc=0
echo "sanity: ansible-test sanity --python $python_version (skipping: ${skip_tests[*]}) in $dest"
"$ansible_test" sanity --venv --python "$python_version" "${skip_args[@]}" "$@" || rc=1

# compile + import on the other supported module-side Pythons, when installed.
if [[ $# -eq 0 && -n ${extra_pythons// /} ]]; then
    pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for version in $extra_pythons; do
        interpreter=""
        if command -v "python$version" >/dev/null 2>&1 && "python$version" -c '' 2>/dev/null; then
            interpreter=$(command -v "python$version")
        else
            for candidate in "$pyenv_root"/versions/"$version".*/bin/"python$version"; do
                [[ -x $candidate ]] && interpreter=$candidate
            done
        fi
        if [[ -z $interpreter ]]; then
            echo "sanity: Python $version not installed; skipping compile/import on it"
            continue
        fi
        echo "sanity: ansible-test sanity --test compile --test import --python $version ($interpreter)"
        # The import test makes its venv with the first python$version on PATH: put this one first
        # (a pyenv shim for an inactive version would fail).
        PATH="$(dirname "$interpreter"):$PATH" \
            "$ansible_test" sanity --venv --python "$version" --python-interpreter "$interpreter" \
            --test compile --test import || rc=1
    done
fi

if [[ $rc -ne 0 ]]; then
    echo "sanity: FAILED; results in $dest/tests/output/" >&2
fi
exit "$rc"
