"""Score a model's completions: exact match per asked query, per-hop credit, diagnoses.

The rule a reader can check: a query is what the expected completion asks (never the whole
`targets` dict, which Magic's generator fills with every chain); the model's answer to
query H1 is the chain of hashes its text first gives for H1, read by the grammar in
hashhop/answers.py (quotes of any kind or none, `=`, `:`, `is` or arrows, markdown, chatter
around it, any order); a chain-of-thought answer is correct when it is exactly
H2 = ... = H{h+1}, a skip answer when its last hash is H{h+1}.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Protocol

from hashhop.answers import find_answers
from hashhop.dataset import read_records
from hashhop.errors import HashHopError
from hashhop.task import SEPARATOR

WILSON_Z = 1.96
"""Normal quantile for the 95% Wilson intervals reported."""

_HASH = r"[A-Za-z0-9]+"
_PAIR_LINE = re.compile(rf"^({_HASH}) = '?({_HASH})'?$", re.MULTILINE)
_HEADER = re.compile(r"Hops=(\d+)\s*CoT=(True|False)")
_EXPECTED_LINE = re.compile(rf"^({_HASH}) = '([^'\n]*)'$", re.MULTILINE)


class Diagnosis(StrEnum):
    """Why an answer is wrong, judged on the first hash that is."""

    UNPARSEABLE = "unparseable"
    """No answer to the query in the text (hashhop/answers.py reads none)."""
    EARLY_STOP = "early_stop"
    """A correct prefix of the chain, too short (skip: an earlier hash of it, H1 included)."""
    OVER_HOP = "over_hop"
    """The whole correct chain, then more hashes."""
    OTHER_CHAIN = "other_chain"
    """A hash of the prompt, but not the one at this position of this chain."""
    ABSENT = "absent"
    """A hash found nowhere in the prompt."""


@dataclass(frozen=True)
class ExpectedCompletion:
    """What the expected completion asks: hop count, mode, and the answer to each query."""

    hops: int
    cot: bool
    targets: dict[str, str]
    """Asked query H1 -> answer as the completion writes it, in the order asked."""


@dataclass(frozen=True)
class QueryScore:
    """One asked query graded: what was asked, what came back, and why it is wrong if it is."""

    query: str
    target: str
    answer: str | None
    """The model's answer, hashes joined by ' = ', or None when none was found."""
    correct: bool
    hop_credit: float
    """CoT: leading hashes that match the chain, over hops. Skip: 1.0 or 0.0."""
    kind: Diagnosis | None
    first_wrong_hop: int | None
    """1 + the hops the answer shows done right (skip: k when it stopped at H_k, else 1)."""
    hops: int
    cot: bool


def parse_pairs(prompt: str) -> dict[str, str]:
    """Key -> value for every `KEY = VALUE` line of a prompt, the quotes of chain ends dropped."""
    return dict(_PAIR_LINE.findall(prompt))


def parse_completion(completion: str) -> ExpectedCompletion:
    """Read an expected completion (ours or Magic's: the same format)."""
    header = _HEADER.search(completion)
    if header is None:
        raise HashHopError("expected completion has no 'Hops=...' and 'CoT=...' header")
    targets = dict(_EXPECTED_LINE.findall(completion, header.end()))
    if not targets:
        raise HashHopError("expected completion asks no queries")
    return ExpectedCompletion(int(header[1]), header[2] == "True", targets)


class _Prompt:
    """A prompt's pairs, parsed only when needed (prompts are huge): to diagnose a wrong
    answer, or to tell a hash that reads as a word from a word."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def pairs(self) -> dict[str, str]:
        return parse_pairs(self.text)

    @cached_property
    def hashes(self) -> set[str]:
        return set(self.pairs) | set(self.pairs.values())

    def __contains__(self, token: object) -> bool:
        return token in self.hashes

    def chain(self, start: str, hops: int) -> list[str]:
        """[H1, H2, ..., H{hops+1}] from H1, shorter if the prompt breaks it off."""
        chain = [start]
        while len(chain) <= hops and chain[-1] in self.pairs:
            chain.append(self.pairs[chain[-1]])
        return chain


def _common_prefix(first: list[str], second: list[str]) -> int:
    """How many leading hashes the two lists share."""
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


def _diagnose(
    answer: list[str], chain: list[str], cot: bool, prompt: _Prompt
) -> tuple[Diagnosis, int]:
    """Kind of error and first wrong hop of a wrong answer, given the true chain [H1..H{h+1}]."""
    hops = len(chain) - 1
    if cot:
        matched = _common_prefix(answer, chain[1:])
        if matched == len(answer):
            return Diagnosis.EARLY_STOP, matched + 1
        if matched == hops:
            return Diagnosis.OVER_HOP, hops + 1
        wrong, first_wrong_hop = answer[matched], matched + 1
    else:
        wrong, first_wrong_hop = answer[-1], 1
        if wrong in chain[:-1]:
            return Diagnosis.EARLY_STOP, chain.index(wrong) + 1
    kind = Diagnosis.OTHER_CHAIN if wrong in prompt.hashes else Diagnosis.ABSENT
    return kind, first_wrong_hop


def _score_query(
    query: str, target: str, answer: list[str] | None, expected: ExpectedCompletion, prompt: _Prompt
) -> QueryScore:
    hops, cot = expected.hops, expected.cot
    truth = target.split(SEPARATOR) if cot else [target]
    if answer is None:
        return QueryScore(query, target, None, False, 0.0, Diagnosis.UNPARSEABLE, 1, hops, cot)
    correct = answer == truth if cot else answer[-1] == target
    credit = _common_prefix(answer, truth) / hops if cot else float(correct)
    kind, first_wrong_hop = None, None
    if not correct:
        chain = [query, *truth] if cot else prompt.chain(query, hops)
        kind, first_wrong_hop = _diagnose(answer, chain, cot, prompt)
    text = SEPARATOR.join(answer)
    return QueryScore(query, target, text, correct, credit, kind, first_wrong_hop, hops, cot)


def score_sample(prompt: str, expected_completion: str, model_completion: str) -> list[QueryScore]:
    """Grade every query the expected completion asks, in its order."""
    expected = parse_completion(expected_completion)
    lazy_prompt = _Prompt(prompt)
    answers = find_answers(model_completion, expected.targets, lazy_prompt)
    return [
        _score_query(query, target, answers.get(query), expected, lazy_prompt)
        for query, target in expected.targets.items()
    ]


def wilson_interval(successes: int, total: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: sound at 0%, 100% and small n."""
    if total == 0:
        return 0.0, 1.0
    rate = successes / total
    denominator = 1 + z * z / total
    center = (rate + z * z / (2 * total)) / denominator
    half_width = (
        z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total)) / denominator
    )
    return max(0.0, center - half_width), min(1.0, center + half_width)


