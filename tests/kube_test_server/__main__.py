"""Command line: run the Kubernetes API test double until SIGTERM/SIGINT.

    PYTHONPATH=tests .venv/bin/python -m kube_test_server --port 0 --kubeconfig /tmp/x/kubeconfig \
        [--latency-ms 2] [--crd-dir DIR] [--fallback-schemas] [--http] [--ready-file F]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .server import KubeTestServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kube_test_server",
        description="Serve a strict Kubernetes/KubeVirt API test double (not a real API server) on 127.0.0.1.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (0: pick a free one)"
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="where to write the kubeconfig (default: a temp dir)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every API request by this much"
    )
    parser.add_argument(
        "--crd-dir", type=Path, help="directory with the CRD YAML files (default: ../shared/crds)"
    )
    parser.add_argument(
        "--fallback-schemas", action="store_true", help="use our own smaller schemas, not CRDs"
    )
    parser.add_argument("--http", action="store_true", help="serve plain HTTP (debugging only)")
    parser.add_argument("--token", help="bearer token to require (default: random)")
    parser.add_argument(
        "--ready-file", type=Path, help="write {url, kubeconfig, pid, token, ca_file} here"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)

    server = KubeTestServer(
        crd_dir=args.crd_dir,
        latency=args.latency_ms / 1000.0,
        tls=not args.http,
        port=args.port,
        token=args.token,
        kubeconfig_path=args.kubeconfig,
        fallback_schemas=args.fallback_schemas,
    ).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_unused: stop.set())
    info = {
        "url": server.url,
        "kubeconfig": str(server.kubeconfig_path),
        "pid": os.getpid(),
        "token": server.token,
        "ca_file": str(server.ca_path) if server.ca_path else None,
        "schemas": server.schema_sources,
    }
    if args.ready_file:
        args.ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        tmp.replace(args.ready_file)  # atomic: readers never see a partial file
    print(server.url, flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
        if args.ready_file:
            args.ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
