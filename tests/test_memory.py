"""The memory model: index against exact search, streaming ingest, saved memories, learning."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashhop.errors import HashHopError
from hashhop.evaluate_model import eval_specs
from hashhop.fit import make_sample
from hashhop.memory.decode import MemoryDecoder
from hashhop.memory.ingest import embed_pieces, ingest
from hashhop.memory.model import GATE_FLOOR
from hashhop.memory.persist import load_memory, save_memory
from hashhop.memory.store import MemoryStore, balanced_bit_order, hamming, pack_codes
from hashhop.models import ModelConfig, build_model
from hashhop.render import prompt_chunks, prompt_text
from hashhop.tokenize import IdentifierTokenizer
from hashhop.training_data import answer_text, context_text

TOKENIZER = IdentifierTokenizer(feature_dim=32)


def untrained(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    settings = {"d_model": 32, "n_layers": 1, "n_heads": 2, "conv_kernel": 3, "code_bits": 64,
                "window": 16} | overrides
    return build_model(ModelConfig("memory", TOKENIZER.n_fixed, TOKENIZER.feature_dim, **settings)).eval()


def random_store(n_entries: int, seed: int = 0) -> tuple[MemoryStore, np.ndarray]:
    keys = np.random.default_rng(seed).standard_normal((n_entries, 128)).astype(np.float32)
    tokens = np.arange(n_entries, dtype=np.uint32).view(np.uint8).reshape(n_entries, 4)[:, :3]
    order = balanced_bit_order(keys >= 0)
    return MemoryStore.build(pack_codes(keys[:, order]), tokens, np.zeros(n_entries, np.float16), order), keys


def question(sample) -> str:
    return context_text(sample)[len(prompt_text(sample)) :]


def answered_right(model, tokenizer, samples) -> int:
    """How many samples the model answers exactly through ingest and the decoding path."""
    right = 0
    for sample in samples:
        memory = ingest(model, tokenizer, [prompt_text(sample)], progress=False)
        decoded = MemoryDecoder(model, tokenizer, memory).continue_text(question(sample), 2 * sample.spec.hops + 2)
        right += decoded.text == answer_text(sample).rstrip("\n")
    return right


@pytest.mark.parametrize("n_entries", [1, 3, 50, 700])
def test_index_top_k_equals_exact_top_k_when_every_bucket_is_probed(n_entries):
    store, _ = random_store(n_entries)
    rng = np.random.default_rng(1)
    for _ in range(20):
        query = store.order_query(rng.standard_normal(128))
        found = store.search(query, 5, probes=1 << store.prefix_bits)
        expected = store.exact_search(query, 5)
        assert all(np.array_equal(a, b) for a, b in zip(found, expected))


def test_a_read_ranks_the_memory_and_its_overlay_by_its_own_score():
    """Scale times agreement plus the stored float16 gate score, ties to the lower index, the
    overlay's entries counted after the memory's: as numpy computes it over every entry."""
    store, _ = random_store(3000)
    overlay, _ = random_store(40, seed=5)
    rng = np.random.default_rng(6)
    store.bias[:] = -rng.random(len(store)) * 3
    overlay.bias[:] = -rng.random(len(overlay)) * 3
    overlay = MemoryStore(overlay.codes, overlay.tokens, overlay.bias, store.bit_order)
    codes, bias = np.concatenate([store.codes, overlay.codes]), np.concatenate([store.bias, overlay.bias])
    for _ in range(10):
        query = store.order_query(rng.standard_normal(128))
        found, distance, found_bias = store.search(query, 8, 1 << store.prefix_bits, 20.0, overlay)
        every_distance = hamming(codes, pack_codes(query[None])[0])
        agreement = (1 - 2 * every_distance / 128).astype(np.float32)
        expected = np.lexsort((np.arange(len(codes)), -(20.0 * agreement + bias.astype(np.float32))))[:8]
        assert found.tolist() == expected.tolist()
        assert np.array_equal(found_bias, bias[expected].astype(np.float32))
        assert np.array_equal(distance, every_distance[expected])


def test_the_lookup_reads_every_finite_float16_gate_score_exactly():
    from hashhop.memory.probe import half_to_float

    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    values = bits.view(np.float16).astype(np.float32)
    finite = np.isfinite(values)
    read = np.array([half_to_float(b) for b in bits[finite]], np.float32)
    assert np.array_equal(read.view(np.uint32), values[finite].view(np.uint32))  # -0.0 and subnormals too


def test_index_finds_a_noisy_copy_of_a_key_among_many():
    store, keys = random_store(20000)
    rng = np.random.default_rng(2)
    asked = rng.choice(len(keys), 50, replace=False)
    hits = 0
    for row in asked:
        query = store.order_query(keys[row] + 0.2 * rng.standard_normal(128))
        exact_best = store.exact_search(query, 1)[0][0]
        hits += exact_best in store.search(query, 4, probes=32)[0]
    assert store.prefix_bits >= 12 and hits >= 48


@pytest.mark.parametrize("k", [1, 8, 40])
def test_nearest_keeps_the_smallest_distances_with_ties_in_index_order(k):
    from hashhop.memory.store import nearest

    distances = np.random.default_rng(4).integers(0, 6, 30)  # many ties
    indices = np.arange(100, 130)
    found, found_distances = nearest(indices, distances, k)
    order = np.argsort(distances, kind="stable")[:k]
    assert found.tolist() == indices[order].tolist() and found_distances.tolist() == distances[order].tolist()


def test_the_default_probes_double_every_two_prefix_bits_past_the_base(monkeypatch):
    from hashhop.memory import store as store_module

    store, _ = random_store(20000)
    assert store.default_probes == store_module.BASE_PROBES  # 13 bits: below the base
    monkeypatch.setattr(store_module, "BASE_PREFIX_BITS", store.prefix_bits - 4)
    assert store.default_probes == 4 * store_module.BASE_PROBES


@pytest.mark.parametrize("n_masks", [1, 5, 64, 1024])
def test_a_query_probes_the_cheapest_flips_of_its_prefix(n_masks):
    """Distinct masks, the empty flip among them, and none left out that costs less among the
    flips of the bit_length(n_masks) least confident bits."""
    from hashhop.memory.probe import flip_masks

    confidence = np.random.default_rng(7).random(10).astype(np.float32)
    masks = flip_masks(confidence, n_masks)
    bits = (masks[:, None] >> np.arange(9, -1, -1, dtype=np.uint64)) & np.uint64(1)
    costs = bits.astype(np.float64) @ confidence
    least = np.sort(confidence)[: min(10, n_masks.bit_length())].astype(np.float64)
    every_cost = np.sort(((np.arange(1 << len(least))[:, None] >> np.arange(len(least))) & 1) @ least)
    assert 0 in masks and len(set(masks.tolist())) == len(masks) == n_masks
    assert np.allclose(np.sort(costs), every_cost[:n_masks], atol=1e-6)


def test_the_index_prefix_takes_bits_that_split_the_entries_evenly():
    rng = np.random.default_rng(3)
    copies = np.repeat(rng.random((4000, 1)) < 0.5, 8, axis=1)
    signs = np.concatenate([copies, rng.random((4000, 8)) < 0.5], axis=1)
    order = balanced_bit_order(signs, prefix_bits=8)
    assert sorted(order) == list(range(16))
    assert np.sum(order[:8] < 8) <= 1  # one copy of the repeated bit at most


def test_token_texts_keep_six_bits_a_character_and_read_back_exactly():
    from hashhop.memory.texts import SYMBOLS, pack_texts, unpack_texts

    rng = np.random.default_rng(8)
    letters = list("abcXYZ019")
    identifiers = ["".join(rng.choice(letters, length)) for length in range(1, 31)]
    texts = identifiers + list(SYMBOLS) + ["COMPLETION", "Hops", "42"]
    packed = pack_texts(texts)
    assert packed.shape == (len(texts), 24) and pack_texts(["a" * 16]).shape == (1, 12)
    assert unpack_texts(packed) == texts
    assert unpack_texts(np.pad(packed, ((0, 0), (0, 6)))) == texts  # blocks of other widths join
    for bad in (["a b"], ["=x"], [""], ["\u00e9"]):
        with pytest.raises(HashHopError):
            pack_texts(bad)


def test_pieces_of_a_stream_cut_anywhere_equal_pieces_of_the_whole_text():
    text = prompt_text(make_sample(eval_specs(3000, 2, False, 1, 5)[0])) + "\n\nCOMPLETION:\nHops=2\n"
    rng = random.Random(0)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 200)))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        streamed = [piece for pieces in TOKENIZER.stream_pieces(chunks) for piece in pieces]
        assert streamed == TOKENIZER.pieces(text)


@pytest.mark.parametrize("order_sample", [None, 100])
def test_chunked_ingest_equals_one_shot(order_sample, monkeypatch):
    """Also when the index's bit order is chosen mid-stream (a sample smaller than the context)."""
    if order_sample is not None:
        monkeypatch.setattr("hashhop.memory.ingest.ORDER_SAMPLE", order_sample)
    model = untrained()
    sample = make_sample(eval_specs(4000, 1, False, 1, 3)[0])
    whole = ingest(model, TOKENIZER, [prompt_text(sample)], progress=False)
    text = prompt_text(sample)
    pieces = [text[i : i + 37] for i in range(0, len(text), 37)]
    chunked = ingest(model, TOKENIZER, pieces, progress=False)
    assert len(whole.store) > 0 and whole.n_tokens == chunked.n_tokens
    assert np.array_equal(whole.store.codes, chunked.store.codes)
    assert np.array_equal(whole.store.tokens, chunked.store.tokens)
    assert np.array_equal(whole.store.bias, chunked.store.bias)
    assert np.array_equal(whole.store.bit_order, chunked.store.bit_order)
    assert whole.recent == chunked.recent