class Graded(Protocol):
    """Anything graded per query: a fresh QueryScore, or a row read back from results."""

    correct: bool
    hop_credit: float


@dataclass(frozen=True)
class Summary:
    """Accuracy with its 95% Wilson interval, and mean per-hop credit, over some queries."""

    n: int
    correct: int
    accuracy: float
    low: float
    high: float
    mean_hop_credit: float

    @classmethod
    def of(cls, queries: Sequence[Graded]) -> Summary:
        correct = sum(query.correct for query in queries)
        low, high = wilson_interval(correct, len(queries))
        credit = sum(query.hop_credit for query in queries) / len(queries)
        return cls(len(queries), correct, correct / len(queries), low, high, credit)


@dataclass(frozen=True)
class DatasetScore:
    """Every graded query of a dataset and the aggregates a report needs."""

    n_samples: int
    queries: list[QueryScore]
    overall: Summary
    by_setting: dict[tuple[int, bool], Summary]
    """(hops, cot) -> summary of those queries, sorted by hops, skip before CoT."""
    kinds: dict[Diagnosis, int]
    """Wrong answers per diagnosis, every kind listed."""

    @classmethod
    def of(cls, n_samples: int, queries: list[QueryScore]) -> DatasetScore:
        settings = sorted({(query.hops, query.cot) for query in queries})
        by_setting = {
            setting: Summary.of([q for q in queries if (q.hops, q.cot) == setting])
            for setting in settings
        }
        counts = Counter(query.kind for query in queries)
        kinds = {kind: counts[kind] for kind in Diagnosis}
        return cls(n_samples, queries, Summary.of(queries), by_setting, kinds)


def _text_field(record: dict, field: str, where: str) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise HashHopError(f"{where}: field '{field}' must be a string, got {type(value).__name__}")
    return value


def score_dataset(dataset_path: Path, answers_path: Path) -> DatasetScore:
    """Grade a JSONL of samples against a JSONL of model answers, record by record.

    Errors name the file and line (or record number, counting non-blank lines).
    """
    samples = read_records(dataset_path)
    answers = read_records(answers_path, fields=("completion",))
    if len(answers) != len(samples):
        raise HashHopError(
            f"{answers_path}: {len(answers)} answer record(s), but {dataset_path} "
            f"has {len(samples)} sample(s); they must pair up in order"
        )
    queries: list[QueryScore] = []
    for number, (sample, answer) in enumerate(zip(samples, answers), start=1):
        where = f"{dataset_path}: record {number}"
        prompt = _text_field(sample, "prompt", where)
        expected = _text_field(sample, "completion", where)
        model = _text_field(answer, "completion", f"{answers_path}: record {number}")
        try:
            queries += score_sample(prompt, expected, model)
        except HashHopError as error:
            raise HashHopError(f"{where}: {error}") from None
    return DatasetScore.of(len(samples), queries)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _row(label_hops: str, label_mode: str, summary: Summary) -> str:
    interval = f"[{_percent(summary.low)}, {_percent(summary.high)}]"
    return (
        f"{label_hops:>4}  {label_mode:<4}  {summary.n:>7}  {_percent(summary.accuracy):>8}  "
        f"{interval:<16}  {summary.mean_hop_credit:>10.3f}"
    )


def format_score_table(score: DatasetScore) -> str:
    """A plain-text report: accuracy per (hops, mode) and overall, then wrong answers by kind."""
    lines = [
        f"{score.n_samples} sample(s), {score.overall.n} asked quer{'y' if score.overall.n == 1 else 'ies'}",
        "",
        f"{'hops':>4}  {'mode':<4}  {'queries':>7}  {'accuracy':>8}  {'95% CI':<16}  {'hop credit':>10}",
    ]
    for (hops, cot), summary in score.by_setting.items():
        lines.append(_row(str(hops), "CoT" if cot else "skip", summary))
    lines.append(_row("all", "", score.overall))
    lines += ["", f"wrong answers: {score.overall.n - score.overall.correct}"]
    lines += [f"  {kind.value:<12} {count:>7}" for kind, count in score.kinds.items()]
    return "\n".join(lines)
