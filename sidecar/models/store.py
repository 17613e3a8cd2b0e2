"""Where model versions live on a file system (a PVC): the ModelStore port (sidecar/ports.py)
over a directory.

A store keeps, per model name, immutable versions (a JSON manifest plus named binary blobs) and
one *active* version with the history of how it came to be active, so a rollback is a pointer
move, never a file copy. The cluster implementation (sidecar/cluster/modelstore.py) keeps the
same things in an index, which leaves pods stateless.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson

from sidecar.errors import ModelError
from sidecar.ports import Activation, ModelStore
from sidecar.types import now_iso

__all__ = ["FileModelStore", "as_store"]


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
