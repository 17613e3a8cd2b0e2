"""Where model versions live: a small storage interface and its file (PVC) implementation.

A store keeps, per model name, immutable versions (a JSON manifest plus named binary blobs) and
one *active* version with the history of how it came to be active, so a rollback is a pointer
move, never a file copy. The cluster implementation (sidecar/cluster/modelstore.py) keeps the
same things in an index, which leaves pods stateless.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from sidecar.errors import ModelError

__all__ = ["ModelStore", "Activation", "FileModelStore", "as_store", "now_iso"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Activation:
    """One move of a model's active pointer: to `version`, from `previous`, and why."""

    version: str
    previous: str | None
    reason: str
    at: str

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Activation:
        previous = data.get("previous")
        return cls(
            str(data["version"]),
            None if previous is None else str(previous),
            str(data.get("reason", "")),
            str(data.get("at", "")),
        )


class ModelStore(Protocol):
    def put(
        self, name: str, version: str, manifest: dict[str, object], blobs: dict[str, bytes]
    ) -> None:
        """Store a new version; a version, once stored, never changes."""
        ...

    def get(self, name: str, version: str) -> tuple[dict[str, object], dict[str, bytes]]: ...

    def manifests(self, name: str) -> list[dict[str, object]]:
        """Every stored version's manifest, oldest first."""
        ...

    def active(self, name: str) -> str | None: ...

    def activate(self, name: str, version: str, reason: str) -> Activation:
        """Make `version` the one that scores; recorded in the history."""
        ...

    def history(self, name: str) -> list[Activation]:
        """Activations, oldest first."""
        ...

    def annotate(self, name: str, version: str, notes: dict[str, object]) -> None:
        """Attach mutable notes to a version (an evaluation, a rejection reason)."""
        ...

    def notes(self, name: str, version: str) -> dict[str, object]: ...


_ACTIVE = "LATEST"  # the file name older sidecars wrote: a model directory stays readable
_HISTORY = "history.jsonl"


class FileModelStore:
    """<root>/<name>/<version>/{manifest.json, <blob>...}, <root>/<name>/LATEST and an
    append-only history. Versions are built in a temporary directory and renamed into place,
    so a reader never sees half of one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FileModelStore({str(self.root)!r})"

    def _home(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ModelError(f"bad model name {name!r}")
        return self.root / name

    def put(
        self, name: str, version: str, manifest: dict[str, object], blobs: dict[str, bytes]
    ) -> None:
        home = self._home(name)
        home.mkdir(parents=True, exist_ok=True)
        if (home / version).exists():
            raise ModelError(f"model {name} version {version} already exists in {home}")
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=home))
        for blob, data in blobs.items():
            (staging / blob).write_bytes(data)
        (staging / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.replace(staging, home / version)

    def get(self, name: str, version: str) -> tuple[dict[str, object], dict[str, bytes]]:
        where = self._home(name) / version
        try:
            manifest = orjson.loads((where / "manifest.json").read_bytes())
            blobs = {
                p.name: p.read_bytes()
                for p in where.iterdir()
                if p.is_file() and p.name not in ("manifest.json", "notes.json")
            }
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ModelError(f"cannot read model {name} {version} from {where}: {exc}") from exc
        return manifest, blobs

    def manifests(self, name: str) -> list[dict[str, object]]:
        home = self._home(name)
        if not home.is_dir():
            return []
        found = []
        for entry in sorted(home.iterdir()):
            path = entry / "manifest.json"
            if entry.is_dir() and not entry.name.startswith(".") and path.is_file():
                found.append(orjson.loads(path.read_bytes()))
        return sorted(found, key=lambda m: (str(m.get("created_at", "")), str(m.get("version"))))

    def active(self, name: str) -> str | None:
        pointer = self._home(name) / _ACTIVE
        return pointer.read_text().strip() or None if pointer.is_file() else None

    def activate(self, name: str, version: str, reason: str) -> Activation:
        home = self._home(name)
        if not (home / version / "manifest.json").is_file():
            raise ModelError(f"model {name} has no version {version} in {home}")
        activation = Activation(version, self.active(name), reason, now_iso())
        with (home / _HISTORY).open("ab") as history:
            history.write(orjson.dumps(activation.to_json()) + b"\n")
        tmp = home / f".{_ACTIVE}.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, home / _ACTIVE)
        return activation

    def history(self, name: str) -> list[Activation]:
        path = self._home(name) / _HISTORY
        if not path.is_file():
            return []
        return [
            Activation.from_json(orjson.loads(line))
            for line in path.read_bytes().splitlines()
            if line.strip()
        ]

    def annotate(self, name: str, version: str, notes: dict[str, object]) -> None:
        where = self._home(name) / version
        if not where.is_dir():
            raise ModelError(f"model {name} has no version {version}")
        merged = {**self.notes(name, version), **notes}
        tmp = where / ".notes.tmp"
        tmp.write_bytes(orjson.dumps(merged, option=orjson.OPT_INDENT_2))
        os.replace(tmp, where / "notes.json")

    def notes(self, name: str, version: str) -> dict[str, object]:
        path = self._home(name) / version / "notes.json"
        return orjson.loads(path.read_bytes()) if path.is_file() else {}


def as_store(where: ModelStore | Path | str) -> ModelStore:
    """A store from a directory path (the file store) or a store itself."""
    if isinstance(where, str | Path):
        return FileModelStore(Path(where))
    return where
