"""`ko.build` publishes to the real registry: skopeo finds what it returns."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import ko


def skopeo_inspect(reference: str) -> dict[str, object]:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.fail("skopeo is not installed (apt-get install -y skopeo)")
    out = subprocess.run([skopeo, "inspect", "--tls-verify=false", f"docker://{reference}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_build_publishes_in_argument_order(app: Path, registry: str) -> None:
    repo = f"{registry}/build"
    refs = ko.publish(["./cmd/second", "example.com/app/cmd/hello", "ko://example.com/app/cmd/second"],
                      docker_repo=repo, working_dir=app, tags=["v1"], image_labels={"team": "py"})
    assert len(refs) == 3 and refs[0] == refs[2]
    assert refs[0].startswith(f"{repo}/second-") and refs[1].startswith(f"{repo}/hello-")
    for ref in refs[:2]:
        tagged, digest = ref.split("@")  # one tag other than latest: repo:v1@sha256:…
        repository = tagged.rsplit(":", 1)[0]
        assert tagged == f"{repository}:v1"
        info = skopeo_inspect(f"{repository}@{digest}")
        assert info["Digest"] == digest
        assert info["Labels"] == {"team": "py"}
        assert skopeo_inspect(tagged)["Digest"] == digest


def test_build_writes_outputs(app: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    refs_file = tmp_path / "refs.txt"
    [ref] = ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/unused", working_dir=app,
                     oci_layout_path=layout, image_refs=refs_file, bare=True)
    assert ref.startswith(f"{layout}@sha256:")
    assert (layout / "index.json").is_file()
    assert refs_file.read_text().splitlines() == [ref]
