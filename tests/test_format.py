"""The text we write is Magic's format, line for line (DESIGN.md), and fixes its defects."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from conftest import follow, parse_prompt

from hashhop import TaskSpec, completion_text, make_sample, prompt_text, targets
from hashhop.render import record_chunks


def render(**fields):
    sample = make_sample(TaskSpec(**fields))
    return sample, prompt_text(sample), completion_text(sample), targets(sample)


@pytest.mark.parametrize("hops", [1, 2, 3, 6])
@pytest.mark.parametrize("cot", [False, True])
def test_every_chain_has_exactly_hops_links_and_ends_quoted(hops, cot):
    _, prompt, _, answers = render(size=5000, unit="chars", hops=hops, cot=cot, queries=3, seed=7)
    pairs, quoted = parse_prompt(prompt)
    values = set(pairs.values())
    starts = [key for key in pairs if key not in values]
    full_chains = [follow(pairs, start) for start in starts if len(follow(pairs, start)) == hops + 1]
    assert set(answers) == {chain[0] for chain in full_chains}
    for chain in full_chains:
        assert [key in quoted for key in chain[:-1]] == [False] * (hops - 1) + [True]
        expected = " = ".join(chain[1:]) if cot else chain[-1]
        assert answers[chain[0]] == expected


@pytest.mark.parametrize("hops", [2, 3, 5])
def test_a_filler_chain_is_shorter_quoted_and_never_a_target(hops):
    sample, prompt, _, answers = render(size=3001, unit="chars", hops=hops, hash_len=8, seed=3)
    pairs, quoted = parse_prompt(prompt)
    values = set(pairs.values())
    chains = [follow(pairs, key) for key in pairs if key not in values]
    short = [chain for chain in chains if len(chain) != hops + 1]
    assert len(short) == (1 if sample.filler_links else 0)
    for chain in short:
        assert len(chain) - 1 == sample.filler_links < hops
        assert chain[-2] in quoted and chain[0] not in answers


@pytest.mark.parametrize("cot", [False, True])
def test_completion_is_header_then_one_quoted_line_per_query(cot):
    _, _, completion, answers = render(size=4000, unit="chars", hops=2, cot=cot, queries=4, seed=1)
    header, body = completion.split("\n\n", 2)[:2], completion.split("\n\n", 2)[2]
    assert header == ["COMPLETION:\nHops=2", f"CoT={cot}"]
    assert body.endswith("\n") and not body.endswith("\n\n")
    lines = body[:-1].split("\n")
    assert len(lines) == 4
    for line in lines:
        key, answer = re.fullmatch(r"(\w+) = '(.+)'", line).groups()
        assert answers[key] == answer


def test_hashes_are_letters_of_the_requested_length():
    _, prompt, _, _ = render(size=2000, unit="chars", hash_len=11, seed=5)
    pairs, _ = parse_prompt(prompt)
    assert all(re.fullmatch(r"[a-zA-Z]{11}", h) for pair in pairs.items() for h in pair)


def test_every_character_of_a_long_hash_varies():
    """64 letters are 8 Feistel blocks: each must be a round's target, or it stays constant."""
    _, prompt, _, _ = render(size=20_000, unit="chars", hash_len=64, seed=1)
    keys = list(parse_prompt(prompt)[0])
    assert all(len({key[column] for key in keys}) > 20 for column in range(64))


def test_a_custom_alphabet_is_used():
    _, prompt, _, _ = render(size=2000, unit="chars", alphabet="0123456789", hash_len=10)
    pairs, _ = parse_prompt(prompt)
    assert all(re.fullmatch(r"[0-9]{10}", key) for key in pairs)


def test_hashes_are_unique_where_random_ones_would_collide():
    hash_len, alphabet_size = 4, 52
    sample, prompt, _, _ = render(size=400_000, unit="chars", hash_len=hash_len, hops=2)
    # Birthday bound: random 4-letter hashes would repeat about n^2 / (2 * 52^4) times here.
    expected_random_collisions = sample.n_hashes**2 / (2 * alphabet_size**hash_len)
    assert expected_random_collisions > 50
    pairs, _ = parse_prompt(prompt)
    every_hash = list(pairs) + [value for key, value in pairs.items() if value not in pairs]
    assert len(every_hash) == sample.n_hashes == len(set(every_hash))


@pytest.mark.parametrize("size", [160, 299, 1000, 4321, 100_000])
@pytest.mark.parametrize("hops", [1, 2, 4])
@pytest.mark.parametrize("hash_len", [4, 16])
def test_prompt_fits_the_budget_within_one_line(size, hops, hash_len):
    _, prompt, _, _ = render(size=size, unit="chars", hops=hops, hash_len=hash_len)
    longest_line_with_newline = 2 * hash_len + 6
    assert size - longest_line_with_newline < len(prompt) <= size


