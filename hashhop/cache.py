"""Answers already paid for, so a killed run loses nothing and a rerun re-asks nothing.

One SQLite file per run directory (`DIR/cache.sqlite`) in WAL mode. Every `put` is one
committed transaction, so killing the process at any moment leaves each earlier answer
readable and no half-written one. An answer is keyed by digests of the backend's settings
and of the prompt, plus the token budget: prompts of millions of characters are not stored,
and changing anything that changes answers (model, temperature, template...) misses.
"""

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from hashhop.backends.base import Completion
from hashhop.errors import HashHopError

CACHE_FILE = "cache.sqlite"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE answers (
    settings_digest TEXT NOT NULL,
    prompt_digest TEXT NOT NULL,
    max_new_tokens INTEGER NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (settings_digest, prompt_digest, max_new_tokens)
) WITHOUT ROWID
"""


class AnswerCache:
    """Completions by (backend settings, prompt, max_new_tokens), on disk in `directory`."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                with self._db:
                    self._db.execute(_SCHEMA)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise HashHopError(f"{self.path} is not a usable answer cache: {error}") from None
        if version not in (0, SCHEMA_VERSION):
            self._db.close()
            raise HashHopError(
                f"{self.path} has cache format {version}, this version reads "
                f"{SCHEMA_VERSION}: move it away to start a fresh cache"
            )

    def get_many(
        self, settings: dict[str, object], prompts: list[str], max_new_tokens: int
    ) -> list[Completion | None]:
        """The cached completion of each prompt, or None where it was never answered."""
        settings_key = _settings_digest(settings)
        found = []
        for prompt in prompts:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, latency_s FROM answers"
                " WHERE settings_digest = ? AND prompt_digest = ? AND max_new_tokens = ?",
                (settings_key, _digest(prompt), max_new_tokens),
            ).fetchone()
            found.append(Completion(*row) if row else None)
        return found

    def put(
        self,
        settings: dict[str, object],
        prompts: list[str],
        max_new_tokens: int,
        completions: list[Completion],
    ) -> None:
        """Store a batch of answers in one transaction: all of them land, or none."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        settings_key = _settings_digest(settings)
        now = time.time()
        rows = [
            (
                settings_key,
                _digest(prompt),
                max_new_tokens,
                completion.text,
                completion.prompt_tokens,
                completion.completion_tokens,
                completion.latency_s,
                now,
            )
            for prompt, completion in zip(prompts, completions)
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _settings_digest(settings: dict[str, object]) -> str:
    """The same settings give the same digest whatever the order their keys were built in."""
    return _digest(json.dumps(settings, sort_keys=True, separators=(",", ":")))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
