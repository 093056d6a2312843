# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``file`` target: a Prometheus rule file on the host the module runs on.

A new file is written to a temporary file in the same directory (named so that no rule-file
glob such as ``*.yml`` picks it up), checked with ``promtool check rules``, given the mode and
owner of the file it replaces, flushed to disk and renamed over the old one: Prometheus, or a
reader at any moment, sees either the old or the new file, never a partial or unchecked one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import os
import shutil
import tempfile
import time

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.promql import (
    promtool_message,
    run_promtool,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ValidationError,
    VmHealthError,
)

#: Mode of a rule file the module creates (rule files hold no secrets; Prometheus must read them).
NEW_FILE_MODE = 0o644
RELOAD_TIMEOUT = 10


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise VmHealthError("Failed to read {0}: {1}".format(path, exc)) from exc
    return data.decode("utf-8", "replace")


def backup_name(path, now=None):
    """``<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~``, the naming Ansible's own backups use."""
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime(now))
    return "{0}.{1}.{2}~".format(path, os.getpid(), stamp)


def make_backup(path):
    """Copy the file (content, mode, times) next to it; return the backup's path."""
    dest = backup_name(path)
    try:
        shutil.copy2(path, dest)
    except OSError as exc:
        raise VmHealthError("Failed to back up {0}: {1}".format(path, exc)) from exc
    return dest


def check_destination(path):
    """The directory must exist: the module writes rule files, not directory trees."""
    if not path or not os.path.isabs(path):
        raise ValidationError("path: an absolute path is required, got {0!r}".format(path))
    if os.path.isdir(path):
        raise ValidationError("path: {0} is a directory; give the rule file's path".format(path))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise ValidationError("path: the directory {0} does not exist".format(directory))


def atomic_write(path, text, promtool):
    """Write ``text`` to ``path`` atomically after ``promtool check rules`` accepted it.

    The temporary file lives in the destination directory (so the rename is atomic) and is
    removed whatever happens; the old file is untouched unless the rename happens.
    """
    directory, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=".{0}.".format(base), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        ok, output = run_promtool(promtool, tmp)
        if not ok:
            raise ValidationError(
                "promtool check rules refused the new {0}; the old file is unchanged: {1}".format(
                    path, promtool_message(output, tmp)
                )
            )
        try:
            st = os.stat(path)
        except OSError:
            os.chmod(tmp, NEW_FILE_MODE)
        else:
            os.chmod(tmp, st.st_mode & 0o7777)
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError as exc:
                    raise VmHealthError(
                        "Failed to give the new {0} the old owner: {1}".format(path, exc)
                    ) from exc
        os.rename(tmp, path)
        tmp = None
        _fsync_dir(directory)
    except OSError as exc:
        raise VmHealthError("Failed to write {0}: {1}".format(path, exc)) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_diff(path, before, after):
    return {
        "before": before or "",
        "after": after or "",
        "before_header": path if before is not None else "{0} (absent)".format(path),
        "after_header": path if after is not None else "{0} (absent)".format(path),
    }


class FileTarget:
    """Apply or remove one rule file; ``result`` collects what happened."""

    def __init__(self, path, promtool=None, backup=False, check_mode=False, diff_mode=False):
        self.path = path
        self.promtool = promtool
        self.backup = backup
        self.check_mode = check_mode
        self.diff_mode = diff_mode

    def apply(self, text):
        before = read_text(self.path)
        result = {"changed": before != text, "path": self.path}
        result["action"] = (
            "unchanged" if before == text else ("created" if before is None else "updated")
        )
        if result["changed"] and self.diff_mode:
            result["diff"] = file_diff(self.path, before, text)
        if not result["changed"] or self.check_mode:
            return result
        if before is not None and self.backup:
            result["backup_file"] = make_backup(self.path)
        try:
            atomic_write(self.path, text, self.promtool)
        except VmHealthError:
            if result.get("backup_file"):
                os.unlink(result["backup_file"])
            raise
        return result

    def remove(self):
        before = read_text(self.path)
        result = {
            "changed": before is not None,
            "path": self.path,
            "action": "removed" if before is not None else "unchanged",
        }
        if result["changed"] and self.diff_mode:
            result["diff"] = file_diff(self.path, before, None)
        if not result["changed"] or self.check_mode:
            return result
        if self.backup:
            result["backup_file"] = make_backup(self.path)
        try:
            os.unlink(self.path)
        except OSError as exc:
            raise VmHealthError("Failed to remove {0}: {1}".format(self.path, exc)) from exc
        return result


def reload_prometheus(
    url,
    open_url,
    username=None,
    password=None,
    bearer_token=None,
    validate_certs=True,
    ca_path=None,
    timeout=RELOAD_TIMEOUT,
):
    """POST to Prometheus' ``/-/reload`` (needs ``--web.enable-lifecycle``); raise VmHealthError on failure.

    ``open_url`` is ansible.module_utils.urls.open_url (injected for tests).
    """
    headers = {}
    if bearer_token:
        headers["Authorization"] = "Bearer " + bearer_token
    elif username:
        token = base64.b64encode("{0}:{1}".format(username, password or "").encode("utf-8")).decode(
            "ascii"
        )
        headers["Authorization"] = "Basic " + token
    try:
        response = open_url(
            url,
            method="POST",
            data=b"",
            headers=headers,
            validate_certs=validate_certs,
            ca_path=ca_path,
            timeout=timeout,
            follow_redirects="none",
        )
        status = response.getcode()
    except Exception as exc:  # HTTPError, URLError, SSL errors, timeouts
        body = ""
        reader = getattr(exc, "read", None)
        if reader is not None:
            try:
                body = reader().decode("utf-8", "replace").strip()
            except Exception:  # pragma: no cover - the body is a bonus
                body = ""
        raise VmHealthError(
            "Prometheus reload through {0} failed: {1}{2}".format(
                url, exc, (": " + body) if body else ""
            )
        ) from exc
    if not 200 <= status < 300:
        raise VmHealthError("Prometheus reload through {0} failed: HTTP {1}".format(url, status))
    return status
