#!/usr/bin/env bash
# Builds the module and role documentation of vmhealth.kvm with antsibull-docs, offline, from
# the working tree (through the build/collections symlink, see `make collection`):
#   1. antsibull-docs lint-collection-docs: the collection metadata, extra docs and changelog;
#   2. antsibull-docs collection --use-current --fail-on-error: validates the plugin and role
#      documentation and writes one RST page per module and role, plus the
#      collection index, into DEST (default build/docs/collection; generated, not committed).
# Fails on any error or warning either step prints. Usage: scripts/build-docs.sh [DEST]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$REPO/build/docs/collection}
COLLECTIONS=$REPO/build/collections
LINK=$COLLECTIONS/ansible_collections/vmhealth/kvm
VENV_BIN=${VENV_BIN:-$REPO/.venv/bin}
export PATH=$VENV_BIN:$PATH

if [ "$(readlink "$LINK" 2>/dev/null)" != "$REPO" ]; then
	mkdir -p "$(dirname "$LINK")"
	ln -sfn "$REPO" "$LINK"
fi
# This collection, then the collections of the pinned `ansible` package (kubernetes.core's doc
# fragments); only vmhealth.kvm is documented.
VENV_SITE=$("$VENV_BIN/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS:$VENV_SITE
export ANSIBLE_NOCOLOR=1 NO_COLOR=1

log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() {
	echo "build-docs: $*"
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		echo "build-docs: FAILED: $*" >&2
		exit 1
	fi
	cat "$log"
	if grep -Eiq '(^|[^a-z_])(warning|error)s?[: ]' "$log"; then
		echo "build-docs: FAILED: warnings or errors in the output of $1 ${2:-}" >&2
		exit 1
	fi
}

run antsibull-docs lint-collection-docs --skip-rstcheck "$LINK"
rm -rf "$DEST"
mkdir -p "$DEST"
run antsibull-docs collection --use-current --squash-hierarchy --fail-on-error \
	--output-format simplified-rst --no-breadcrumbs --dest-dir "$DEST" vmhealth.kvm

pages=$(find "$DEST" -name '*.rst' | wc -l)
for page in kubevirt_vm_probe_module.rst alerting_rule_module.rst guest_agent_role.rst guest_watchdog_role.rst; do
	if [ ! -s "$DEST/$page" ]; then
		echo "build-docs: FAILED: $DEST/$page was not generated" >&2
		exit 1
	fi
done
echo "build-docs: $pages pages in $DEST"
