#!/usr/bin/env bash
# Entry point of the guest-role tests (make test calls this):
# boots one QEMU guest from the cached Debian bookworm image and runs the
# molecule scenarios guest_agent and guest_watchdog against it
# (extensions/molecule/, shared_state). Whatever happens, every process the
# test bed started is killed on exit.
#
# Environment:
#   VMHEALTH_SOAK_MINUTES   soak length in the guest_watchdog verify (default 5)
#   VMHEALTH_TESTBED_CACHE  image cache (default /var/cache/vmhealth/testbed for root)
#   VMHEALTH_ACCEL          force kvm or tcg (default: quick KVM probe, else TCG)
#   MOLECULE_ARGS           extra arguments for `molecule test`
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
venv_bin="$repo/.venv/bin"
[ -x "$venv_bin/molecule" ] && export PATH="$venv_bin:$PATH"

# The image cache is machine-wide (see cache_dir() in guest.py), so fresh clones reuse it.
if [ -z "${VMHEALTH_TESTBED_CACHE:-}" ]; then
    if [ "$(id -u)" = 0 ]; then
        VMHEALTH_TESTBED_CACHE=/var/cache/vmhealth/testbed
    else
        VMHEALTH_TESTBED_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vmhealth/testbed
    fi
fi
export VMHEALTH_TESTBED_CACHE
export VMHEALTH_TESTBED_RUN=${VMHEALTH_TESTBED_RUN:-$VMHEALTH_TESTBED_CACHE/run/molecule}
export VMHEALTH_SOAK_MINUTES=${VMHEALTH_SOAK_MINUTES:-5}
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}
python=$(command -v python3)
[ -x "$venv_bin/python" ] && python="$venv_bin/python"

missing=()
for tool in qemu-system-x86_64 qemu-img debootstrap mkfs.ext4 ssh ssh-keygen; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "run-molecule.sh: missing ${missing[*]} (Debian packages in tests/debian-packages.txt)" >&2
    exit 1
fi

cleanup() {
    "$python" tests/testbed/guest.py down "$VMHEALTH_TESTBED_RUN" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$(date +%s)
# Build the image first so its time is measured on its own (cached later).
"$python" tests/testbed/guest.py build
# shellcheck disable=SC2086
molecule test --all ${MOLECULE_ARGS:-}
echo "run-molecule.sh: guest scenarios passed in $(( $(date +%s) - started )) s"
