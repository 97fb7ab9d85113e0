"""The frozen query sets of benchmarks/code_search.py, and the corpus they were drawn from.

    python benchmarks/code_queries.py --docs DIR [--seed 0]

writes benchmarks/data/code_search/<set>.jsonl (one {"query", "relevant"} a line, relevant
being symbols' full names) and meta.json (Python and numpy versions, seed, counts). The sets
are drawn once and committed: a benchmark that re-drew its queries on every run would
measure a different test each time a library changed.

The paraphrases come from Python's library reference, whose reST sources describe functions
in other words than their docstrings. Without root:

    apt-get download python3.11-doc && dpkg-deb -x python3.11-doc_*.deb python3.11-doc

then pass --docs python3.11-doc/usr/share/doc/python3.11/html/_sources/library.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import json
import random
import re
import string
import sys
import sysconfig
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hashhop.code.index import build_index
from hashhop.code.symbols import Symbol
from hashhop.code.words import identifier_parts, name_key

DATA = Path(__file__).resolve().parent / "data" / "code_search"
SET_NAMES = ("exact", "typo", "variant", "docstring", "paraphrase")
QUERIES_PER_SET = 1000
SEED = 0
MIN_TYPO_NAME_LENGTH = 5
MAX_TYPO_EDITS = 2
MIN_SENTENCE_WORDS = 4
MAX_SENTENCE_WORDS = 40
"""Longer 'first sentences' are whole paragraphs without a full stop: nobody types them."""

STDLIB_EXCLUDE = ("site-packages", "test", "tests", "idle_test", "test_*.py", "conftest.py")
NUMPY_EXCLUDE = ("tests", "test_*.py", "conftest.py")
"""Test suites are left out of the corpus (numpy.testing, a public module, stays)."""


@dataclass(frozen=True)
class CorpusRoot:
    """One tree of the corpus; its package is inferred as the index infers it (an __init__.py at root)."""

    path: Path
    exclude: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    text: str
    relevant: tuple[str, ...]


def corpus_roots() -> list[CorpusRoot]:
    """This interpreter's standard library and the numpy installed beside it."""
    numpy_spec = importlib.util.find_spec("numpy")
    if numpy_spec is None or numpy_spec.origin is None:
        sys.exit("numpy is not installed in this environment: the corpus needs it")
    return [
        CorpusRoot(Path(sysconfig.get_paths()["stdlib"]), STDLIB_EXCLUDE),
        CorpusRoot(Path(numpy_spec.origin).parent, NUMPY_EXCLUDE),
    ]


def corpus_versions() -> dict[str, str]:
    return {"python": sys.version.split()[0], "numpy": importlib.metadata.version("numpy")}


def read_tree(root: Path, exclude: tuple[str, ...]) -> list[Symbol]:
    """Every symbol under `root`, exactly as the code index reads them."""
    return build_index(root, exclude)[0].symbols


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _full_names_by(symbols: Iterable[Symbol], key: Callable[[Symbol], str]) -> dict[str, tuple[str, ...]]:
    """key -> sorted full names of the symbols that have it; an empty key groups nothing."""
    grouped: dict[str, set[str]] = defaultdict(set)
    for symbol in symbols:
        value = key(symbol)
        if value:
            grouped[value].add(symbol.full_name)
    return {value: tuple(sorted(names)) for value, names in grouped.items()}


def _shuffled(population: Iterable[str], rng: random.Random) -> list[str]:
    """A seeded order that does not depend on set iteration order."""
    ordered = sorted(population)
    rng.shuffle(ordered)
    return ordered


def exact_name_queries(symbols: list[Symbol], n: int, rng: random.Random) -> list[Query]:
    """A symbol's short name; every symbol of that name is relevant (the name cannot tell
    two functions called `open` apart)."""
    by_name = _full_names_by(symbols, lambda symbol: "" if _is_dunder(symbol.name) else symbol.name)
    return [Query(name, by_name[name]) for name in _shuffled(by_name, rng)[:n]]


