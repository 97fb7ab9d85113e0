"""Python source -> symbols: every function, method and class, with where it is and what it says.

Files are parsed with `ast`, never imported: indexing a tree must not run its code (a module
may raise, write files or open sockets when imported). A file that cannot be read as Python
(unreadable, binary, too big, not valid syntax) is skipped with a reason, never fatal.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path

MAX_FILE_BYTES = 4_000_000
"""Bigger .py files are generated tables, not code anyone searches; skipped."""

SKIPPED_DIRECTORIES = ("__pycache__", ".*")
"""Never walked: caches, and hidden directories (.git, .venv, .tox ...)."""


@dataclass(frozen=True)
class Symbol:
    """One function, method or class. `qualname` is Python's own (`Counter.most_common`,
    `outer.<locals>.inner`); `module` is dotted from the file path; `line` is 1-based."""

    module: str
    qualname: str
    kind: str
    path: str
    line: int
    signature: str
    docstring: str
    source: str
    docstring_lines: tuple[int, int] = (0, 0)
    """[start, end) of the docstring statement's lines within `source`; (0, 0) if none."""
    member_bodies: tuple[tuple[int, int], ...] = ()
    """[start, end) of each direct member's body within a class's `source` (the lines after
    the member's header): what `own_source` leaves out."""

    @property
    def name(self) -> str:
        return self.qualname.rpartition(".")[2]

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.qualname}" if self.module else self.qualname

    @property
    def code(self) -> str:
        """The source without its docstring: what an index built with docstrings removed sees."""
        start, end = self.docstring_lines
        if start == end:
            return self.source
        lines = self.source.splitlines(keepends=True)
        return "".join(lines[:start] + lines[end:])

    @property
    def own_source(self) -> str:
        """The source without its members' bodies: a class's header, docstring, attributes
        and the headers of its methods. Each member is a symbol of its own; search reads a
        class through this, or a class holding every method's words would outrank the
        method a description is about."""
        if not self.member_bodies:
            return self.source
        lines = self.source.splitlines(keepends=True)
        dropped = {line for start, end in self.member_bodies for line in range(start, end)}
        return "".join(line for at, line in enumerate(lines) if at not in dropped)

    def without_docstring(self) -> Symbol:
        """This symbol as an index built with docstrings removed holds it. The docstring is
        a class's first statement, so its members move up by its length."""
        start, end = self.docstring_lines
        shift = end - start
        members = tuple((first - shift, last - shift) for first, last in self.member_bodies)
        return replace(self, docstring="", source=self.code, docstring_lines=(0, 0), member_bodies=members)


class SkippedFile(Exception):
    """A file that is not indexable Python; the message says why, in a few words."""


def module_name(relative_path: str, package: str = "") -> str:
    """'os/path.py' -> 'os.path'; 'pkg/__init__.py' -> 'pkg'; prefixed by the tree's package."""
    parts = [part for part in relative_path.removesuffix(".py").split("/") if part]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts] if package else parts)


def read_python(path: Path) -> str:
    """The file's text, decoded as Python decodes it (PEP 263 cookie, else UTF-8)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SkippedFile(f"larger than {MAX_FILE_BYTES:,} bytes")
        data = path.read_bytes()
    except OSError as error:
        raise SkippedFile(f"unreadable ({error.strerror or error})") from None
    if b"\0" in data:
        raise SkippedFile("binary (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        raise SkippedFile(f"not decodable ({error})") from None


def parse_symbols(text: str, module: str, path: str) -> list[Symbol]:
    """Every def, async def and class in `text`, outermost first, in source order."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as error:
        line = getattr(error, "lineno", None)
        raise SkippedFile(f"syntax error{f' at line {line}' if line else ''}") from None
    lines = text.splitlines(keepends=True)
    symbols: list[Symbol] = []
    _collect(tree, prefix="", inside_class=False, lines=lines, module=module, path=path, into=symbols)
    return symbols


def _collect(
    node: ast.AST,
    prefix: str,
    inside_class: bool,
    lines: list[str],
    module: str,
    path: str,
    into: list[Symbol],
) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qualname = prefix + child.name
            is_class = isinstance(child, ast.ClassDef)
            kind = "class" if is_class else "method" if inside_class else "function"
            first_line = child.decorator_list[0].lineno if child.decorator_list else child.lineno
            into.append(
                Symbol(
                    module=module,
                    qualname=qualname,
                    kind=kind,
                    path=path,
                    line=child.lineno,
                    signature=_signature(child),
                    docstring=ast.get_docstring(child, clean=True) or "",
                    source="".join(lines[first_line - 1 : child.end_lineno]),
                    docstring_lines=_docstring_lines(child, first_line),
                    member_bodies=_member_bodies(child, first_line) if is_class else (),
                )
            )
            inner_prefix = qualname + ("." if is_class else ".<locals>.")
            _collect(child, inner_prefix, is_class, lines, module, path, into)
        else:
            _collect(child, prefix, inside_class, lines, module, path, into)


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, first_line: int) -> tuple[int, int]:
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return (0, 0)
    return (first.lineno - first_line, first.end_lineno - first_line + 1)


def _member_bodies(node: ast.ClassDef, first_line: int) -> tuple[tuple[int, int], ...]:
    """[start, end) lines, relative to `first_line`, of each def or class directly in the
    class body, after its header. A one-line member (`def f(self): return 1`) keeps its line."""
    bodies = []
    for member in node.body:
        if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = max(member.body[0].lineno, member.lineno + 1)
            if start <= member.end_lineno:
                bodies.append((start - first_line, member.end_lineno - first_line + 1))
    return tuple(bodies)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        bases = [ast.unparse(base) for base in node.bases] + [ast.unparse(k) for k in node.keywords]
        return f"class {node.name}({', '.join(bases)})" if bases else f"class {node.name}"
    keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{keyword} {node.name}({ast.unparse(node.args)}){returns}"


def iter_python_files(root: Path, exclude: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every .py file under `root`, sorted, so an index is
    the same on every machine. Linked directories are not walked (`os.walk` default) and a
    linked file only where it stays inside `root`; `exclude` holds glob patterns matched against relative paths and single names."""
    root = root.resolve()
    found: list[tuple[str, Path]] = []
    for directory, subdirectories, files in os.walk(root, followlinks=False):
        base = Path(directory)
        subdirectories[:] = [
            name
            for name in subdirectories
            if not _excluded(name, (base / name).relative_to(root).as_posix(), SKIPPED_DIRECTORIES + exclude)
        ]
        for name in files:
            relative = (base / name).relative_to(root).as_posix()
            if name.endswith(".py") and not _excluded(name, relative, exclude) and _inside(base / name, root):
                found.append((relative, base / name))
    yield from sorted(found)


def _excluded(name: str, relative: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch(name, pattern) or fnmatch(relative, pattern) for pattern in patterns)


def _inside(path: Path, root: Path) -> bool:
    """False for a symlink that resolves outside `root` (or nowhere)."""
    if not path.is_symlink():
        return True
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except OSError:
        return False
