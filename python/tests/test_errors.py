"""Every exception class, raised by a real bad input; messages are the CLI's, causes are kept."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import ko
from conftest import Registry, free_port


def test_invalid_docker_repo(app: Path) -> None:
    with pytest.raises(ko.InvalidInputError, match=r'invalid repository "UPPER/!!bad"') as e:
        ko.build("./cmd/hello", docker_repo="UPPER/!!bad", working_dir=app)
    assert e.value.kind == "InvalidInput" and e.value.exit_code is None


def test_not_a_main_package(app: Path) -> None:
    with pytest.raises(ko.InvalidInputError, match="is not a main package"):
        ko.build("./pkg/lib", docker_repo="127.0.0.1:1/x", working_dir=app)


def test_missing_package(app: Path) -> None:
    with pytest.raises(ko.NotFoundError, match="cmd/nope"):
        ko.build("./cmd/nope", docker_repo="127.0.0.1:1/x", working_dir=app)


def test_broken_build_carries_compiler_output(app: Path) -> None:
    with pytest.raises(ko.BuildError) as e:
        # push=False: the destination (unreachable) is checked while building, and would fail first.
        ko.build("./cmd/broken", push=False, docker_repo="127.0.0.1:1/x", working_dir=app)
    assert "go build example.com/app/cmd/broken" in str(e.value)
    assert "undefined: thisDoesNotExist" in str(e.value)
    assert e.value.kind == "Build"


def test_unreachable_registry(app: Path) -> None:
    with pytest.raises(ko.RegistryError, match="127.0.0.1:1") as e:
        ko.build("./cmd/hello", docker_repo="127.0.0.1:1/x", working_dir=app)
    assert "Connection refused" in str(e.value)


def test_bad_selector(app: Path) -> None:
    with pytest.raises(ko.InvalidInputError, match="invalid selector"):
        ko.resolve("config", selector="in in (", docker_repo="127.0.0.1:1/x", working_dir=app)


def test_missing_file_keeps_os_error_as_cause(app: Path) -> None:
    with pytest.raises(ko.NotFoundError, match="nope.yaml") as e:
        ko.resolve("nope.yaml", docker_repo="127.0.0.1:1/x", working_dir=app)
    assert isinstance(e.value.__cause__, FileNotFoundError)


def test_bad_config(app: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / ".ko.yaml"
    config.write_text("defaultPlatforms: {a: b}\n")
    # A value of the wrong shape is a warning naming its place (upstream ignores it) ...
    with caplog.at_level(logging.WARNING, logger="ko"):
        ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/x", working_dir=app, config_path=tmp_path)
    assert f"{config}:1:19: defaultPlatforms: expected a list of strings" in caplog.text
    # ... and an error under KO_STRICT_CONFIG=1.
    with pytest.raises(ko.ConfigError, match=f"{config}:1:19: defaultPlatforms: expected"):
        ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/x", working_dir=app, config_path=tmp_path,
                 env=dict(os.environ, KO_STRICT_CONFIG="1"))
    config.write_text("defaultPlatforms: [unclosed\n")
    with pytest.raises(ko.ConfigError, match=str(config)) as e:
        ko.build("./cmd/hello", docker_repo="127.0.0.1:1/x", working_dir=app, config_path=tmp_path)
    assert e.value.__cause__ is not None  # the YAML parser's error


def test_unwritable_output(app: Path, tmp_path: Path) -> None:
    # Checked before anything is built.
    with pytest.raises(ko.IoError, match="missing does not exist; create it first") as e:
        ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/x", working_dir=app,
                 tarball=tmp_path / "missing" / "image.tar")
    assert isinstance(e.value.__cause__, FileNotFoundError)


def test_missing_kubectl(app: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    manifest = tmp_path / "plain.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ko.KubectlError, match="kubectl was not found on PATH") as e:
        ko.apply(manifest, docker_repo="127.0.0.1:1/x", working_dir=app)
    assert isinstance(e.value.__cause__, FileNotFoundError)
    with pytest.raises(ko.KubectlError, match="kubectl was not found"):
        ko.create(manifest, kubectl_args=["--dry-run=client"], docker_repo="127.0.0.1:1/x",
                  working_dir=app)
    with pytest.raises(ko.KubectlError, match="kubectl was not found"):
        ko.delete(["-f", str(manifest)])


def test_failing_kubectl_exit_code(tmp_path: Path) -> None:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    with pytest.raises(ko.KubectlError, match="kubectl delete exited with status") as e:
        ko.delete(["-f", str(tmp_path / "does-not-exist.yaml")])
    assert isinstance(e.value.exit_code, int) and e.value.exit_code != 0


class _RefusingTokenServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[str]:
    """A registry demanding bearer tokens from a token server that refuses everyone."""
    server = HTTPServer(("127.0.0.1", free_port()), _RefusingTokenServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    realm = f"http://127.0.0.1:{server.server_port}/token"
    reg = Registry(tmp_path, f"auth:\n  silly:\n    realm: {realm}\n    service: ko-tests\n")
    try:
        yield reg.address
    finally:
        reg.stop()
        server.shutdown()


def test_refused_credentials(app: Path, auth_registry: str, monkeypatch: pytest.MonkeyPatch,
                             tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with pytest.raises(ko.AuthError, match="401") as e:
        ko.build("./cmd/hello", docker_repo=f"{auth_registry}/x", working_dir=app)
    assert e.value.kind == "Auth"
