"""The scorer grades every phrasing in tests/data/phrasings.toml as that corpus expects.

The corpus is how models really write answers: chatty, quoted, bolded, fenced, arrowed, with
words after the answer and mentions before it; and wrong answers that must stay wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hand_made import Made, make

from hashhop.score import QueryScore, score_sample

CORPUS = tomllib.loads((Path(__file__).parent / "data" / "phrasings.toml").read_text("utf-8"))[
    "phrasing"
]
ABSENT_HASH = "Zz" * 8


def fields(made: Made) -> dict[str, str]:
    """What a phrasing's text may name: see the corpus's header."""
    asked, second, unasked = made.chains
    last = asked[-1]
    near = last[:-1] + last[-1].swapcase()
    assert near not in made.prompt and ABSENT_HASH not in made.prompt
    return {
        **{f"h{level}": hash_ for level, hash_ in enumerate(asked, start=1)},
        "answer": made.answer(asked),
        "last": last,
        "g1": second[0],
        "g_answer": made.answer(second),
        "other": unasked[-1],
        "absent": ABSENT_HASH,
        "near": near,
    }


def grade(score: QueryScore) -> str:
    return "correct" if score.correct else score.kind.value


@pytest.mark.parametrize("phrasing", CORPUS, ids=[phrasing["name"] for phrasing in CORPUS])
def test_a_phrasing_gets_its_expected_grade(phrasing):
    made = make(
        n_chains=3, hops=phrasing["hops"], cot=phrasing["cot"], asked=len(phrasing["expect"])
    )
    text = phrasing["text"].format_map(fields(made))
    assert [grade(score) for score in score_sample(made.prompt, made.completion, text)] == (
        phrasing["expect"]
    )


def test_the_corpus_has_right_and_wrong_phrasings_for_every_setting():
    for hops in (1, 2, 3):
        for cot in (False, True):
            grades = {
                grade == "correct"
                for phrasing in CORPUS
                if (phrasing["hops"], phrasing["cot"]) == (hops, cot)
                for grade in phrasing["expect"]
            }
            assert grades == {True, False}, (hops, cot)


def test_the_corpus_names_are_distinct():
    names = [phrasing["name"] for phrasing in CORPUS]
    assert len(set(names)) == len(names)
