"""Scoring: exact match on asked queries only, per-hop credit, diagnoses, tolerant parsing."""

from __future__ import annotations

import json
import string
from itertools import pairwise

import pytest
from hand_made import Made, make

from hashhop.errors import HashHopError
from hashhop.score import (
    Diagnosis,
    QueryScore,
    format_score_table,
    parse_completion,
    parse_pairs,
    score_dataset,
    score_sample,
    wilson_interval,
)


def answer_lines(made: Made, answers: dict[str, str] | None = None) -> str:
    """Model text answering every asked query, with `answers` (H1 -> answer) overriding."""
    answers = answers or {}
    return "\n".join(
        f"{chain[0]} = '{answers.get(chain[0], made.answer(chain))}'"
        for chain in made.chains[: made.asked]
    )


def only(scores: list[QueryScore]) -> QueryScore:
    assert len(scores) == 1
    return scores[0]


ABSENT_HASH = "Zz" * 8


# Reading the format


def test_parse_pairs_maps_every_key_to_its_value_without_quotes():
    made = make(n_chains=3, hops=2)
    pairs = parse_pairs(made.prompt)
    assert pairs == {key: value for chain in made.chains for key, value in pairwise(chain)}


def test_parse_completion_reads_hops_mode_and_asked_queries_in_order():
    made = make(n_chains=5, hops=3, cot=True, asked=3)
    expected = parse_completion(made.completion)
    assert (expected.hops, expected.cot) == (3, True)
    assert list(expected.targets) == [chain[0] for chain in made.chains[:3]]
    assert expected.targets[made.chains[0][0]] == " = ".join(made.chains[0][1:])


def test_a_completion_without_header_is_an_error():
    with pytest.raises(HashHopError, match="header"):
        parse_completion("abc = 'def'\n")


# Exact match


@pytest.mark.parametrize("hops", [1, 3])
@pytest.mark.parametrize("cot", [False, True])
def test_the_expected_completion_scores_every_query_correct(hops, cot):
    made = make(n_chains=5, hops=hops, cot=cot)
    scores = score_sample(made.prompt, made.completion, made.completion)
    assert len(scores) == 5
    assert all(s.correct and s.hop_credit == 1.0 and s.kind is None for s in scores)
    assert all(s.first_wrong_hop is None for s in scores)


def test_corrupting_k_of_n_answers_gives_exactly_n_minus_k_over_n():
    made = make(n_chains=10, hops=2)
    wrong = {chain[0]: ABSENT_HASH for chain in made.chains[:3]}
    scores = score_sample(made.prompt, made.completion, answer_lines(made, wrong))
    assert sum(s.correct for s in scores) / len(scores) == 7 / 10


def test_cot_answer_wrong_at_hop_2_of_3_gets_one_third_credit():
    made = make(n_chains=2, hops=3, cot=True, asked=1)
    h1, h2, _, h4 = made.chains[0]
    score = only(
        score_sample(made.prompt, made.completion, f"{h1} = '{h2} = {ABSENT_HASH} = {h4}'")
    )
    assert not score.correct
    assert score.hop_credit == pytest.approx(1 / 3)
    assert score.first_wrong_hop == 2


def test_a_skip_answer_is_all_or_nothing():
    made = make(n_chains=2, hops=3, asked=1)
    score = only(
        score_sample(
            made.prompt, made.completion, answer_lines(made, {made.chains[0][0]: ABSENT_HASH})
        )
    )
    assert score.hop_credit == 0.0


def test_a_skip_answer_that_writes_out_the_hops_is_graded_on_its_last_hash():
    made = make(n_chains=1, hops=3)
    h1, *rest = made.chains[0]
    score = only(score_sample(made.prompt, made.completion, f"{h1} = '{' = '.join(rest)}'"))
    assert score.correct


def test_only_asked_queries_count_though_targets_hold_every_chain(tmp_path):
    made = make(n_chains=4, hops=2, asked=2)
    assert len(made.targets) == 4
    unasked_wrong = {chain[0]: ABSENT_HASH for chain in made.chains[2:]}
    everything = "\n".join(
        f"{key} = '{unasked_wrong.get(key, value)}'" for key, value in made.targets.items()
    )
    dataset, answers = tmp_path / "data.jsonl", tmp_path / "answers.jsonl"
    dataset.write_text(json.dumps(made.record()) + "\n")
    answers.write_text(json.dumps({"completion": everything}) + "\n")
    score = score_dataset(dataset, answers)
    assert (score.overall.n, score.overall.accuracy) == (2, 1.0)


# Diagnoses


def test_no_answer_line_is_unparseable():
    made = make(n_chains=2, asked=1)
    score = only(score_sample(made.prompt, made.completion, "I cannot find it."))
    assert (score.kind, score.answer, score.first_wrong_hop) == (Diagnosis.UNPARSEABLE, None, 1)


