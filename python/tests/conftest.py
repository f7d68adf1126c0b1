"""Fixtures shared by the Python suite: a real ``docker-registry`` on loopback, a private copy of
the repository's Go fixture module (tests/fixtures/app), the ``ko`` CLI binary built by cargo, and
fake ``go`` wrappers (for ``KO_GO_PATH``) that make ``go build`` slow on purpose.

The suite runs against the real tools, like the Rust integration tests: ``go``, ``docker-registry``
and ``skopeo`` must be installed (``bash .ci/run`` installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE_APP = REPO / "tests" / "fixtures" / "app"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; the Python suite needs go, docker-registry and skopeo "
                    "(apt-get install -y docker-registry skopeo)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """A running ``docker-registry serve`` on 127.0.0.1 with filesystem storage."""

    def __init__(self, root: Path, extra_config: str = "") -> None:
        binary = require_tool("docker-registry")
        last_error = ""
        for _attempt in range(5):
            port = free_port()
            config = root / f"config-{port}.yml"
            config.write_text(
                "version: 0.1\n"
                "log:\n  level: warn\n"
                f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
                f"http:\n  addr: 127.0.0.1:{port}\n  secret: ko-python-tests\n" + extra_config
            )
            log_path = root / f"registry-{port}.log"
            with open(log_path, "wb") as log:
                self.proc = subprocess.Popen([binary, "serve", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log)
            self.address = f"127.0.0.1:{port}"
            if self._wait_ready():
                return
            self.stop()
            last_error = log_path.read_text(errors="replace")
        pytest.fail(f"docker-registry did not come up: {last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # answering (401 with auth configured)
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a private docker-registry, killed by pid after the session."""
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg.address
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the Go fixture module ``example.com/app`` (ko runs ``go`` in it)."""
    require_tool("go")
    dest = tmp_path_factory.mktemp("fixture") / "app"
    shutil.copytree(FIXTURE_APP, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def ko_cli() -> Path:
    """The ``ko`` binary built by ``cargo build -p ko-cli`` (or named by ``KO_CLI``)."""
    named = os.environ.get("KO_CLI")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = Path(named) if named else target / "debug" / "ko"
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist; run `cargo build -p ko-cli` first (or set KO_CLI)")
    return binary


def fake_go(directory: Path, build_action: str) -> Path:
    """A ``go`` wrapper for ``KO_GO_PATH``: ``go build`` runs ``build_action`` (shell) first; every
    other subcommand is the real go. ``$PIDFILE``-style bookkeeping is up to ``build_action``."""
    real_go = require_tool("go")
    script = directory / "go"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = build ]; then\n{build_action}\nfi\n'
        f'exec {real_go} "$@"\n'
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def slow_go(tmp_path: Path) -> Path:
    """A go whose every ``go build`` first sleeps 2 seconds."""
    return fake_go(tmp_path, "sleep 2")
