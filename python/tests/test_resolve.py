"""`ko.resolve` / `ko.resolve_string` against the real Go fixture and registry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import ko


def test_resolve_is_byte_equal_to_the_cli(app: Path, registry: str, ko_cli: Path) -> None:
    repo = f"{registry}/resolve"
    yaml = ko.resolve("config", docker_repo=repo, working_dir=app)
    env = dict(os.environ, KO_DOCKER_REPO=repo)
    cli = subprocess.run([str(ko_cli), "resolve", "-f", "config"], cwd=app, env=env,
                         capture_output=True, check=True)
    assert yaml.encode() == cli.stdout
    assert "ko://example.com/app/cmd/hello is not replaced" in yaml  # block scalar kept
    assert f"image: {repo}/hello-" in yaml and "@sha256:" in yaml
    assert "ko://example.com/app/cmd/hello    # built" not in yaml


def test_resolve_paths_forms(app: Path) -> None:
    common = dict(docker_repo="127.0.0.1:1/unused", working_dir=app, push=False)
    one = ko.resolve("config/deployment.yaml", **common)
    as_list = ko.resolve(["config/deployment.yaml"], **common)
    as_path = ko.resolve(Path("config") / "deployment.yaml", **common)
    absolute = ko.resolve([app / "config" / "deployment.yaml"], **common)
    assert one == as_list == as_path == absolute
    assert "ko://" not in one.split("command:")[0]

    flat = ko.resolve("config", **common)
    deep = ko.resolve("config", recursive=True, **common)
    assert len(deep) > len(flat)
    assert (app / "config" / "more" / "pod.yaml").read_text().splitlines()[0] in deep


def test_resolve_string_and_selector(app: Path) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {app: a}\n"
        "spec:\n  containers:\n  - image: ko://example.com/app/cmd/second  # kept comment\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  labels: {app: b}\n"
        "spec:\n  containers:\n  - image: ko://example.com/app/cmd/hello\n"
    )
    out = ko.resolve_string(text, selector="app=a", docker_repo="127.0.0.1:1/unused",
                            working_dir=app, push=False)
    assert "name: a" in out and "name: b" not in out
    assert "127.0.0.1:1/unused/second-" in out and "  # kept comment\n" in out
    unchanged = "a: b  # no references\n"
    assert ko.resolve_string(unchanged, docker_repo="127.0.0.1:1/unused", working_dir=app,
                             push=False) == unchanged