def test_a_too_short_cot_chain_is_an_early_stop():
    made = make(n_chains=2, hops=3, cot=True, asked=1)
    h1, h2 = made.chains[0][:2]
    score = only(score_sample(made.prompt, made.completion, f"{h1} = '{h2}'"))
    assert (score.kind, score.first_wrong_hop) == (Diagnosis.EARLY_STOP, 2)
    assert score.hop_credit == pytest.approx(1 / 3)


@pytest.mark.parametrize("stopped_at", [0, 1, 2])
def test_a_skip_answer_on_an_earlier_hash_of_the_chain_is_an_early_stop(stopped_at):
    made = make(n_chains=2, hops=3, asked=1)
    chain = made.chains[0]
    score = only(score_sample(made.prompt, made.completion, f"{chain[0]} = '{chain[stopped_at]}'"))
    assert (score.kind, score.first_wrong_hop) == (Diagnosis.EARLY_STOP, stopped_at + 1)


def test_the_correct_chain_followed_by_more_is_an_over_hop():
    made = make(n_chains=2, hops=2, cot=True, asked=1)
    h1, h2, h3 = made.chains[0]
    score = only(
        score_sample(made.prompt, made.completion, f"{h1} = '{h2} = {h3} = {made.chains[1][1]}'")
    )
    assert (score.kind, score.correct, score.first_wrong_hop) == (Diagnosis.OVER_HOP, False, 3)
    assert score.hop_credit == 1.0


@pytest.mark.parametrize("cot", [False, True])
def test_a_hash_of_another_chain_is_other_chain(cot):
    made = make(n_chains=2, hops=2, cot=cot, asked=1)
    score = only(
        score_sample(made.prompt, made.completion, f"{made.chains[0][0]} = '{made.chains[1][2]}'")
    )
    assert (score.kind, score.first_wrong_hop) == (Diagnosis.OTHER_CHAIN, 1)


@pytest.mark.parametrize("cot", [False, True])
def test_a_hash_not_in_the_prompt_is_absent(cot):
    made = make(n_chains=2, hops=2, cot=cot, asked=1)
    score = only(
        score_sample(made.prompt, made.completion, f"{made.chains[0][0]} = '{ABSENT_HASH}'")
    )
    assert score.kind == Diagnosis.ABSENT


# Tolerant parsing


TOLERATED = {
    "double quotes": '{h1} = "{h2} = {h3}"',
    "backticks": "{h1} = `{h2} = {h3}`",
    "no quotes": "{h1} = {h2} = {h3}",
    "quotes around each hash": "'{h1}' = '{h2}' = '{h3}'",
    "odd spacing": "  {h1}   =  '  {h2}=  {h3} '  ",
    "arrows": "{h1} -> {h2} => {h3}",
    "chatter": "Sure! Following the chain, {h1} = '{h2} = {h3}'. Hope this helps.",
    "code fence": "```\n{h1} = '{h2} = {h3}'\n```",
    "markdown bold": "**{h1}** = **{h2} = {h3}**",
    "header": "COMPLETION:\nHops=2\n\nCoT=True\n\n{h1} = '{h2} = {h3}'\n",
    "a sentence": 'The answer to the query "{h1}" is "{h2} = {h3}"',
}


@pytest.mark.parametrize("text", TOLERATED.values(), ids=TOLERATED.keys())
def test_parsing_tolerates(text):
    made = make(n_chains=2, hops=2, cot=True, asked=1)
    h1, h2, h3 = made.chains[0]
    score = only(score_sample(made.prompt, made.completion, text.format(h1=h1, h2=h2, h3=h3)))
    assert score.correct, score


def test_a_hash_that_reads_as_a_word_is_still_a_hash():
    made = make(n_chains=2, hops=2, cot=True, asked=1, alphabet=string.ascii_lowercase)
    h1, h2, h3 = made.chains[0]
    text = f"{h1} = '{h2} = {h3}' is my answer."
    assert only(score_sample(made.prompt, made.completion, text)).correct


def test_without_a_prompt_the_shape_of_a_hash_tells_it_from_words():
    made = make(n_chains=2, hops=2, asked=1)
    h1, *_, last = made.chains[0]
    text = f"Query {h1}: looking it up.\n{h1} = '{last}' is my answer."
    assert only(score_sample("", made.completion, text)).correct


def test_right_answers_with_chatter_are_graded_without_parsing_the_prompt(monkeypatch):
    def prompts_are_huge(prompt: str) -> dict[str, str]:
        raise AssertionError("the prompt was parsed")

    monkeypatch.setattr("hashhop.score.parse_pairs", prompts_are_huge)
    made = make(n_chains=3, hops=2, cot=True)
    text = "Sure! Here you go.\n\n" + answer_lines(made) + "\n\nHope this helps."
    assert all(s.correct for s in score_sample(made.prompt, made.completion, text))