def test_a_memory_keeps_the_first_kept_key_bits_of_longer_codes_in_its_bit_order():
    from hashhop.memory.model import entry_bias
    from hashhop.memory.store import KEPT_KEY_BITS, pack_signs

    model = untrained(code_bits=256)
    sample = make_sample(eval_specs(1500, 1, False, 1, 3)[0])
    memory = ingest(model, TOKENIZER, [prompt_text(sample)], progress=False)
    with torch.no_grad():
        key_logits, gate_logits = model.writer(embed_pieces(model, TOKENIZER, TOKENIZER.pieces(prompt_text(sample)))[0])
    kept = torch.isfinite(entry_bias(gate_logits)).numpy()
    codes = pack_signs(key_logits.numpy()[kept][:, memory.store.bit_order[:KEPT_KEY_BITS]] >= 0)
    assert memory.store.key_bits == KEPT_KEY_BITS == 192
    assert np.array_equal(memory.store.codes, codes[np.argsort(codes[:, 0], kind="stable")])
    assert MemoryDecoder(model, TOKENIZER, memory).continue_text(question(sample), 3).n_tokens >= 1


def test_decoding_reads_what_training_reads():
    """The first answer position's reads, teacher-forced (as in training) and through ingest,
    the index and the overlay (as in decoding), see the same entries with the same scores.
    The write gate is set so that about half the positions fall below the floor."""
    from hashhop.training_data import IGNORE_INDEX, collate, encode_example

    model = untrained(top_k=100_000)
    with torch.no_grad():
        model.writer.gate.bias.fill_(GATE_FLOOR)
        model.writer.gate.weight.mul_(20)
    sample = make_sample(eval_specs(1500, 2, False, 1, 11)[0])
    captured = []
    read = model.read
    model.read = lambda *args: captured.append(read(*args, pass_top=True)) or captured[-1]
    batch = collate(TOKENIZER, [encode_example(TOKENIZER, sample)])
    with torch.no_grad():
        model(batch.ids, batch.features, batch.n_identifiers, batch.labels != IGNORE_INDEX)
    pieces = TOKENIZER.pieces(context_text(sample))  # split where training's tokens split
    asked = len(TOKENIZER.pieces(question(sample)))
    memory = ingest(model, TOKENIZER, ["".join(pieces[:-asked])], progress=False)
    decoder = MemoryDecoder(model, TOKENIZER, memory, exact=True)
    step_read = decoder.numpy_step.read
    decoder.numpy_step.read = lambda *args: captured.append(step_read(*args)) or captured[-1]
    decoder.continue_text("".join(pieces[-asked:]), 1)
    kept = len(memory.store) / memory.n_tokens
    assert 0.2 < kept < 0.8, f"{kept:.0%} of positions kept: the gate floor is not exercised"
    assert np.allclose(captured[0][0].numpy(), captured[1], atol=1e-3)


