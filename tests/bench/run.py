#!/usr/bin/env python
"""Benchmark kubevirt_vm_probe against the kubernetes.core baseline (``make bench``).

For each fleet size N, N VirtualMachines are seeded into the Kubernetes API test double
(tests/kube_test_server) with a fixed latency per request (2 ms by default, standing in
for a real API server's round trip). Then, for each approach, a converging run (every VM
gets the probe) and an idempotent re-run are timed, with the requests they made (from the
test double's log) and the peak RSS of the largest process (the controller or the module).

This is a benchmark, not a test: it prints a Markdown table and checks nothing by default;
``--check`` compares the figures with the targets in docs/performance.md.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from kube_test_server import KubeTestServer  # noqa: E402

VENV_BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
PLAYBOOKS = {
    "kubevirt_vm_probe": HERE / "probe_module.yml",
    "baseline": HERE / "probe_baseline.yml",
}

# Runs one command and reports the peak RSS of its largest descendant process (KiB).
RSS_WRAPPER = (
    "import resource, subprocess, sys; "
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def collections_path():
    import ansible_collections.kubernetes.core as kc

    site = Path(list(kc.__path__)[0]).resolve().parents[2]
    return "{0}:{1}".format(REPO / "build" / "collections", site)


def verb(entry):
    """LIST for a GET on a collection, else the HTTP method."""
    if entry["method"] == "GET" and entry["path"].rstrip("/").endswith(
        ("virtualmachines", "virtualmachineinstances")
    ):
        return "LIST"
    return entry["method"]


def run_playbook(server, playbook, workdir):
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": collections_path(),
            "ANSIBLE_LOCAL_TEMP": str(workdir),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_NOCOLOR": "1",
            "K8S_AUTH_KUBECONFIG": str(server.kubeconfig_path),
            "PATH": "{0}:{1}".format(VENV_BIN, env.get("PATH", "")),
        }
    )
    mark = server.requests()[-1]["seq"] if server.requests() else 0
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, str(VENV_BIN / "ansible-playbook"), str(playbook)],
        env=env,
        capture_output=True,
        check=False,
        text=True,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("{0} failed:\n{1}".format(playbook.name, proc.stderr[-4000:]))
    requests = [r for r in server.requests(since=mark) if not r.get("discovery")]
    return {
        "wall_s": round(wall, 2),
        "requests": dict(Counter(verb(r) for r in requests)),
        "peak_rss_mb": round(int(proc.stdout.strip().splitlines()[-1]) / 1024.0, 1),
    }


def bench(size, approaches, latency, workdir):
    rows = []
    for approach in approaches:
        with KubeTestServer(latency=latency) as server:
            server.seed_vms(size, namespace="bench")
            for phase in ("converge", "re-run"):
                figures = run_playbook(server, PLAYBOOKS[approach], workdir)
                rows.append(dict(n=size, approach=approach, phase=phase, **figures))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(rows):
    lines = [
        "| N | approach | run | wall time (s) | LIST | GET | PATCH | other | peak RSS (MB) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        req = dict(row["requests"])
        listed, get, patch = req.pop("LIST", 0), req.pop("GET", 0), req.pop("PATCH", 0)
        lines.append(
            "| {n} | {approach} | {phase} | {wall_s} | {0} | {1} | {2} | {3} | {peak_rss_mb} |".format(
                listed, get, patch, sum(req.values()), **row
            )
        )
    return "\n".join(lines)


def check(rows):
    """Compare with the targets; return the list of misses."""
    by = {(r["n"], r["approach"], r["phase"]): r for r in rows}
    misses = []
    module, base = (
        by.get((1000, "kubevirt_vm_probe", "converge")),
        by.get((1000, "baseline", "converge")),
    )
    if module and base and base["wall_s"] < 20 * module["wall_s"]:
        misses.append("N=1000: less than 20x faster than the baseline")
    rerun = by.get((1000, "kubevirt_vm_probe", "re-run"))
    if rerun:
        writes = sum(v for k, v in rerun["requests"].items() if k not in ("LIST", "GET"))
        if rerun["requests"].get("LIST", 0) > 2 or writes or rerun["wall_s"] >= 5:
            misses.append("N=1000 re-run: more than 2 LISTs, a write, or 5 s or more")
    big = by.get((5000, "kubevirt_vm_probe", "converge"))
    if big and big["peak_rss_mb"] >= 200:
        misses.append("N=5000: peak RSS of 200 MB or more")
    return misses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100,1000,5000", help="fleet sizes for kubevirt_vm_probe"
    )
    parser.add_argument(
        "--baseline-sizes",
        default="100,1000",
        help="fleet sizes for the kubernetes.core baseline (slow)",
    )
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    workdir = REPO / "build" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    baseline = {int(s) for s in args.baseline_sizes.split(",") if s}
    rows = []
    for size in sorted(set(sizes) | baseline):
        approaches = [
            a
            for a, wanted in (("kubevirt_vm_probe", size in sizes), ("baseline", size in baseline))
            if wanted
        ]
        rows.extend(bench(size, approaches, args.latency_ms / 1000.0, workdir))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    misses = check(rows)
    for miss in misses:
        print("target missed: " + miss)
    if args.check and misses:
        sys.exit(1)


if __name__ == "__main__":
    main()