def test_answers_may_come_in_any_order():
    made = make(n_chains=6, hops=2)
    reversed_lines = "\n".join(reversed(answer_lines(made).split("\n")))
    assert all(s.correct for s in score_sample(made.prompt, made.completion, reversed_lines))


def test_a_query_answered_twice_is_graded_on_its_first_answer():
    made = make(n_chains=2, hops=2, asked=1)
    h1, *_, last = made.chains[0]
    text = f"{h1} = '{ABSENT_HASH}'\n{h1} = '{last}'"
    assert not only(score_sample(made.prompt, made.completion, text)).correct


def test_a_query_inside_a_longer_hash_is_not_an_answer():
    made = make(n_chains=2, hops=1, asked=1)
    h1, h2 = made.chains[0]
    score = only(score_sample(made.prompt, made.completion, f"x{h1} = '{h2}'"))
    assert score.kind == Diagnosis.UNPARSEABLE


# Confidence intervals


def test_wilson_interval_matches_known_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)


def test_wilson_interval_stays_inside_zero_one_at_the_extremes():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


# Dataset files


def write_files(tmp_path, samples: list[Made], answers: list[str]):
    dataset, answers_path = tmp_path / "data.jsonl", tmp_path / "answers.jsonl"
    dataset.write_text("".join(json.dumps(made.record()) + "\n" for made in samples))
    answers_path.write_text("".join(json.dumps({"completion": text}) + "\n" for text in answers))
    return dataset, answers_path


def test_score_dataset_groups_accuracy_by_hops_and_mode(tmp_path):
    skip, cot = make(n_chains=4, hops=1, seed=1), make(n_chains=2, hops=3, cot=True, seed=2)
    wrong = answer_lines(skip, {skip.chains[0][0]: ABSENT_HASH})
    score = score_dataset(*write_files(tmp_path, [skip, cot], [wrong, cot.completion]))
    assert score.n_samples == 2 and score.overall.n == 6
    assert score.by_setting[(1, False)].accuracy == 3 / 4
    assert score.by_setting[(3, True)].accuracy == 1.0
    assert score.kinds[Diagnosis.ABSENT] == 1 and sum(score.kinds.values()) == 1
    assert score.overall.mean_hop_credit == pytest.approx(5 / 6)


def test_score_table_shows_each_setting_overall_and_every_diagnosis(tmp_path):
    skip, cot = make(n_chains=4, hops=1, seed=1), make(n_chains=2, hops=3, cot=True, seed=2)
    table = format_score_table(
        score_dataset(*write_files(tmp_path, [skip, cot], [skip.completion, ""]))
    )
    rows = table.split("\n")
    assert any(row.split()[:4] == ["1", "skip", "4", "100.0%"] for row in rows)
    assert any(row.split()[:4] == ["3", "CoT", "2", "0.0%"] for row in rows)
    assert any(row.split()[:3] == ["all", "6", "66.7%"] for row in rows)
    assert all(kind.value in table for kind in Diagnosis)


def one_line_error(dataset, answers) -> str:
    with pytest.raises(HashHopError) as error:
        score_dataset(dataset, answers)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_missing_file_is_a_one_line_error(tmp_path):
    made = make()
    dataset, _ = write_files(tmp_path, [made], [made.completion])
    assert "nope.jsonl" in one_line_error(dataset, tmp_path / "nope.jsonl")


def test_malformed_json_names_file_and_line(tmp_path):
    made = make()
    dataset, answers = write_files(tmp_path, [made, made], [made.completion])
    answers.write_text(answers.read_text() + "{not json\n")
    assert f"{answers}:2" in one_line_error(dataset, answers)


def test_a_missing_field_names_file_and_line(tmp_path):
    made = make()
    dataset, answers = write_files(tmp_path, [made], [made.completion])
    answers.write_text(json.dumps({"text": made.completion}) + "\n")
    message = one_line_error(dataset, answers)
    assert f"{answers}:1" in message and "completion" in message


def test_a_count_mismatch_is_an_error(tmp_path):
    made = make()
    message = one_line_error(*write_files(tmp_path, [made, made], [made.completion]))
    assert "1 answer record" in message and "2 sample" in message


def test_a_non_text_completion_is_an_error(tmp_path):
    made = make()
    dataset, answers = write_files(tmp_path, [made], [made.completion])
    answers.write_text(json.dumps({"completion": None}) + "\n")
    assert f"{answers}: record 1" in one_line_error(dataset, answers)


def test_a_bad_expected_completion_names_its_record(tmp_path):
    good, bad = make(seed=1), make(seed=2)
    bad.completion = "no header here"
    message = one_line_error(*write_files(tmp_path, [good, bad], [good.completion, ""]))
    assert "data.jsonl: record 2" in message and "header" in message
