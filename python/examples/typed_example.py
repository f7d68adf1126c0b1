"""A small typed program over ko, checked by `mypy --strict` (scripts/test.sh runs it).

Usage: python typed_example.py MODULE_DIR DOCKER_REPO
Builds MODULE_DIR's ./cmd/hello and resolves its config/ directory, logging ko's progress.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import ko


def release(module: Path, repo: str) -> tuple[list[str], str]:
    """Builds the hello command and resolves the module's YAML, both into `repo`."""
    refs: list[str] = ko.build(["./cmd/hello"], docker_repo=repo, working_dir=module,
                               platforms="linux/amd64", tags=["latest"],
                               image_labels={"org.example.team": "platform"})
    yaml: str = ko.resolve(module / "config", docker_repo=repo, working_dir=module, recursive=True)
    return refs, yaml


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    module, repo = Path(argv[1]), argv[2]
    try:
        refs, yaml = release(module, repo)
    except ko.BuildError as e:
        print(f"build failed:\n{e}", file=sys.stderr)
        return 1
    except ko.KoError as e:
        print(f"{e.kind}: {e}", file=sys.stderr)
        return 2
    for ref in refs:
        print(ref)
    print(yaml, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
