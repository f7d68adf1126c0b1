"""Fixtures shared by the Python suite: a real ``docker-registry`` on loopback, a real Docker
engine (``dockerd``), a private copy of the repository's Go fixture module (tests/fixtures/app),
the ``ko`` CLI binary built by cargo, and fake ``go`` wrappers (for ``KO_GO_PATH``) that make
``go build`` slow on purpose.

The suite runs against the real tools, like the Rust integration tests: ``go``, ``docker-registry``
and ``skopeo`` must be installed (``bash .ci/run`` installs them). The engine needs ``docker.io``
and root: where it cannot start, its tests are skipped with the reason, except under ``CI=true``,
where that fails them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
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


class Dockerd:
    """A private ``dockerd`` (vfs storage, no bridge, no iptables rules) whose data root, exec root
    and socket live under one short directory in /tmp (a socket path must stay under ~108 bytes).
    Every process it starts (its containerd, the shims) inherits ``MARKER`` in its environment."""

    MARKER = "KO_PY_TESTS_DOCKERD"

    def __init__(self) -> None:
        binary = shutil.which("dockerd")
        if binary is None or shutil.which("docker") is None:
            raise RuntimeError("dockerd and the docker CLI are not installed (apt-get install -y docker.io)")
        self.dir = Path(tempfile.mkdtemp(prefix="kopyd", dir="/tmp"))
        self.socket = self.dir / "d.sock"
        self.host = f"unix://{self.socket}"
        self.log = self.dir / "dockerd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
                 "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "x"),
                 "--pidfile", str(self.dir / "dockerd.pid"), "-H", self.host],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, self.MARKER: str(self.dir)})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.socket.exists() and self._docker("version").returncode == 0:
                return
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"dockerd did not start: {tail}")

    def _docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DOCKER_HOST": self.host})

    def docker(self, *args: str) -> str:
        """``docker ARGS`` against this engine, which must succeed; its standard output."""
        out = self._docker(*args)
        assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr}"
        return out.stdout

    def leftovers(self) -> list[int]:
        """Pids of live processes that carry this engine's marker."""
        needle = f"{self.MARKER}={self.dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in environ.split(b"\0") and state != "Z":
                found.append(int(entry.name))
        return found

    def stop(self) -> list[int]:
        """SIGTERM to dockerd by pid (it stops its containerd), then SIGKILL by pid to whatever is
        left; removes the directory. Returns the pids that had to be killed."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        left: list[int] = []
        for _ in range(50):
            left = self.leftovers()
            if not left:
                break
            time.sleep(0.1)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
        return left


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A private Docker engine for the session, stopped by pid afterwards. Skipped (with the
    reason) when it cannot start, unless ``CI=true``."""
    try:
        engine = Dockerd()
    except RuntimeError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the Docker engine cannot start: {e}")
        pytest.skip(f"no Docker engine for the tests: {e}")
    try:
        yield engine
    finally:
        left = engine.stop()
        assert not left, f"the Docker engine left processes running (killed now): {left}"


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