def unambiguous_names(symbols: list[Symbol]) -> set[str]:
    """Non-dunder names no other name equals once case and separators are dropped: a typo
    or variant of `foo_bar` is ambiguous where `fooBar` also exists."""
    names = {symbol.name for symbol in symbols if not _is_dunder(symbol.name)}
    keys = Counter(name_key(name) for name in names)
    return {name for name in names if keys[name_key(name)] == 1}


def typo(name: str, n_edits: int, rng: random.Random) -> str:
    """`name` after `n_edits` random inserts, deletes, substitutions or adjacent swaps;
    a new letter keeps the case of the one it replaces or follows."""
    chars = list(name)
    for _ in range(n_edits):
        edit = rng.choice(("insert", "delete", "substitute", "transpose") if len(chars) > 1 else ("insert", "substitute"))
        at = rng.randrange(len(chars))
        letter = rng.choice(string.ascii_lowercase)
        letter = letter.upper() if chars[at].isupper() else letter
        if edit == "insert":
            chars.insert(at, letter)
        elif edit == "delete":
            del chars[at]
        elif edit == "substitute":
            chars[at] = letter
        else:
            at = min(at, len(chars) - 2)
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
    return "".join(chars)


TYPO_TRIES = 20
"""Draws per name before giving up on it (a short name's edits often land on a real name)."""


def typo_queries(symbols: list[Symbol], n: int, rng: random.Random) -> list[Query]:
    """One or two edits of a name of at least MIN_TYPO_NAME_LENGTH characters whose result,
    compared as name_key compares, is no real name: the query must be a mistake."""
    by_name = _full_names_by(symbols, lambda symbol: symbol.name)
    real_keys = {name_key(name) for name in by_name}
    queries: list[Query] = []
    for name in _shuffled(unambiguous_names(symbols), rng):
        if len(name) < MIN_TYPO_NAME_LENGTH:
            continue
        for _ in range(TYPO_TRIES):
            misspelt = typo(name, rng.randint(1, MAX_TYPO_EDITS), rng)
            if name_key(misspelt) and name_key(misspelt) not in real_keys:
                queries.append(Query(misspelt, by_name[name]))
                break
        if len(queries) == n:
            break
    return queries


def case_variants(name: str) -> set[str]:
    """`name` written the other ways code writes names: snake_case, camelCase, PascalCase,
    all lower without separators, UPPER_SNAKE; `name` itself excluded."""
    parts = identifier_parts(name)
    if not parts:
        return set()
    variants = {
        "_".join(parts),
        parts[0] + "".join(part.capitalize() for part in parts[1:]),
        "".join(part.capitalize() for part in parts),
        "".join(parts),
        "_".join(parts).upper(),
    }
    return variants - {name}


def variant_queries(symbols: list[Symbol], n: int, rng: random.Random) -> list[Query]:
    """A case or separator variant of a name that is not itself a real name."""
    by_name = _full_names_by(symbols, lambda symbol: symbol.name)
    queries: list[Query] = []
    for name in _shuffled(unambiguous_names(symbols), rng):
        variants = sorted(case_variants(name) - by_name.keys())
        if variants:
            queries.append(Query(rng.choice(variants), by_name[name]))
        if len(queries) == n:
            break
    return queries


_ROLE = re.compile(r":[\w:.+-]+:`(?:~?[\w.]*\.)?([^`<]*?)\s*(?:<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_+")
_LITERAL = re.compile(r"``(.+?)``")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf)\.$", re.IGNORECASE)


def plain_text(rest: str) -> str:
    """reST inline markup -> the words a reader sees: :func:`~os.path.join` -> join,
    :ref:`text <label>` -> text, `text <url>`_ -> text, ``code`` -> code, *emphasis* -> emphasis."""
    text = _LINK.sub(lambda match: match.group(1), rest)
    text = _ROLE.sub(lambda match: match.group(1), text)
    text = _LITERAL.sub(lambda match: match.group(1), text)
    text = _EMPHASIS.sub(lambda match: match.group(1), text)
    return " ".join(text.split())


def first_sentence(paragraph: str) -> str | None:
    """The paragraph's first sentence, if it has between MIN_ and MAX_SENTENCE_WORDS words."""
    text = " ".join(paragraph.split())
    pieces = _SENTENCE_END.split(text)
    sentence = pieces[0]
    for piece in pieces[1:]:
        if not _ABBREVIATION.search(sentence):
            break
        sentence += " " + piece
    words = sentence.split()
    return sentence if MIN_SENTENCE_WORDS <= len(words) <= MAX_SENTENCE_WORDS else None


