"""A code index: every symbol of a Python tree, kept per file so a rebuild re-parses only
what changed, saved as one versioned file that is written atomically.

The file is a zip archive (`meta.json`, `files.json`, and with a trained encoder its files
under `encoder/` and the symbols' vectors in `vectors.npy`): readable with any zip tool,
and one `os.replace` makes a new version appear whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hashhop.code.encoder import CodeEncoder
from hashhop.code.symbols import (
    SkippedFile,
    Symbol,
    iter_python_files,
    module_name,
    parse_symbols,
    read_python,
)
from hashhop.dataset import atomic_output
from hashhop.errors import HashHopError

FORMAT = "hashhop-code-index"
FORMAT_VERSION = 3
"""3: the stored BM25 words stem whole compound identifiers (`words.search_words`)."""
_SYMBOL_FIELDS = [symbol_field.name for symbol_field in fields(Symbol)]
ENCODER_DIR = "encoder/"
SEARCH_DIR = "search/"


@dataclass(frozen=True)
class IndexedFile:
    """What an indexed file looked like: a stat match skips reading it, a digest match
    skips parsing it. `symbols` are the file's own, in source order."""

    digest: str
    size: int
    mtime_ns: int
    symbols: tuple[Symbol, ...]


@dataclass
class CodeIndex:
    """Symbols of one or more trees. `files` maps 'root-label/relative path' (also each
    symbol's `path`: portable, and unambiguous across trees) to its entry; `skipped` maps
    such a path to why it was not indexed. `roots` maps a label to its tree's settings."""

    roots: dict[str, dict] = field(default_factory=dict)
    files: dict[str, IndexedFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    docstrings: bool = True
    encoder: CodeEncoder | None = None
    vectors: np.ndarray | None = None
    """[n_symbols, d] unit vectors of `symbols` by `encoder`, in the same order."""
    search_state: dict[str, bytes] = field(default_factory=dict)
    """Search structures built from `symbols` (the BM25 retriever), saved so that a search
    need not rebuild them; empty in a freshly built index."""

    def with_encoder(self, encoder: CodeEncoder | None, previous: CodeIndex | None = None) -> CodeIndex:
        """This index with every symbol embedded by `encoder` (None: no learned channel).
        Files unchanged since `previous`, embedded there by the same encoder, keep their
        vectors: an update embeds only what it re-parsed."""
        if encoder is None:
            return replace(self, encoder=None, vectors=None)

        reusable = previous is not None and previous.encoder is not None and previous.encoder.digest == encoder.digest
        old_rows = previous.file_rows() if reusable else {}
        new_rows = self.file_rows()
        fresh = [key for key, entry in self.files.items() if not (key in old_rows and previous.files[key] == entry)]
        fresh_symbols = [symbol for key in fresh for symbol in self.files[key].symbols]
        fresh_vectors = encoder.encode_symbols(fresh_symbols) if fresh_symbols else None
        vectors = np.zeros((len(self.symbols), encoder.table.shape[1]), dtype=np.float32)
        done = 0
        for key in fresh:
            rows = new_rows[key]
            vectors[rows] = fresh_vectors[done : done + rows.stop - rows.start]
            done += rows.stop - rows.start
        for key in new_rows.keys() - set(fresh):
            vectors[new_rows[key]] = previous.vectors[old_rows[key]]
        return replace(self, encoder=encoder, vectors=vectors)

    def file_rows(self) -> dict[str, slice]:
        """Each file's rows in `symbols` (and `vectors`): files keep their symbols together."""
        rows, start = {}, 0
        for key, entry in self.files.items():
            rows[key] = slice(start, start + len(entry.symbols))
            start += len(entry.symbols)
        return rows

    @property
    def symbols(self) -> list[Symbol]:
        return [symbol for entry in self.files.values() for symbol in entry.symbols]

    @classmethod
    def combine(cls, indexes: list[CodeIndex]) -> CodeIndex:
        """One index over several trees (the standard library and numpy, say)."""
        if len({index.docstrings for index in indexes}) > 1:
            raise HashHopError("cannot combine indexes built with and without docstrings")
        combined = cls(docstrings=indexes[0].docstrings if indexes else True)
        for index in indexes:
            clashes = combined.roots.keys() & index.roots.keys()
            if clashes:
                raise HashHopError(f"indexes to combine share the root label {min(clashes)!r}")
            combined.roots.update(index.roots)
            combined.files.update(index.files)
            combined.skipped.update(index.skipped)
        return combined


@dataclass(frozen=True)
class BuildReport:
    parsed: int
    reused: int
    skipped: int
    removed: int


def build_index(
    root: Path,
    exclude: tuple[str, ...] = (),
    docstrings: bool = True,
    previous: CodeIndex | None = None,
    package: str | None = None,
    warn: Callable[[str], None] | None = None,
    progress: bool = False,
) -> tuple[CodeIndex, BuildReport]:
    """Index every .py file under `root`, reusing `previous`'s entries for unchanged files.

    `docstrings=False` leaves docstrings out of the index entirely (an evaluation of search
    by description must not find the description itself). `package` prefixes module names;
    by default it is the root's name when the root is a package (has `__init__.py`).
    `warn` receives one line per skipped file; `progress` shows a bar on a terminal.
    """
    root = Path(root)
    if not root.is_dir():
        raise HashHopError(f"{root} is not a directory")
    if package is None:
        package = root.resolve().name if (root / "__init__.py").is_file() else ""
    label = package or root.resolve().name
    if previous is not None and previous.docstrings != docstrings:
        previous = None  # entries were stored with the other setting: nothing is reusable
    old_files = previous.files if previous is not None else {}
    index = CodeIndex(roots={label: {"path": str(root.resolve()), "package": package, "exclude": list(exclude)}}, docstrings=docstrings)
    parsed = reused = 0
    paths = list(iter_python_files(root, exclude))
    for relative, path in tqdm(paths, desc=f"indexing {label}", unit="file", disable=None if progress else True, leave=False):
        key = f"{label}/{relative}"
        try:
            entry, was_parsed = _reuse_or_parse(path, key, module_name(relative, package), old_files.get(key), docstrings)
        except SkippedFile as reason:
            index.skipped[key] = str(reason)
            if warn is not None:
                warn(f"skipped {path}: {reason}")
            continue
        parsed += was_parsed
        reused += not was_parsed
        index.files[key] = entry
    old_here = {key for key in old_files if key.startswith(f"{label}/")}
    removed = len(old_here - index.files.keys() - index.skipped.keys())
    return index, BuildReport(parsed=parsed, reused=reused, skipped=len(index.skipped), removed=removed)


def _reuse_or_parse(
    path: Path, key: str, module: str, old: IndexedFile | None, docstrings: bool
) -> tuple[IndexedFile, bool]:
    """The file's entry, and whether it had to be parsed (a stat or digest match reuses `old`)."""
    try:
        stat = path.stat()
    except OSError as error:
        raise SkippedFile(f"unreadable ({error.strerror or error})") from None
    if old is not None and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        return old, False
    text = read_python(path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if old is not None and old.digest == digest:
        return replace(old, size=stat.st_size, mtime_ns=stat.st_mtime_ns), False
    symbols = parse_symbols(text, module, key)
    if not docstrings:
        symbols = [symbol.without_docstring() for symbol in symbols]
    return IndexedFile(digest=digest, size=stat.st_size, mtime_ns=stat.st_mtime_ns, symbols=tuple(symbols)), True


def save_index(index: CodeIndex, path: Path) -> None:
    """Write `index` to `path` atomically: a reader sees the old file or the new one."""
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "docstrings": index.docstrings, "roots": index.roots, "skipped": index.skipped}
    files = {
        key: {"digest": entry.digest, "size": entry.size, "mtime_ns": entry.mtime_ns, "symbols": [[getattr(s, name) for name in _SYMBOL_FIELDS] for s in entry.symbols]}
        for key, entry in index.files.items()
    }
    with atomic_output(Path(path)) as file, zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("meta.json", json.dumps(meta, indent=1))
        archive.writestr("files.json", json.dumps({"fields": _SYMBOL_FIELDS, "files": files}, separators=(",", ":")))
        if index.encoder is not None:
            for name, data in index.encoder.to_files().items():
                archive.writestr(f"{ENCODER_DIR}{name}", data)
            vectors = io.BytesIO()
            np.save(vectors, index.vectors.astype(np.float16), allow_pickle=False)  # half the bytes, same ranking
            archive.writestr("vectors.npy", vectors.getvalue())
        for name, data in index.search_state.items():
            archive.writestr(f"{SEARCH_DIR}{name}", data)



def load_index(path: Path) -> CodeIndex:
    """Read an index written by `save_index`; a missing, foreign or newer file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise HashHopError(f"no code index at {path} (make one with: hashhop code index TREE -o {path})")
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("meta.json"))
            if meta.get("format") != FORMAT:
                raise HashHopError(f"{path} is not a hashhop code index")
            if meta.get("version") != FORMAT_VERSION:
                raise HashHopError(f"{path} is a version {meta.get('version')} code index; this hashhop reads version {FORMAT_VERSION}: rebuild it (hashhop code index TREE -o {path} --full)")
            stored = json.loads(archive.read("files.json"))
            encoder_files = {
                name.removeprefix(ENCODER_DIR): archive.read(name) for name in archive.namelist() if name.startswith(ENCODER_DIR)
            }
            encoder = CodeEncoder.from_files(encoder_files, str(path)) if encoder_files else None
            vectors = np.load(io.BytesIO(archive.read("vectors.npy")), allow_pickle=False).astype(np.float32) if encoder else None
            search_state = {
                name.removeprefix(SEARCH_DIR): archive.read(name) for name in archive.namelist() if name.startswith(SEARCH_DIR)
            }
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as error:
        raise HashHopError(f"{path} is not a readable code index ({error})") from None
    if stored["fields"] != _SYMBOL_FIELDS:
        raise HashHopError(f"{path} stores symbols with other fields: rebuild it (hashhop code index TREE -o {path} --full)")
    files = {
        key: IndexedFile(
            digest=entry["digest"],
            size=entry["size"],
            mtime_ns=entry["mtime_ns"],
            symbols=tuple(Symbol(*_as_tuple(values)) for values in entry["symbols"]),
        )
        for key, entry in stored["files"].items()
    }
    return CodeIndex(roots=meta["roots"], files=files, skipped=meta["skipped"], docstrings=meta["docstrings"], encoder=encoder, vectors=vectors, search_state=search_state)


def _as_tuple(values: list) -> tuple:
    """JSON turns tuples into lists; Symbol is frozen and hashable, so they go back, nested
    ones too (`member_bodies` is a tuple of pairs)."""
    return tuple(_as_tuple(value) if isinstance(value, list) else value for value in values)
