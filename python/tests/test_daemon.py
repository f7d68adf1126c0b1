"""``local=True`` loads into a real Docker engine: ``docker run`` runs what ``ko.build`` returns, and
the engine's refusals and absence come back as Python exceptions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import ko
from conftest import FIXTURE_APP, Dockerd

HELLO = "ko.local/hello-a60355639e70c972f171c1cc04b2df15"


def engine_env(host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KO_")}
    env["DOCKER_HOST"] = host
    return env


def test_build_local_runs_in_docker(app: Path, dockerd: Dockerd) -> None:
    [ref] = ko.build("./cmd/hello", local=True, working_dir=app, tags=["py"], image_labels={"team": "py"},
                     env=engine_env(dockerd.host))
    name, digest_hex = ref.rsplit(":", 1)
    assert name == HELLO and len(digest_hex) == 64
    kodata = FIXTURE_APP / "cmd" / "hello" / "kodata"
    want = "hello from ko\n" + (kodata / "greeting.txt").read_text() + (kodata / "nested" / "deep.txt").read_text()
    assert dockerd.docker("run", "--rm", "--network", "none", ref, "kodata") == want
    [info] = json.loads(dockerd.docker("image", "inspect", ref))
    assert info["Config"]["Entrypoint"] == ["/ko-app/hello"]
    assert "KO_DATA_PATH=/var/run/ko" in info["Config"]["Env"]
    assert info["Config"]["Labels"] == {"team": "py"}
    assert sorted(info["RepoTags"]) == sorted([ref, f"{HELLO}:py"])


def test_resolve_to_ko_local(app: Path, dockerd: Dockerd) -> None:
    yaml = ko.resolve_string("image: ko://example.com/app/cmd/second\n", docker_repo="ko.local/py",
                             base_import_paths=True, working_dir=app, env=engine_env(dockerd.host))
    ref = yaml.split("image: ", 1)[1].split()[0]
    assert ref.startswith("ko.local/py/second:")
    assert dockerd.docker("run", "--rm", "--network", "none", ref) == "second app\n"


def test_engine_not_running_names_docker_host(app: Path, tmp_path: Path) -> None:
    host = f"unix://{tmp_path / 'docker.sock'}"
    with pytest.raises(ko.RegistryError, match=f"cannot reach the Docker engine at DOCKER_HOST={host}: "):
        ko.build("./cmd/hello", local=True, working_dir=app, env=engine_env(host))


def test_kind_local_says_what_to_use_instead(app: Path) -> None:
    with pytest.raises(ko.UnsupportedError, match=r"\(local=\) and then run `kind load docker-image"):
        ko.build("./cmd/hello", docker_repo="kind.local", working_dir=app)
