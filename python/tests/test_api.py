"""The shape of the API: signatures, keyword checking, argument types, the exception tree, and
that the type stubs (ko/_ko.pyi) say what the compiled module does."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import ko

STUB = Path(ko.__file__).with_name("_ko.pyi")
OPTIONS = [
    "docker_repo", "base_image", "platforms", "tags", "tag_only", "push", "local",
    "preserve_import_paths", "base_import_paths", "bare", "insecure_registry", "oci_layout_path",
    "tarball", "image_refs", "jobs", "sbom", "sbom_dir", "image_labels", "image_annotations", "image_user",
    "ldflags", "disable_optimizations", "layer_compression", "config_path", "working_dir",
]
FUNCTIONS = ["resolve", "resolve_string", "build", "apply", "create", "delete"]


def test_public_names() -> None:
    for name in ko.__all__:
        assert hasattr(ko, name), name
    assert ko.publish is ko.build
    assert isinstance(ko.__version__, str) and ko.__version__


@pytest.mark.parametrize("name", ["resolve", "resolve_string", "build", "apply", "create"])
def test_every_option_is_keyword_only(name: str) -> None:
    params = inspect.signature(getattr(ko, name)).parameters
    for option in OPTIONS:
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY, option
    assert list(params)[-len(OPTIONS):] == OPTIONS


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'dockerrepo'"):
        ko.build("./cmd/hello", dockerrepo="x")
    with pytest.raises(TypeError, match="unexpected keyword argument 'kubectl_args'"):
        ko.resolve("config", kubectl_args=["x"])
    with pytest.raises(TypeError):
        ko.build("./cmd/hello", "127.0.0.1:5000/x")  # options are keyword-only


def test_argument_types_are_checked() -> None:
    with pytest.raises(TypeError, match="platforms must be a str or a sequence of str"):
        ko.build("./cmd/hello", platforms=5)
    with pytest.raises(TypeError, match="image_labels must map str to str"):
        ko.build("./cmd/hello", image_labels={"a": 1})
    with pytest.raises(TypeError, match="paths must be a path or a sequence of paths"):
        ko.resolve(42)


def test_exception_tree() -> None:
    for name in ["InvalidInputError", "NotFoundError", "BuildError", "RegistryError", "AuthError",
                 "IoError", "ConfigError", "KubectlError"]:
        cls = getattr(ko, name)
        assert issubclass(cls, ko.KoError)
        assert cls.__module__ == "ko" and cls.__doc__
    assert issubclass(ko.KoError, Exception)


def _stub_signatures() -> dict[str, list[tuple[str, str | None]]]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, list[tuple[str, str | None]]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            positional = [(p.arg, None) for p in a.args]
            defaults = [ast.unparse(d) if d is not None else None for d in a.kw_defaults]
            out[node.name] = positional + [(p.arg, d) for p, d in zip(a.kwonlyargs, defaults)]
    return out


def test_stubs_match_the_module() -> None:
    stubs = _stub_signatures()
    assert sorted(stubs) == sorted(FUNCTIONS)
    for name in FUNCTIONS:
        params = inspect.signature(getattr(ko, name)).parameters.values()
        runtime = [(p.name, None if p.default is inspect.Parameter.empty else repr(p.default))
                   for p in params]
        # The stub's `kubectl_args: ... = None` etc. must match the runtime defaults exactly.
        assert runtime == stubs[name], name


def test_docstrings() -> None:
    for name in FUNCTIONS:
        assert getattr(ko, name).__doc__, name
    assert ko.__doc__