@pytest.mark.parametrize("settings", [{}, {"positional": "none"}, {"n_layers": 2, "positional": "rope", "n_reads": 2}])
def test_the_numpy_decode_step_computes_what_the_torch_model_computes(settings):
    """Local decoder (a short window is zero padded, as in training), reads over the same
    entries, and the pointer head: numpy and torch agree."""
    from hashhop.memory.model import Found
    from hashhop.memory.numpy_step import NumpyStep

    model = untrained(seed=3, **settings)
    step = NumpyStep(model)
    generator = torch.Generator().manual_seed(0)
    window = torch.randn(1, 11, 32, generator=generator)
    agreement, bias, values = torch.rand(1, 9, generator=generator), -torch.rand(1, 9, generator=generator), torch.randn(1, 9, 32, generator=generator)
    candidates = torch.randn(1, 5, 32, generator=generator)
    with torch.no_grad():
        x, recent = model.local_state(window, torch.tensor([0]), torch.tensor([10]))
        hidden = model.read(x, recent, lambda query: Found(agreement, bias, values), pass_top=True)
        logits = model.head(hidden[:, None], model.embedding, candidates, None)[0, 0]
    numpy_x, numpy_recent = step.local(window[0].numpy())
    numpy_hidden = step.read(numpy_x, numpy_recent, lambda query: (agreement[0].numpy(), bias[0].numpy(), values[0].numpy()))
    assert np.allclose(numpy_x, x[0].numpy(), atol=1e-4) and np.allclose(numpy_recent, recent[0].numpy(), atol=1e-5)
    assert np.allclose(numpy_hidden, hidden[0].numpy(), atol=1e-4)
    assert np.allclose(step.logits(numpy_hidden, candidates[0].numpy()), logits.numpy(), atol=1e-4)
    texts = TOKENIZER.pieces("\n\nCOMPLETION:\nHops=2\n\nCoT=False\n\nabcDEF = 'xyz") + ["abcDEF", "QQ"]
    assert np.allclose(step.embed(TOKENIZER, texts), embed_pieces(model, TOKENIZER, texts)[0].numpy(), atol=1e-5)


