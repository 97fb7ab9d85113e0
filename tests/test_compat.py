"""`MultiHopEval.make_one` is a drop-in for Magic's API, without the reference's defects."""

from __future__ import annotations

import json
import subprocess
import sys

import reference_generator
from conftest import follow, parse_prompt

from hashhop import MultiHopEval


def test_make_one_takes_the_reference_arguments_and_returns_its_fields():
    sample = MultiHopEval.make_one(
        n_chars_problem=20_000, num_queries=5, hops=2, hash_pair_str_length=16,
        chain_of_thought=False,
    )
    assert len(sample.prompt) <= 20_000
    assert sample.completion.startswith("COMPLETION:\nHops=2\n\nCoT=False\n\n")
    pairs, _ = parse_prompt(sample.prompt)
    for key, answer in sample.targets.items():
        assert follow(pairs, key)[-1] == answer


def test_a_seed_makes_make_one_reproducible_and_none_draws_a_fresh_one():
    def make(seed):
        return MultiHopEval.make_one(5000, 2, 3, 8, True, seed=seed)

    assert make(4) == make(4)
    assert make(None).prompt != make(None).prompt


def test_the_reference_overshoots_the_requested_size_and_we_do_not():
    for hash_len, hops in [(16, 2), (4, 1)]:
        reference = reference_generator.make_one(100_000, 1, hops, hash_len, False)
        ours = MultiHopEval.make_one(100_000, 1, hops, hash_len, False, seed=0)
        assert len(reference.prompt) > 100_000 * 1.05
        assert len(ours.prompt) <= 100_000


def test_the_reference_repeats_hashes_at_short_lengths_and_we_do_not():
    reference = reference_generator.make_one(200_000, 1, 1, 3, False, seed=1)
    ours = MultiHopEval.make_one(200_000, 1, 1, 3, False, seed=1)
    reference_hashes = [h.strip("'") for line in reference.prompt.split("\n") for h in line.split(" = ")]
    assert len(set(reference_hashes)) < len(reference_hashes)
    pairs, _ = parse_prompt(ours.prompt)
    ours_hashes = [*pairs, *pairs.values()]
    assert len(set(ours_hashes)) == len(ours_hashes)


def test_magics_import_line_works_without_loading_torch():
    code = (
        "import json, sys\n"
        "from hashhop.generate import MultiHopEval, MultiHopSample\n"
        "sample = MultiHopEval.make_one(n_chars_problem=2000, num_queries=2, hops=2,"
        " hash_pair_str_length=16, chain_of_thought=True)\n"
        "assert isinstance(sample, MultiHopSample)\n"
        "print(json.dumps({'fields': sorted(vars(sample)), 'torch': 'torch' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {"fields": ["completion", "prompt", "targets"], "torch": False}
