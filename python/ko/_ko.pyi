"""Type stubs of the compiled module ``ko._ko``; the package ``ko`` re-exports all of it.

Keep in step with python/src/lib.rs (tests/test_api.py checks that the names and defaults match).
"""

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import Any, Union

from typing_extensions import TypeAlias

StrPath: TypeAlias = Union[str, "PathLike[str]"]
Event: TypeAlias = dict[str, Any]
"""One engine event: ``{"kind": "build_started", "import_path": ..., "platform": ...}``; kinds are
build_started, go_output, build_finished, layer_ready, blob_existing, blob_mounted, blob_progress,
blob_uploaded, manifest_published, published, resolve_file_done, kubectl_output."""

__version__: str

class KoError(Exception):
    """Base class of every error ko raises; ``str(e)`` is the message the CLI prints."""

    kind: str
    """The stable error kind: ``"Build"``, ``"Registry"``, ``"Auth"``, ``"Config"``, ..."""
    code: int
    """The kind's stable number (1 InvalidInput ... 11 Internal), as C's ``ko_error_code``."""
    exit_code: int | None
    """kubectl's exit status, for a failed kubectl; otherwise ``None``."""

class InvalidInputError(KoError):
    """An argument, option, reference or file is malformed."""

class NotFoundError(KoError):
    """A package, base image, file or tag does not exist."""

class BuildError(KoError):
    """``go build`` failed (the message holds the compiler output), or the package cannot become an image."""

class RegistryError(KoError):
    """The registry answered with an error or could not be reached."""

class AuthError(KoError):
    """The registry refused the credentials."""

class IoError(KoError):
    """Reading or writing a local file failed."""

class ConfigError(KoError):
    """``.ko.yaml`` or a ``KO_*`` environment variable is invalid."""

class KubectlError(KoError):
    """``kubectl`` failed (see ``exit_code``) or is missing."""

class CancelledError(KoError):
    """The call was cancelled."""

class UnsupportedError(KoError):
    """Something upstream ko does that this version does not (yet)."""

class InternalError(KoError):
    """A bug in ko (a caught panic); please report it."""

def resolve(
    paths: StrPath | Sequence[StrPath],
    *,
    recursive: bool = False,
    selector: str | None = None,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    docker_repo: str | None = None,
    base_image: str | None = None,
    platforms: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    tag_only: bool = False,
    push: bool | None = None,
    local: bool = False,
    preserve_import_paths: bool = False,
    base_import_paths: bool = False,
    bare: bool = False,
    insecure_registry: bool = False,
    oci_layout_path: StrPath | None = None,
    tarball: StrPath | None = None,
    image_refs: StrPath | None = None,
    jobs: int | None = None,
    sbom: str | None = None,
    sbom_dir: StrPath | None = None,
    image_labels: Mapping[str, str] | Sequence[str] | None = None,
    image_annotations: Mapping[str, str] | Sequence[str] | None = None,
    image_user: str | None = None,
    ldflags: str | Sequence[str] | None = None,
    disable_optimizations: bool = False,
    layer_compression: str | None = None,
    config_path: StrPath | None = None,
    working_dir: StrPath | None = None,
) -> str:
    """Resolves YAML files or directories as ``ko resolve -f`` does and returns the YAML.

    Every ``ko://<import path>`` scalar is built, published once and replaced by its reference;
    every other byte of the input is kept.

    Args:
        paths: a file or directory, or a list of them (relative to ``working_dir``).
        recursive: walk directories recursively (``-R``).
        selector: keep only objects matching this label selector (``-l``).
        strict: ``False`` also resolves bare import paths of main packages.

    Options (keyword-only; unset ones fall back to ``KO_*`` variables and ``.ko.yaml`` as in the CLI):
        env: the environment to read ``KO_*``, ``GOFLAGS``, ``DOCKER_CONFIG``... from and to run
            ``go``/``kubectl`` with, instead of ``os.environ``.
        on_event: called with each progress event (a dict; see ``Event``), from a worker thread.
        docker_repo: destination repository (``KO_DOCKER_REPO``).
        base_image: base image for every import path (overrides ``.ko.yaml``).
        platforms: ``"all"`` or ``"os/arch[/variant]"`` values (``--platform``).
        tags: tags to publish (default ``latest``).
        tag_only: refer to the image as ``repo:tag``, without a digest.
        push: ``False`` builds without pushing (``--push=false``).
        local: load into the Docker engine at ``DOCKER_HOST`` instead of pushing (``-L``).
        preserve_import_paths, base_import_paths, bare: naming (``-P``, ``-B``, ``--bare``).
        insecure_registry: allow plain HTTP and unverified TLS.
        oci_layout_path, tarball, image_refs: also write an OCI layout / a tarball / the references.
        jobs: concurrent ``go build`` runs (default: number of CPUs).
        sbom: ``"spdx"`` (default: an SPDX SBOM attached to each image) or ``"none"``.
        sbom_dir: also write each SBOM into this directory (``--sbom-dir``).
        image_labels, image_annotations: ``{key: value}`` or ``"key=value"`` strings.
        image_user: config ``User``.
        ldflags: linker flags (joined with spaces).
        disable_optimizations: build with ``-gcflags all=-N -l``.
        layer_compression: ``"gzip"`` (default) or ``"zstd"`` for ko's own layers.
        config_path: ``.ko.yaml`` file or its directory (``KO_CONFIG_PATH``).
        working_dir: where ``go`` runs and relative paths resolve (default: the current directory).

    Raises:
        KoError: a subclass naming what failed.
    """

