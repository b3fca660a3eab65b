"""The PACS nodes a user configured: DICOM (DIMSE) nodes and DICOMweb endpoints.

Stored as JSON in ``medviewer.paths.config_dir() / "pacs.json"`` (tests point
``MEDVIEWER_CONFIG_DIR`` elsewhere)::

    {"version": 1,
     "local": {"ae_title": "MEDVIEWER", "storage_host": "0.0.0.0", "storage_port": 11113},
     "nodes": [{"name": "pacs", "kind": "dimse", "ae_title": "ORTHANC",
                "host": "pacs.example.org", "port": 104, "retrieve": "get"},
               {"name": "web", "kind": "dicomweb", "url": "https://pacs/dicom-web",
                "auth": "bearer", "token_env": "PACS_TOKEN"}]}

No password or token is ever written to the file: DICOMweb credentials are read
from the environment variable the node names.  The file is replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from medviewer.fileio import atomic_write_json
from medviewer.pacs.errors import NodeConfigError

CONFIG_NAME = "pacs.json"
VERSION = 1
KINDS = ("dimse", "dicomweb")
RETRIEVE_METHODS = ("get", "move")
AUTH_KINDS = ("none", "basic", "bearer")
DEFAULT_TIMEOUT = 30.0
_AE = re.compile(r"^[\x20-\x5B\x5D-\x7E]{1,16}$")  # PS3.5 AE: 16 chars, no backslash


@dataclass(frozen=True)
class LocalAE:
    """This application's DICOM identity and its storage SCP (for C-MOVE).

    Attributes
    ----------
    ae_title : str
        Our AE title; the PACS must know it (and our host and port) for C-MOVE.
    storage_host : str
        Address the storage SCP listens on ("0.0.0.0": every interface).
    storage_port : int
    """

    ae_title: str = "MEDVIEWER"
    storage_host: str = "0.0.0.0"
    storage_port: int = 11113


@dataclass(frozen=True)
class Node:
    """A configured PACS.

    Attributes
    ----------
    name : str
        What the user calls it (unique).
    kind : {"dimse", "dicomweb"}
    ae_title, host, port : for DIMSE nodes.
    retrieve : {"get", "move"}
        DIMSE retrieve method: C-GET (no inbound port needed) or C-MOVE to our
        storage SCP.
    url : str
        DICOMweb base URL (QIDO-RS / WADO-RS root), e.g. ``http://host:8042/dicom-web``.
    auth : {"none", "basic", "bearer"}
    username : str
        For basic auth (the password comes from ``password_env``).
    password_env, token_env : str
        Names of environment variables holding the secret.
    timeout : float
        Seconds per network operation.
    """

    name: str
    kind: str = "dimse"
    ae_title: str = ""
    host: str = ""
    port: int = 0
    retrieve: str = "get"
    url: str = ""
    auth: str = "none"
    username: str = ""
    password_env: str = ""
    token_env: str = ""
    timeout: float = DEFAULT_TIMEOUT

    def validate(self) -> Node:
        """Return the node if valid; raise :class:`NodeConfigError` naming the fix if not."""
        if not self.name.strip():
            raise NodeConfigError("a node needs a name")
        if self.kind not in KINDS:
            raise NodeConfigError(f"node {self.name!r}: kind must be one of {KINDS}")
        if not 0 < float(self.timeout) <= 3600:
            raise NodeConfigError(f"node {self.name!r}: timeout must be 0-3600 seconds")
        if self.kind == "dimse":
            if not _AE.match(self.ae_title) or not self.ae_title.strip():
                raise NodeConfigError(f"node {self.name!r}: invalid AE title {self.ae_title!r}",
                                      hint="1 to 16 printable characters, no backslash")
            if not self.host.strip():
                raise NodeConfigError(f"node {self.name!r}: no host", hint="give --host")
            if not 0 < int(self.port) < 65536:
                raise NodeConfigError(f"node {self.name!r}: port must be 1-65535")
            if self.retrieve not in RETRIEVE_METHODS:
                raise NodeConfigError(f"node {self.name!r}: retrieve must be get or move")
        else:
            parsed = urlparse(self.url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise NodeConfigError(f"node {self.name!r}: invalid DICOMweb URL {self.url!r}",
                                      hint="e.g. http://localhost:8042/dicom-web")
            if self.auth not in AUTH_KINDS:
                raise NodeConfigError(f"node {self.name!r}: auth must be one of {AUTH_KINDS}")
        return self

    def describe(self) -> str:
        """Return a one-line description."""
        if self.kind == "dimse":
            return (f"{self.name}: DICOM {self.ae_title}@{self.host}:{self.port} "
                    f"(C-{self.retrieve.upper()})")
        return f"{self.name}: DICOMweb {self.url}"


@dataclass
class PacsConfig:
    """All configured nodes and our local AE."""

    local: LocalAE = field(default_factory=LocalAE)
    nodes: list[Node] = field(default_factory=list)

    def node(self, name: str) -> Node:
        """Return the node called ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none configured"
        raise NodeConfigError(f"no PACS node named {name!r} ({known})",
                              hint="add one with 'medviewer pacs nodes add'")

    def as_dict(self) -> dict:
        """Return the configuration as JSON-able data."""
        return {"version": VERSION, "local": asdict(self.local),
                "nodes": [asdict(n) for n in self.nodes]}


def config_path() -> Path:
    """Return the node configuration file."""
    from medviewer.paths import config_dir

    return config_dir() / CONFIG_NAME


def load_config(path: str | os.PathLike | None = None) -> PacsConfig:
    """Read the configuration (an empty one if the file does not exist)."""
    path = Path(path) if path is not None else config_path()
    if not path.exists():
        return PacsConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        local = LocalAE(**data.get("local", {}))
        nodes = [Node(**n).validate() for n in data.get("nodes", [])]
    except (ValueError, TypeError) as exc:
        raise NodeConfigError(f"the PACS configuration cannot be read ({exc})", path=path,
                              hint="fix or delete the file") from exc
    return PacsConfig(local, nodes)


def save_config(config: PacsConfig, path: str | os.PathLike | None = None) -> Path:
    """Write the configuration atomically; return the path."""
    path = Path(path) if path is not None else config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, config.as_dict())
    return path


def add_node(node: Node, *, replace_existing: bool = False,
             path: str | os.PathLike | None = None) -> PacsConfig:
    """Validate and add (or replace) a node; return the new configuration."""
    node.validate()
    config = load_config(path)
    if any(n.name == node.name for n in config.nodes):
        if not replace_existing:
            raise NodeConfigError(f"a node named {node.name!r} exists already",
                                  hint="remove it first, or pass --replace")
        config.nodes = [node if n.name == node.name else n for n in config.nodes]
    else:
        config.nodes.append(node)
    save_config(config, path)
    return config


def remove_node(name: str, path: str | os.PathLike | None = None) -> PacsConfig:
    """Remove a node; return the new configuration."""
    config = load_config(path)
    config.node(name)
    config.nodes = [n for n in config.nodes if n.name != name]
    save_config(config, path)
    return config


def set_local(local: LocalAE, path: str | os.PathLike | None = None) -> PacsConfig:
    """Set our AE title and storage SCP address."""
    if not _AE.match(local.ae_title):
        raise NodeConfigError(f"invalid local AE title {local.ae_title!r}")
    if not 0 < int(local.storage_port) < 65536:
        raise NodeConfigError("the storage port must be 1-65535")
    config = load_config(path)
    config.local = replace(local)
    save_config(config, path)
    return config