def test_saved_memory_reloads_to_identical_answers(tmp_path):
    model = untrained()
    samples = [make_sample(spec) for spec in eval_specs(1500, 1, False, 4, 4)]
    for sample in samples:
        memory = ingest(model, TOKENIZER, (c.decode() for c in prompt_chunks(sample)), progress=False)
        save_memory(memory, tmp_path / "memory.npz")
        reloaded = load_memory(tmp_path / "memory.npz")
        before = MemoryDecoder(model, TOKENIZER, memory).continue_text(question(sample), 4)
        after = MemoryDecoder(model, TOKENIZER, reloaded).continue_text(question(sample), 4)
        assert before == after and reloaded.recent == memory.recent


def test_a_memory_is_refused_by_another_model_and_a_bad_file_is_a_project_error(tmp_path):
    memory = ingest(untrained(0), TOKENIZER, ["abc = def\nghi = 'jkl'"], progress=False)
    with pytest.raises(HashHopError, match="another model"):
        MemoryDecoder(untrained(1), TOKENIZER, memory)
    (tmp_path / "bad.npz").write_bytes(b"not a memory")
    with pytest.raises(HashHopError, match="cannot read memory"):
        load_memory(tmp_path / "bad.npz")


def test_an_untrained_model_answers_at_chance_through_the_decoding_path():
    samples = [make_sample(spec) for spec in eval_specs(1200, 1, False, 40, 6)]
    assert answered_right(untrained(), TOKENIZER, samples) <= 4  # about 1 in 60 identifiers by chance


def memory_checkpoint(tmp_path, *extra: str):
    from hashhop.train import train
    from hashhop.train_config import load_config

    settings = [f"out_dir='{tmp_path}'", "model.arch='memory'", "model.d_model=32", "model.n_layers=1",
                "model.n_heads=2", "model.conv_kernel=3", "model.code_bits=64", "model.window=16",
                "tokenizer={kind='identifier', feature_dim=32}", "task.chars=300", "batch_size=8"]
    train(load_config(None, settings + list(extra)), progress=False)
    return tmp_path