def docstring_sentence(symbol: Symbol) -> str | None:
    return first_sentence(symbol.docstring.split("\n\n")[0]) if symbol.docstring else None


def docstring_queries(symbols: list[Symbol], n: int, rng: random.Random) -> list[Query]:
    """A docstring's first sentence; every symbol that opens with the same sentence is relevant."""
    by_sentence = _full_names_by(symbols, lambda symbol: docstring_sentence(symbol) or "")
    return [Query(sentence, by_sentence[sentence]) for sentence in _shuffled(by_sentence, rng)[:n]]


DIRECTIVES = {
    "function": "function", "coroutinefunction": "function", "decorator": "function",
    "class": "class", "exception": "class",
    "method": "method", "classmethod": "method", "staticmethod": "method",
    "abstractmethod": "method", "coroutinemethod": "method",
}  # fmt: skip
"""Documentation directives that describe a function, class or method (attributes and data
have no source symbol)."""

MODULE_ALIASES = {"os.path": ("posixpath", "genericpath")}
"""Documented modules whose code lives under another name on this platform."""

_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. (?P<kind>[a-z]+):: *(?P<argument>.*)$")


@dataclass(frozen=True)
class Directive:
    """One described object: the module it was documented in, its dotted name there, its
    description's first sentence (None when it has none usable)."""

    kind: str
    module: str
    name: str
    sentence: str | None


def parse_directives(rest: str) -> list[Directive]:
    """The function, class and method directives of one reST file. A method is named
    Class.method, from its own text or from the class directive it is nested under."""
    lines = rest.splitlines()
    module = ""
    classes: list[tuple[int, str]] = []  # (indent, dotted class name) of open class directives
    found: list[Directive] = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        indent, kind, argument = len(match["indent"]), match["kind"], match["argument"].strip()
        if kind in ("module", "currentmodule"):
            module, classes = argument, []
            continue
        if kind not in DIRECTIVES:
            continue
        name = argument.split("(")[0].strip()
        classes = [(level, owner) for level, owner in classes if level < indent]
        if DIRECTIVES[kind] == "method" and "." not in name and classes:
            name = f"{classes[-1][1]}.{name}"
        if DIRECTIVES[kind] == "class":
            classes.append((indent, name))
        found.append(Directive(DIRECTIVES[kind], module, name, _description_sentence(lines, number + 1, indent)))
    return found


def _description_sentence(lines: list[str], start: int, directive_indent: int) -> str | None:
    """The first sentence of the first plain paragraph of the body that starts at `start`
    (after continuation signatures and :options:)."""
    paragraph: list[str] = []
    for line in lines[start:]:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped and indent <= directive_indent:
            break
        if not stripped:
            if paragraph:
                break
            continue
        if not paragraph and (stripped.startswith((":", "..")) or indent > directive_indent + 6):
            continue  # an option, a nested directive, or a continued signature
        if not paragraph and not stripped[0].isalnum() and stripped[0] not in "`*":
            return None
        paragraph.append(stripped)
    return first_sentence(plain_text(" ".join(paragraph))) if paragraph else None


def _candidate_modules(module: str, modules: set[str]) -> list[list[str]]:
    """Where a documented module's code may live, most likely first: itself (or its alias),
    its pure-Python twin (_pydecimal, _pyio), then its submodules (asyncio.tasks)."""
    tiers = [list(MODULE_ALIASES.get(module, (module,)))]
    tiers.append([twin for twin in (f"_py{module}", f"_{module}") if twin in modules])
    tiers.append(sorted(name for name in modules if name.startswith(module + ".")))
    return tiers


def resolve(directive: Directive, by_module_qualname: dict[tuple[str, str], list[Symbol]], modules: set[str]) -> list[Symbol]:
    """The corpus symbols a directive documents: its name under its module, or a dotted name
    read as module.qualname; C-implemented objects resolve to nothing."""
    parts = directive.name.split(".")
    readings = [(directive.module, directive.name)] if directive.module else []
    readings += [(".".join(parts[:split]), ".".join(parts[split:])) for split in range(1, len(parts))]
    for module, qualname in readings:
        for tier in _candidate_modules(module, modules):
            found = [symbol for candidate in tier for symbol in by_module_qualname.get((candidate, qualname), [])]
            if found:
                return found
    return []