def resolve_string(
    yaml_text: str,
    *,
    selector: str | None = None,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    docker_repo: str | None = None,
    base_image: str | None = None,
    platforms: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    tag_only: bool = False,
    push: bool | None = None,
    local: bool = False,
    preserve_import_paths: bool = False,
    base_import_paths: bool = False,
    bare: bool = False,
    insecure_registry: bool = False,
    oci_layout_path: StrPath | None = None,
    tarball: StrPath | None = None,
    image_refs: StrPath | None = None,
    jobs: int | None = None,
    sbom: str | None = None,
    sbom_dir: StrPath | None = None,
    image_labels: Mapping[str, str] | Sequence[str] | None = None,
    image_annotations: Mapping[str, str] | Sequence[str] | None = None,
    image_user: str | None = None,
    ldflags: str | Sequence[str] | None = None,
    disable_optimizations: bool = False,
    layer_compression: str | None = None,
    config_path: StrPath | None = None,
    working_dir: StrPath | None = None,
) -> str:
    """Resolves one YAML text as ``ko resolve -f -`` does and returns the YAML.

    Args:
        yaml_text: the YAML (messages call it ``-``).
        selector: keep only objects matching this label selector.
        strict: ``False`` also resolves bare import paths of main packages.

    Options (keyword-only; unset ones fall back to ``KO_*`` variables and ``.ko.yaml`` as in the CLI):
        env: the environment to read ``KO_*``, ``GOFLAGS``, ``DOCKER_CONFIG``... from and to run
            ``go``/``kubectl`` with, instead of ``os.environ``.
        on_event: called with each progress event (a dict; see ``Event``), from a worker thread.
        docker_repo: destination repository (``KO_DOCKER_REPO``).
        base_image: base image for every import path (overrides ``.ko.yaml``).
        platforms: ``"all"`` or ``"os/arch[/variant]"`` values (``--platform``).
        tags: tags to publish (default ``latest``).
        tag_only: refer to the image as ``repo:tag``, without a digest.
        push: ``False`` builds without pushing (``--push=false``).
        local: load into the Docker engine at ``DOCKER_HOST`` instead of pushing (``-L``).
        preserve_import_paths, base_import_paths, bare: naming (``-P``, ``-B``, ``--bare``).
        insecure_registry: allow plain HTTP and unverified TLS.
        oci_layout_path, tarball, image_refs: also write an OCI layout / a tarball / the references.
        jobs: concurrent ``go build`` runs (default: number of CPUs).
        sbom: ``"spdx"`` (default: an SPDX SBOM attached to each image) or ``"none"``.
        sbom_dir: also write each SBOM into this directory (``--sbom-dir``).
        image_labels, image_annotations: ``{key: value}`` or ``"key=value"`` strings.
        image_user: config ``User``.
        ldflags: linker flags (joined with spaces).
        disable_optimizations: build with ``-gcflags all=-N -l``.
        layer_compression: ``"gzip"`` (default) or ``"zstd"`` for ko's own layers.
        config_path: ``.ko.yaml`` file or its directory (``KO_CONFIG_PATH``).
        working_dir: where ``go`` runs and relative paths resolve (default: the current directory).

    Raises:
        KoError: a subclass naming what failed.
    """

