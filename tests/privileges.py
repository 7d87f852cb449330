"""Run a child process without root's power to ignore file permissions (for read-only tests)."""

from __future__ import annotations

import os


def as_unprivileged_user(argv: list[str]) -> list[str]:
    """``argv`` run as an unprivileged user (nobody, 65534) when the tests run as root, who ignores file
    permissions; unchanged otherwise. Files the child needs must be readable (and its folders searchable) by all."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return argv
