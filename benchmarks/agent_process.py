"""Shared by the remote-profiling benchmark scripts: start a local `hwdiffnas agent serve` and find its URL."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "hwdiffnas"]


def start_agent(token_file: Path, workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """Write a fresh token to ``token_file`` (mode 600), start an agent on a free port, return (process, URL)."""
    token_file.write_text(secrets.token_urlsafe(32) + "\n")
    token_file.chmod(0o600)
    agent = subprocess.Popen([*CLI, "agent", "serve", "--port", "0", "--token-file", str(token_file), "--workdir",
                              str(workdir)], stderr=subprocess.PIPE, text=True)
    assert agent.stderr is not None
    while True:
        line = agent.stderr.readline()
        if not line:
            raise SystemExit("agent did not start")
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return agent, m.group(1)
