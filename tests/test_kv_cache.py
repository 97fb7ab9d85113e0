"""Incremental decoding: prefill plus one token at a time is the full forward, step for step."""

from __future__ import annotations

import pytest
import torch
from test_models import N_FIXED, identifier_batch, tiny

from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.generation import greedy_continue
from hashhop.models import ModelConfig, build_model
from hashhop.task import TaskSpec
from hashhop.tokenize import make_tokenizer
from hashhop.training_data import context_text

PREFILL = 12


def decoded_logits(model, ids, features, counts, max_new_tokens=0) -> torch.Tensor:
    """Logits [B, T - PREFILL + 1, V] at positions PREFILL - 1 .. T - 1, by prefill then steps."""
    logits, cache = model.prefill(ids[:, :PREFILL], features, counts, max_new_tokens)
    steps = [logits]
    for position in range(PREFILL, ids.size(1)):
        logits, cache = model.decode_step(ids[:, position], cache)
        steps.append(logits)
    return torch.stack(steps, dim=1)


@pytest.mark.parametrize("positional", ["rope", "none"])
@pytest.mark.parametrize("conv_kernel", [0, 1, 4])
def test_prefill_then_decode_steps_give_the_full_forward_logits(positional, conv_kernel):
    model = tiny("transformer", positional=positional, conv_kernel=conv_kernel).eval()
    ids, features, counts = identifier_batch(length=30)
    counts[1] = 4  # each row keeps its own pointer slots while decoding
    with torch.no_grad():
        full = model(ids, features, counts)[:, PREFILL - 1 :]
        stepped = decoded_logits(model, ids, features, counts)
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)


def test_decoding_past_the_reserved_room_grows_the_cache_and_stays_exact():
    model = tiny("transformer").eval()
    ids, features, counts = identifier_batch(length=30)
    with torch.no_grad():
        full = model(ids, features, counts)[:, PREFILL - 1 :]
        reserved = decoded_logits(model, ids, features, counts, max_new_tokens=30 - PREFILL)
        grown = decoded_logits(model, ids, features, counts, max_new_tokens=0)
    torch.testing.assert_close(reserved, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grown, full, atol=1e-5, rtol=1e-5)


def test_a_plain_lm_decodes_incrementally_without_identifiers():
    model = tiny("transformer", feature_dim=0).eval()
    ids = torch.randint(0, N_FIXED, (2, 20), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(ids)[:, PREFILL - 1 :]
        stepped = decoded_logits(model, ids, None, None)
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)


def test_cache_bytes_are_the_models_state_bytes_per_sequence():
    model = tiny("transformer").eval()
    ids, features, counts = identifier_batch(length=20)
    with torch.no_grad():
        _, cache = model.prefill(ids, features, counts, max_new_tokens=50)
        model.decode_step(ids[:, 0], cache)
    assert cache.position == 21
    assert cache.nbytes == ids.size(0) * model.state_bytes(21)


def test_decoding_beyond_max_len_is_a_project_error():
    model = tiny("transformer", max_len=20).eval()
    ids, features, counts = identifier_batch(length=20)
    with torch.no_grad():
        _, cache = model.prefill(ids, features, counts)
        with pytest.raises(HashHopError, match="exceeds max_len"):
            model.decode_step(ids[:, 0], cache)


def test_gla_has_no_incremental_decode_path():
    model = tiny("gla")
    ids, features, counts = identifier_batch()
    assert not model.decodes_incrementally
    with pytest.raises(HashHopError, match="no incremental decode path"):
        model.prefill(ids, features, counts)


def test_greedy_decoding_with_the_cache_writes_what_rerunning_writes():
    tokenizer = make_tokenizer("identifier", feature_dim=32)
    torch.manual_seed(1)  # a random model whose answers vary: some close early, some never
    config = ModelConfig("transformer", tokenizer.n_fixed, 32, d_model=32, n_heads=2, conv_kernel=3)
    model = build_model(config)
    assert model.decodes_incrementally
    # Two prompt sizes, so rows of different lengths are decoded in separate batches.
    specs = [TaskSpec(size, unit="chars", seed=seed) for size in (150, 250) for seed in range(3)]
    contexts = [tokenizer.encode(context_text(make_sample(spec))) for spec in specs]
    assert len({len(c.ids) for c in contexts}) > 1
    cached = greedy_continue(model, tokenizer, contexts, max_new_tokens=12)
    rerun = greedy_continue(model, tokenizer, contexts, max_new_tokens=12, use_cache=False)
    assert cached == rerun
    closed = [text.endswith("'") for text in cached]
    assert any(closed) and not all(closed)