def _normalised(sentence: str) -> str:
    return " ".join(sentence.lower().rstrip(".").split())


@dataclass
class ParaphraseCounts:
    directives: int = 0
    with_sentence: int = 0
    resolved: int = 0
    same_as_docstring: int = 0


def paraphrase_queries(symbols: list[Symbol], docs: Path) -> tuple[list[Query], ParaphraseCounts]:
    """The library reference's description of each documented function, class or method
    found in the corpus, where it differs from the symbol's own docstring; one query per
    distinct sentence, relevant = every symbol it describes."""
    by_module_qualname: dict[tuple[str, str], list[Symbol]] = defaultdict(list)
    for symbol in symbols:
        by_module_qualname[(symbol.module, symbol.qualname)].append(symbol)
    modules = {symbol.module for symbol in symbols}
    counts = ParaphraseCounts()
    relevant: dict[str, set[str]] = defaultdict(set)
    for path in sorted(docs.glob("*.rst.txt")):
        for directive in parse_directives(path.read_text(encoding="utf-8")):
            counts.directives += 1
            if directive.sentence is None:
                continue
            counts.with_sentence += 1
            found = resolve(directive, by_module_qualname, modules)
            counts.resolved += bool(found)
            own = {_normalised(docstring_sentence(symbol) or "") for symbol in found}
            if _normalised(directive.sentence) in own:
                counts.same_as_docstring += 1
                continue
            relevant[directive.sentence].update(symbol.full_name for symbol in found)
    queries = [Query(sentence, tuple(sorted(names))) for sentence, names in sorted(relevant.items()) if names]
    return queries, counts


def docs_version(docs: Path) -> str:
    """The Debian package version, from the changelog unpacked beside the reST sources."""
    changelog = docs.resolve().parents[3] / "python3.11-doc" / "changelog.Debian.gz"
    if not changelog.is_file():
        return "(version unknown)"
    with gzip.open(changelog, "rt") as file:
        return file.readline().split("(")[1].split(")")[0]


def write_set(path: Path, queries: list[Query]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(json.dumps({"query": query.text, "relevant": list(query.relevant)}) + "\n" for query in queries)


def read_set(path: Path) -> list[Query]:
    with open(path, encoding="utf-8") as file:
        return [Query(record["query"], tuple(record["relevant"])) for record in map(json.loads, file)]


def freeze(docs: Path, seed: int, out: Path = DATA) -> dict:
    """Draw every set from this machine's corpus and write them, with meta.json, to `out`."""
    symbols = [symbol for root in corpus_roots() for symbol in read_tree(root.path, root.exclude)]
    sets = {
        "exact": exact_name_queries(symbols, QUERIES_PER_SET, random.Random(seed)),
        "typo": typo_queries(symbols, QUERIES_PER_SET, random.Random(seed)),
        "variant": variant_queries(symbols, QUERIES_PER_SET, random.Random(seed)),
        "docstring": docstring_queries(symbols, QUERIES_PER_SET, random.Random(seed)),
    }
    sets["paraphrase"], paraphrases = paraphrase_queries(symbols, docs)
    for name, queries in sets.items():
        write_set(out / f"{name}.jsonl", queries)
    meta = {
        **corpus_versions(),
        "seed": seed,
        "symbols": len(symbols),
        "corpus": [{"root": root.path.name, "exclude": list(root.exclude)} for root in corpus_roots()],
        "docs": f"Debian python3.11-doc {docs_version(docs)}, html/_sources/library/*.rst.txt",
        "paraphrase_directives": vars(paraphrases),
        "queries": {name: len(queries) for name, queries in sets.items()},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, required=True, help="the library reference's reST sources (see above)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    if not args.docs.is_dir():
        parser.error(f"--docs {args.docs} is not a directory")
    print(json.dumps(freeze(args.docs, args.seed), indent=1))


if __name__ == "__main__":
    main()