def test_a_token_budget_converts_at_chars_per_token():
    _, prompt, _, _ = render(size=1000, unit="tokens", chars_per_token=2.5, hops=2)
    assert 2500 - 38 < len(prompt) <= 2500


def test_a_token_counter_sizes_the_prompt_in_its_tokens():
    def count_tokens(text: str) -> int:  # a stand-in tokenizer: one token per 3 letters
        return sum(-(-len(word) // 3) for word in text.split())

    spec = TaskSpec(size=3000, unit="tokens", hops=2, tokenizer="three-letter words")
    sample = make_sample(spec, count_tokens)
    assert count_tokens(prompt_text(sample)) <= 3000
    bigger = make_sample(spec, lambda text: count_tokens(text) - 3000)  # as if 3000 more fit
    assert bigger.n_lines > sample.n_lines


def test_queries_are_a_shuffled_subset_of_the_chains():
    orders = []
    for seed in range(20):
        sample = make_sample(TaskSpec(size=3000, unit="chars", queries=5, seed=seed))
        chains = sample.query_chains
        assert len(set(chains)) == 5
        orders.append(bool(np.all(np.diff(chains) > 0)))
    assert not all(orders)


def test_lines_are_shuffled_across_the_whole_prompt():
    sample = make_sample(TaskSpec(size=100_000, unit="chars", hops=2))
    positions = np.arange(sample.n_lines)
    chains, _, _ = sample.line_links(sample.lines_at(positions))
    assert abs(np.corrcoef(positions, chains)[0, 1]) < 0.1


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    first = b"".join(record_chunks(make_sample(TaskSpec(size=2000, hops=2, seed=11))))
    again = b"".join(record_chunks(make_sample(TaskSpec(size=2000, hops=2, seed=11))))
    other = b"".join(record_chunks(make_sample(TaskSpec(size=2000, hops=2, seed=12))))
    assert first == again != other


def test_output_is_pinned_by_digest():
    spec = TaskSpec(size=5000, hops=3, queries=4, cot=True, seed=2026)
    record = b"".join(record_chunks(make_sample(spec)))
    assert hashlib.sha256(record).hexdigest() == PINNED_DIGEST


PINNED_DIGEST = "c6f2e1f4f119b448a35061b52656bf633bdcfbc2218b31eb098cf81c5b1748fc"


@pytest.mark.parametrize(
    ("fields", "digest"),
    [  # hashes of odd-length Feistel blocks, (5, 4) and (4, 3) characters; pinned before the
        # renderer wrote characters two at a time
        ({"size": 5000, "hops": 2, "hash_len": 9, "alphabet": "abcXYZ019", "queries": 2, "seed": 2027},
         "535d21cea359a087e2243083e9e46919bdfaa2ef8753f1acd97d7761b74a6cb6"),
        ({"size": 3000, "hops": 3, "hash_len": 7, "alphabet": "0123456789", "cot": True, "seed": 5},
         "8e1256d7785a71f464e4af4d459600564e2de6f48d79f3aa0c59f52c8e26c635"),
    ],
)
def test_other_alphabets_and_lengths_are_pinned_by_digest(fields, digest):
    record = b"".join(record_chunks(make_sample(TaskSpec(**fields))))
    assert hashlib.sha256(record).hexdigest() == digest


def test_a_streamed_record_equals_json_dumps_of_its_fields():
    sample = make_sample(TaskSpec(size=3000, hops=2, cot=True, queries=2, seed=4))
    record = b"".join(record_chunks(sample)).decode()
    fields = json.loads(record)
    assert record == json.dumps(fields) + "\n"
    assert fields["prompt"] == prompt_text(sample)
    assert fields["completion"] == completion_text(sample)
    assert fields["targets"] == targets(sample)


def test_the_recorded_spec_reproduces_the_sample():
    record = b"".join(record_chunks(make_sample(TaskSpec(size=1500, hops=2, seed=99))))
    spec = TaskSpec(**json.loads(record)["spec"])
    assert b"".join(record_chunks(make_sample(spec))) == record


def test_large_prompts_render_in_several_blocks_identically(monkeypatch):
    spec = TaskSpec(size=60_000, unit="chars", hops=2, seed=8)
    whole = prompt_text(make_sample(spec))
    monkeypatch.setattr("hashhop.render.BLOCK_ROWS", 97)
    assert prompt_text(make_sample(spec)) == whole
