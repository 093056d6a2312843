# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PromQL and rule-file checks before anything is written.

In order of preference:

1. ``promtool check rules`` on a temporary rule file holding exactly the groups to write: the
   checker of Prometheus itself (expressions, durations, label and annotation names, and the
   Go templates of annotations). Its messages name the group, the rule number and the alert.
2. The ``promql_parser`` Python package (PyPI ``promql-parser``), which parses expressions only.
3. Nothing: the caller warns and relies on the server (the API server of the cluster targets
   checks only the schema; Prometheus rejects a bad rule when it loads it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.render import rule_file_text
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.rules import rule_ref
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ValidationError,
    VmHealthError,
)

PROMTOOL_TIMEOUT = 60

NO_CHECKER_WARNING = (
    "PromQL expressions were not checked: neither promtool nor the promql_parser Python package "
    "(pip install promql-parser) is available where the module runs; relying on the server"
)


def run_promtool(promtool, path, timeout=PROMTOOL_TIMEOUT):
    """Run ``promtool check rules <path>``; return (ok, output)."""
    try:
        proc = subprocess.run(
            [promtool, "check", "rules", path],
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            text=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VmHealthError("Failed to run {0} check rules: {1}".format(promtool, exc)) from exc
    return proc.returncode == 0, proc.stdout


def promtool_message(output, path):
    """The useful lines of promtool's report, without the temporary file name."""
    lines = []
    for line in output.splitlines():
        line = line.strip()
        if (
            not line
            or line.startswith("Checking ")
            or line == "FAILED:"
            or line.endswith("FAILED:")
        ):
            continue
        if line.startswith(path + ":"):
            line = line[len(path) + 1 :].strip()
        lines.append(line)
    return "; ".join(lines) or output.strip()


def check_with_promtool(promtool, groups, directory=None):
    """Check the groups as one rule file with promtool; raise ValidationError with its findings."""
    fd, path = tempfile.mkstemp(prefix=".vmhealth-rules-", suffix=".yml", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(rule_file_text(groups))
        ok, output = run_promtool(promtool, path)
    finally:
        os.unlink(path)
    if not ok:
        raise ValidationError(
            "promtool check rules refused the rules: {0}".format(promtool_message(output, path))
        )


def _import_parser():
    try:
        import promql_parser  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return promql_parser


def check_with_parser(parser, groups):
    """Parse every expression with promql_parser; raise ValidationError naming the rule."""
    for group in groups:
        for rule in group["rules"]:
            try:
                parser.parse(rule["expr"])
            except Exception as exc:  # the binding raises ValueError; be liberal
                raise ValidationError(
                    "{0}: expr does not parse: {1}".format(rule_ref(group, rule), exc)
                ) from exc


def find_promtool(path=None):
    """The promtool to use: ``path`` if given (must exist), else promtool on PATH, else None."""
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ValidationError("promtool_path: {0} is not an executable file".format(path))
        return path
    return shutil.which("promtool")


def check_expressions(groups, promtool=None, parser=None, require_promtool=False, directory=None):
    """Check the groups with the best checker available; return (checker name, warnings).

    ``parser`` defaults to the promql_parser package when importable. With ``require_promtool``
    a missing promtool is an error (the file target must never install an unchecked file).
    """
    if promtool:
        check_with_promtool(promtool, groups, directory=directory)
        return "promtool", []
    if require_promtool:
        raise ValidationError(
            "promtool not found: the file target checks every rule file with `promtool check rules` before it "
            "replaces the old one (install Prometheus' promtool on the host or set promtool_path)"
        )
    parser = parser if parser is not None else _import_parser()
    if parser is not None:
        check_with_parser(parser, groups)
        return "promql_parser", []
    return "none", [NO_CHECKER_WARNING]