def test_ingest_and_ask_from_the_command_line(tmp_path):
    import subprocess
    import sys

    run = memory_checkpoint(tmp_path / "run", "steps=1", "checkpoint_every=1")
    sample = make_sample(eval_specs(2000, 1, False, 1, 7)[0])
    (tmp_path / "context.txt").write_text(prompt_text(sample))
    cli = [sys.executable, "-m", "hashhop"]
    made = subprocess.run([*cli, "ingest", "--model", str(run), str(tmp_path / "context.txt"), "-o", str(tmp_path / "m.npz")],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    asked = subprocess.run([*cli, "ask", "--model", str(run), "--memory", str(tmp_path / "m.npz"), question(sample)],
                           capture_output=True, text=True, check=False)
    assert asked.returncode == 0 and asked.stdout.strip(), asked.stderr
    missing = subprocess.run([*cli, "ask", "--model", str(run), "--memory", str(tmp_path / "none.npz"), "x"],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_the_harness_backend_ingests_a_haystack_asked_twice_once_with_the_same_answers(tmp_path, monkeypatch):
    import hashhop.backends.hashhop as backend_module

    run = memory_checkpoint(tmp_path, "steps=1", "checkpoint_every=1")
    spec = eval_specs(600, 2, False, 1, 8)[0]
    prompts = [context_text(make_sample(replace(spec, cot=cot))) for cot in (False, True)]
    alone = [backend_module.CheckpointBackend(model=run).complete([prompt], 6)[0].text for prompt in prompts]
    ingested = []
    monkeypatch.setattr(backend_module, "ingest", lambda *args, **kwargs: ingested.append(1) or ingest(*args, **kwargs))
    together = backend_module.CheckpointBackend(model=run).complete(prompts, 6)
    assert len(ingested) == 1 and [completion.text for completion in together] == alone


def test_the_harness_backend_answers_from_a_memory_checkpoint(tmp_path):
    from hashhop.backends.hashhop import CheckpointBackend

    run = memory_checkpoint(tmp_path, "steps=1", "checkpoint_every=1")
    backend = CheckpointBackend(model=run)
    sample = make_sample(eval_specs(600, 1, False, 1, 8)[0])
    [completion] = backend.complete([context_text(sample)], max_new_tokens=4)
    assert completion.prompt_tokens == len(TOKENIZER.pieces(context_text(sample)))
    assert 1 <= completion.completion_tokens <= 4


@pytest.mark.slow
def test_the_configured_two_stage_run_answers_held_out_questions_with_and_without_chain_of_thought(tmp_path):
    from hashhop.train import train
    from hashhop.train_config import load_config

    skip = load_config("configs/memory.toml", [f"out_dir='{tmp_path / 'skip'}'"])
    train(skip, progress=False)
    config = load_config("configs/memory_cot.toml", [f"out_dir='{tmp_path / 'cot'}'", f"init_from='{tmp_path / 'skip'}'"])
    model = train(config, progress=False).model.eval()
    for hops, cot in ((1, False), (2, False), (3, False), (2, True)):
        # on prompts 2.5x longer than training's, seeds never trained on
        samples = [make_sample(spec) for spec in eval_specs(3000, hops, cot, 24, 9)]
        right = answered_right(model, IdentifierTokenizer(), samples)
        assert right >= 22, f"{hops}-hop (CoT {cot}): {right}/24 right after both stages (chance is about 1/60)"
        # the keep loss closes what no read uses: one entry a line, whatever the hops
        entries = len(ingest(model, IdentifierTokenizer(), [prompt_text(samples[0])], progress=False).store)
        assert entries <= 1.1 * samples[0].n_lines, f"{hops}-hop: {entries} entries for {samples[0].n_lines} lines"


def test_the_keep_loss_is_cross_entropy_of_the_gate_against_what_reads_used():
    """entry_use is, per batch position, the most any read weighed it (times the read's use
    gate); positions after a row's context are never written and never used."""
    from hashhop.training_data import IGNORE_INDEX, collate, encode_example

    samples = [make_sample(spec) for spec in eval_specs(600, 2, False, 2, 3)]
    batch = collate(TOKENIZER, [encode_example(TOKENIZER, sample) for sample in samples])
    at = batch.labels != IGNORE_INDEX
    losses = {}
    for keep_cost in (0.0, 2.0):
        model = untrained(keep_cost=keep_cost, write_cost=0.0).train()
        with torch.no_grad():
            model(batch.ids, batch.features, batch.n_identifiers)  # every position decoded
            assert model.entry_use.shape == ((batch.ids.numel(),) if keep_cost else ())
            model(batch.ids, batch.features, batch.n_identifiers, at)
        losses[keep_cost] = model.auxiliary_loss
    use = model.entry_use.view(batch.ids.shape)
    gate_logits = model.writer(model.embedding(batch.ids, model.embedding.identifiers(batch.features)))[1]
    written = torch.arange(batch.ids.shape[1])[None] < (at.int().argmax(1) + 1)[:, None]
    assert ((use >= 0) & (use <= 1)).all() and use.max() > 0.1  # the reads looked somewhere
    assert (use[~written] == 0).all()
    expected = 2.0 * torch.nn.functional.binary_cross_entropy_with_logits(gate_logits[written], use[written])
    assert torch.allclose(losses[2.0] - losses[0.0], expected.detach(), atol=1e-5)
