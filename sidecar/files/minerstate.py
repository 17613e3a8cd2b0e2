"""The template miner's state without a cluster: a JSON file beside the models, or memory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sidecar.errors import CheckpointError
from sidecar.templates.drain import TemplateMiner

__all__ = ["FileMinerStore", "MemoryMinerStore", "MINER_STATE_FILE"]

MINER_STATE_FILE = "template-miner.json"


def _parse(data: bytes, where: str) -> TemplateMiner:
    try:
        return TemplateMiner.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        message = f"the template miner state in {where} is unreadable: {exc!r}"
        raise CheckpointError(message) from exc


class FileMinerStore:
    """`template-miner.json` in a directory (SIDECAR_MODEL_DIR), replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TemplateMiner | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return _parse(data, str(self.path))

    def save(self, miner: TemplateMiner) -> None:
        # Whatever another process saved meanwhile is merged in; merging a state already
        # taken in changes nothing, so this needs no version check.
        saved = self.load()
        if saved is not None:
            miner.merge(saved)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".template-miner.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(miner.to_json())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class MemoryMinerStore:
    """State for one process (`score`): seeded from a saved state, never written back."""

    def __init__(self, state: bytes | None = None) -> None:
        self.state = state

    @classmethod
    def seeded_from(cls, path: Path) -> MemoryMinerStore:
        return cls(path.read_bytes() if path.is_file() else None)

    def load(self) -> TemplateMiner | None:
        return None if self.state is None else _parse(self.state, "memory")

    def save(self, miner: TemplateMiner) -> None:
        self.state = miner.to_json()
