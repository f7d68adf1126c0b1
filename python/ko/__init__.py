"""ko: build Go programs into container images and resolve ``ko://`` references, in-process.

The same operations as the ``ko`` command line, with the same option names in snake_case
(``--docker-repo`` is ``docker_repo=``), the same environment variables (``KO_DOCKER_REPO``, ...)
and the same ``.ko.yaml``::

    import ko

    yaml = ko.resolve("config/", docker_repo="registry.example.com/team")
    refs = ko.build(["./cmd/server", "./cmd/worker"], platforms=["linux/amd64", "linux/arm64"])

Every function blocks until done, with the GIL released, and may be called from several threads
at once. Ctrl-C (``KeyboardInterrupt``) cancels a running call; its ``go`` and ``kubectl``
processes are killed. Failures raise a :class:`KoError` subclass whose ``str()`` is the message
the CLI prints. Progress is logged to the ``logging`` logger ``"ko"`` ("Building ... for ...",
"Published ..."); configure ``logging`` to see it, or pass ``on_event=`` a callable to receive
each progress event as a dict. kubectl's output goes to ``sys.stdout`` and ``sys.stderr``.
"""

from ko._ko import (
    AuthError,
    BuildError,
    CancelledError,
    ConfigError,
    InternalError,
    InvalidInputError,
    IoError,
    KoError,
    KubectlError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
    __version__,
    apply,
    build,
    create,
    delete,
    resolve,
    resolve_string,
)

publish = build
"""Alias of :func:`build`, as ``ko publish`` is of ``ko build``."""

__all__ = [
    "AuthError",
    "BuildError",
    "CancelledError",
    "ConfigError",
    "InternalError",
    "InvalidInputError",
    "IoError",
    "KoError",
    "KubectlError",
    "NotFoundError",
    "RegistryError",
    "UnsupportedError",
    "__version__",
    "apply",
    "build",
    "create",
    "delete",
    "publish",
    "resolve",
    "resolve_string",
]