def build(
    import_paths: str | Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    docker_repo: str | None = None,
    base_image: str | None = None,
    platforms: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    tag_only: bool = False,
    push: bool | None = None,
    local: bool = False,
    preserve_import_paths: bool = False,
    base_import_paths: bool = False,
    bare: bool = False,
    insecure_registry: bool = False,
    oci_layout_path: StrPath | None = None,
    tarball: StrPath | None = None,
    image_refs: StrPath | None = None,
    jobs: int | None = None,
    sbom: str | None = None,
    sbom_dir: StrPath | None = None,
    image_labels: Mapping[str, str] | Sequence[str] | None = None,
    image_annotations: Mapping[str, str] | Sequence[str] | None = None,
    image_user: str | None = None,
    ldflags: str | Sequence[str] | None = None,
    disable_optimizations: bool = False,
    layer_compression: str | None = None,
    config_path: StrPath | None = None,
    working_dir: StrPath | None = None,
) -> list[str]:
    """Builds Go main packages into images and publishes them, as ``ko build`` does.

    Args:
        import_paths: an import path or a list (full, ``./relative`` or ``ko://...``); empty builds ``.``.

    Options (keyword-only; unset ones fall back to ``KO_*`` variables and ``.ko.yaml`` as in the CLI):
        env: the environment to read ``KO_*``, ``GOFLAGS``, ``DOCKER_CONFIG``... from and to run
            ``go``/``kubectl`` with, instead of ``os.environ``.
        on_event: called with each progress event (a dict; see ``Event``), from a worker thread.
        docker_repo: destination repository (``KO_DOCKER_REPO``).
        base_image: base image for every import path (overrides ``.ko.yaml``).
        platforms: ``"all"`` or ``"os/arch[/variant]"`` values (``--platform``).
        tags: tags to publish (default ``latest``).
        tag_only: refer to the image as ``repo:tag``, without a digest.
        push: ``False`` builds without pushing (``--push=false``).
        local: load into the Docker engine at ``DOCKER_HOST`` instead of pushing (``-L``).
        preserve_import_paths, base_import_paths, bare: naming (``-P``, ``-B``, ``--bare``).
        insecure_registry: allow plain HTTP and unverified TLS.
        oci_layout_path, tarball, image_refs: also write an OCI layout / a tarball / the references.
        jobs: concurrent ``go build`` runs (default: number of CPUs).
        sbom: ``"spdx"`` (default: an SPDX SBOM attached to each image) or ``"none"``.
        sbom_dir: also write each SBOM into this directory (``--sbom-dir``).
        image_labels, image_annotations: ``{key: value}`` or ``"key=value"`` strings.
        image_user: config ``User``.
        ldflags: linker flags (joined with spaces).
        disable_optimizations: build with ``-gcflags all=-N -l``.
        layer_compression: ``"gzip"`` (default) or ``"zstd"`` for ko's own layers.
        config_path: ``.ko.yaml`` file or its directory (``KO_CONFIG_PATH``).
        working_dir: where ``go`` runs and relative paths resolve (default: the current directory).

    Returns:
        One reference per argument, in argument order (``repo@sha256:...``).

    Raises:
        KoError: a subclass naming what failed.
    """

publish = build

def apply(
    paths: StrPath | Sequence[StrPath],
    *,
    kubectl_args: str | Sequence[str] | None = None,
    recursive: bool = False,
    selector: str | None = None,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    docker_repo: str | None = None,
    base_image: str | None = None,
    platforms: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    tag_only: bool = False,
    push: bool | None = None,
    local: bool = False,
    preserve_import_paths: bool = False,
    base_import_paths: bool = False,
    bare: bool = False,
    insecure_registry: bool = False,
    oci_layout_path: StrPath | None = None,
    tarball: StrPath | None = None,
    image_refs: StrPath | None = None,
    jobs: int | None = None,
    sbom: str | None = None,
    sbom_dir: StrPath | None = None,
    image_labels: Mapping[str, str] | Sequence[str] | None = None,
    image_annotations: Mapping[str, str] | Sequence[str] | None = None,
    image_user: str | None = None,
    ldflags: str | Sequence[str] | None = None,
    disable_optimizations: bool = False,
    layer_compression: str | None = None,
    config_path: StrPath | None = None,
    working_dir: StrPath | None = None,
) -> None:
    """Resolves ``paths`` and pipes the YAML into ``kubectl apply -f -`` plus ``kubectl_args``.

    Nothing reaches kubectl when a build fails.

    Raises:
        KubectlError: kubectl failed (``exit_code``) or is missing.
        KoError: another subclass naming what failed.
    """

def create(
    paths: StrPath | Sequence[StrPath],
    *,
    kubectl_args: str | Sequence[str] | None = None,
    recursive: bool = False,
    selector: str | None = None,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    docker_repo: str | None = None,
    base_image: str | None = None,
    platforms: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    tag_only: bool = False,
    push: bool | None = None,
    local: bool = False,
    preserve_import_paths: bool = False,
    base_import_paths: bool = False,
    bare: bool = False,
    insecure_registry: bool = False,
    oci_layout_path: StrPath | None = None,
    tarball: StrPath | None = None,
    image_refs: StrPath | None = None,
    jobs: int | None = None,
    sbom: str | None = None,
    sbom_dir: StrPath | None = None,
    image_labels: Mapping[str, str] | Sequence[str] | None = None,
    image_annotations: Mapping[str, str] | Sequence[str] | None = None,
    image_user: str | None = None,
    ldflags: str | Sequence[str] | None = None,
    disable_optimizations: bool = False,
    layer_compression: str | None = None,
    config_path: StrPath | None = None,
    working_dir: StrPath | None = None,
) -> None:
    """As :func:`apply`, with ``kubectl create -f -``."""

def delete(kubectl_args: str | Sequence[str]) -> None:
    """Runs ``kubectl delete`` with ``kubectl_args`` (e.g. ``["-f", "config/"]``), as ``ko delete`` does.

    Raises:
        KubectlError: kubectl failed (``exit_code``) or is missing.
    """
