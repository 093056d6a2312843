"""Shared pytest set-up: make the collection importable as ansible_collections.vmhealth.kvm.

The collection is exposed through build/collections/ansible_collections/vmhealth/kvm, a
symlink to the repository root (``make collection`` creates it; this file does too, so a
bare ``pytest`` works). The bundled collections (kubernetes.core, ...) come from the
``ansible`` package in site-packages; ``ansible_collections`` is a namespace package, so
both locations merge.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "build" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "vmhealth" / "kvm"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(REPO, LINK)

for path in (str(COLLECTIONS), str(REPO / "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)
