"""``on_event=``: the engine's typed events as dicts, for a real build against the real registry;
``env=``: the whole environment of one call, instead of ``os.environ``."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

import ko


def test_on_event_sees_a_build_from_start_to_published(app: Path, registry: str) -> None:
    events: list[dict[str, Any]] = []
    threads: set[str] = set()

    def record(event: dict[str, Any]) -> None:
        events.append(event)
        threads.add(threading.current_thread().name)

    [ref] = ko.build("./cmd/hello", docker_repo=f"{registry}/events", working_dir=app, on_event=record)
    kinds = [e["kind"] for e in events]
    for kind in ["build_started", "build_finished", "layer_ready", "manifest_published", "published"]:
        assert kind in kinds, (kind, kinds)
    first = kinds.index
    assert first("build_started") < first("layer_ready") < first("manifest_published") < first("published")
    started = events[first("build_started")]
    assert started == {"kind": "build_started", "import_path": "example.com/app/cmd/hello",
                       "platform": "linux/amd64"}
    assert events[first("published")]["reference"] == ref
    sent = [e for e in events if e["kind"] in ("blob_uploaded", "blob_existing", "blob_mounted")]
    assert sent and all(isinstance(e["size"], int) and e["digest"].startswith("sha256:") for e in sent)
    assert threading.main_thread().name not in threads, "events come from ko's worker threads"


def test_a_failing_callback_does_not_fail_the_build(app: Path, capfd: pytest.CaptureFixture[str]) -> None:
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    [ref] = ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/cb", working_dir=app,
                     on_event=broken)
    assert ref.startswith("127.0.0.1:1/cb/hello-")
    assert "callback bug" in capfd.readouterr().err, "the exception is printed, as logging does"


def test_env_replaces_the_process_environment(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KO_DOCKER_REPO", "127.0.0.1:1/from-process")
    env = dict(os.environ, KO_DOCKER_REPO="127.0.0.1:1/from-env-option")
    [ref] = ko.build("./cmd/hello", push=False, working_dir=app, env=env)
    assert ref.startswith("127.0.0.1:1/from-env-option/hello-")
    with pytest.raises(ko.ConfigError, match="KO_DOCKER_REPO is not set"):
        ko.build("./cmd/hello", working_dir=app, env={"PATH": os.environ["PATH"]})


def test_unsupported_and_option_names() -> None:
    with pytest.raises(ko.UnsupportedError, match='docker_repo= "kind.local": loading images into kind'):
        ko.build("./cmd/hello", docker_repo="kind.local", push=False)
    assert issubclass(ko.CancelledError, ko.KoError) and issubclass(ko.InternalError, ko.KoError)
    import inspect

    from ko import _ko

    params = set(inspect.signature(ko.build).parameters) - {"import_paths", "on_event"}
    assert params == set(_ko._option_names()), "the Python signature lists exactly the core's options"
