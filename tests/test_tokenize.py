"""The three tokenizers: exact round trips, one token per hash, fixed random features."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hashhop import HashHopError, TaskSpec, completion_text, make_sample, prompt_text
from hashhop.backends.bundled import resolve_model
from hashhop.tokenize import (
    RESERVED_WORDS,
    TOKENIZER_KINDS,
    make_tokenizer,
    random_features,
    tokenizer_from_spec,
)

HASH = re.compile(r"[A-Za-z0-9]{16}")


@pytest.fixture(scope="module")
def sample_text() -> str:
    sample = make_sample(TaskSpec(size=2000, unit="chars", hops=2, cot=True, queries=2, seed=1))
    return prompt_text(sample) + "\n\n" + completion_text(sample)


@pytest.fixture(scope="module")
def bpe():
    """SmolLM2's tokenizer, loaded once per module (reading the GGUF file takes seconds)."""
    pytest.importorskip("transformers")
    try:
        resolve_model("smollm2-135m")
    except HashHopError as error:
        pytest.skip(str(error))
    return make_tokenizer("bpe")


@pytest.fixture(params=TOKENIZER_KINDS)
def any_tokenizer(request):
    return (
        request.getfixturevalue("bpe") if request.param == "bpe" else make_tokenizer(request.param)
    )


@pytest.fixture
def identifier():
    return make_tokenizer("identifier")


def test_every_tokenizer_round_trips_a_hashhop_sample(any_tokenizer, sample_text):
    encoded = any_tokenizer.encode(sample_text)
    assert any_tokenizer.decode(encoded.ids, encoded.identifiers) == sample_text


def test_count_is_the_number_of_encoded_ids(any_tokenizer, sample_text):
    for text in (sample_text, sample_text + "\n\nCOMPLETION:\nHops=2\nabc = '", ""):
        assert any_tokenizer.count(text) == len(any_tokenizer.encode(text).ids)


def test_fixed_ids_lie_below_n_fixed_and_identifier_ids_index_the_list(any_tokenizer, sample_text):
    encoded = any_tokenizer.encode(sample_text)
    assert 0 <= min(encoded.ids)
    assert max(encoded.ids) < any_tokenizer.n_fixed + len(encoded.identifiers)


def test_features_have_feature_dim_columns(any_tokenizer):
    features = any_tokenizer.features(["abc", "xyz"])
    assert features.shape == (2, any_tokenizer.feature_dim)
    assert features.dtype == np.float32


def test_spec_rebuilds_the_same_tokenizer(any_tokenizer, sample_text):
    rebuilt = tokenizer_from_spec(json.loads(json.dumps(any_tokenizer.spec())))
    assert rebuilt.spec() == any_tokenizer.spec()
    assert rebuilt.n_fixed == any_tokenizer.n_fixed
    assert rebuilt.encode(sample_text) == any_tokenizer.encode(sample_text)


def test_decode_rejects_ids_outside_the_vocabulary(any_tokenizer):
    with pytest.raises(HashHopError, match="token ids"):
        any_tokenizer.decode([any_tokenizer.n_fixed], [])
    with pytest.raises(HashHopError, match="token ids"):
        any_tokenizer.decode([-1], [])


@pytest.mark.parametrize("kind", ["char", "identifier"])
def test_text_outside_printable_ascii_is_an_error(kind):
    tokenizer = make_tokenizer(kind)
    for text in ("abc\tdef", "abc = é"):
        with pytest.raises(HashHopError, match="printable ASCII"):
            tokenizer.encode(text)


def test_char_is_one_token_per_character(sample_text):
    tokenizer = make_tokenizer("char")
    encoded = tokenizer.encode(sample_text)
    assert len(encoded.ids) == len(sample_text)
    assert encoded.identifiers == []
    assert tokenizer.feature_dim == 0


def test_identifier_each_hash_is_exactly_one_token(identifier, sample_text):
    encoded = identifier.encode(sample_text)
    identifier_tokens = [token for token in encoded.ids if token >= identifier.n_fixed]
    assert len(identifier_tokens) == len(HASH.findall(sample_text))
    assert encoded.identifiers == list(dict.fromkeys(HASH.findall(sample_text)))


def test_identifier_same_hash_gets_the_same_id_everywhere(identifier, sample_text):
    encoded = identifier.encode(sample_text)
    ids_of_hash: dict[str, set[int]] = {}
    for token in encoded.ids:
        if token >= identifier.n_fixed:
            ids_of_hash.setdefault(encoded.identifiers[token - identifier.n_fixed], set()).add(
                token
            )
    assert all(len(ids) == 1 for ids in ids_of_hash.values())
    assert any(sample_text.count(name) > 1 for name in ids_of_hash)


def test_identifier_encode_continues_an_existing_identifier_list(identifier, sample_text):
    split = sample_text.index("COMPLETION")
    whole = identifier.encode(sample_text)
    prompt = identifier.encode(sample_text[:split])
    completion = identifier.encode(sample_text[split:], identifiers=prompt.identifiers)
    assert prompt.ids + completion.ids == whole.ids
    assert completion.identifiers == whole.identifiers
    assert completion.identifiers[: len(prompt.identifiers)] == prompt.identifiers


def test_identifier_reserved_words_have_fixed_ids(identifier):
    header = "COMPLETION:\nHops=2\n\nCoT=False\n\n"
    encoded = identifier.encode(header)
    assert encoded.identifiers == []
    assert all(token < identifier.n_fixed for token in encoded.ids)
    assert make_tokenizer("identifier", feature_dim=8).encode(header) == encoded
    words = identifier.encode(" ".join(RESERVED_WORDS)).ids[::2]
    assert len(set(words)) == len(RESERVED_WORDS)


def test_identifier_pair_line_is_four_tokens(identifier):
    for line in (
        "QscuygVgHzokzrzx = zexqhErgTvZVcoPx\n",
        "qKDbJwydGICAjXjs = 'WVFIhfZirWXZvtxD'\n",
    ):
        encoded = identifier.encode(line)
        assert len(encoded.ids) == 4
        assert len(encoded.identifiers) == 2


def test_identifier_prompt_is_four_tokens_per_line(identifier, sample_text):
    prompt = sample_text[: sample_text.index("\n\nCOMPLETION")]
    n_lines = prompt.count("\n") + 1
    assert len(identifier.encode(prompt).ids) == 4 * n_lines - 1  # the last line has no newline


def test_identifier_numbers_from_100_are_identifiers(identifier):
    encoded = identifier.encode("Hops=99 Hops=100")
    assert encoded.identifiers == ["100"]


def test_features_have_about_unit_norm(identifier, sample_text):
    norms = np.linalg.norm(identifier.features(identifier.encode(sample_text).identifiers), axis=1)
    assert np.all((norms > 0.8) & (norms < 1.2))
    assert abs(norms.mean() - 1) < 0.02


def test_features_are_pinned_forever():
    features = random_features(["QscuygVgHzokzrzx", "COMPLETION"], 256)
    pinned = [[0.055898365, -0.046167914, 0.01354102], [0.015741302, 0.032075237, 0.0252884]]
    # rtol allows the last-bit differences of vectorized log, sin and cos between CPUs.
    np.testing.assert_allclose(features[:, :3], pinned, rtol=1e-5)


def test_features_of_different_strings_are_nearly_orthogonal(identifier, sample_text):
    near_twins = [f"QscuygVgHzokz{n:03d}" for n in range(100)]
    for names in (identifier.encode(sample_text).identifiers, near_twins):
        features = identifier.features(names)
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        cosines = np.abs(unit @ unit.T)[~np.eye(len(names), dtype=bool)]
        assert cosines.mean() < 0.06  # 1/sqrt(256) * sqrt(2/pi) = 0.05 for random directions
        assert cosines.max() < 0.3


def test_features_depend_only_on_the_string(identifier):
    alone = identifier.features(["zexqhErgTvZVcoPx"])[0]
    in_a_list = identifier.features(["QscuygVgHzokzrzx", "zexqhErgTvZVcoPx"])[1]
    from_a_rebuilt_tokenizer = tokenizer_from_spec(identifier.spec()).features(
        ["zexqhErgTvZVcoPx"]
    )[0]
    np.testing.assert_array_equal(alone, in_a_list)
    np.testing.assert_array_equal(alone, from_a_rebuilt_tokenizer)


def test_features_of_no_identifiers_are_empty(identifier):
    assert identifier.features([]).shape == (0, identifier.feature_dim)


def test_bpe_splits_a_hash_into_several_tokens(bpe):
    assert len(bpe.encode("QscuygVgHzokzrzx").ids) >= 4
    assert bpe.feature_dim == 0


def test_bpe_adds_no_special_tokens(bpe):
    assert bpe.decode(bpe.encode("Hops=2").ids, []) == "Hops=2"
    assert len(bpe.encode("=").ids) == 1


def test_unknown_kind_is_an_error_listing_the_kinds():
    with pytest.raises(HashHopError, match="char, bpe, identifier"):
        make_tokenizer("wordpiece")


def test_unknown_option_is_an_error():
    with pytest.raises(HashHopError, match="identifier tokenizer options"):
        make_tokenizer("identifier", feature_dims=64)


def test_nonpositive_feature_dim_is_an_error():
    with pytest.raises(HashHopError, match="feature_dim"):
        make_tokenizer("identifier", feature_dim=0)


def test_spec_of_another_version_is_an_error():
    with pytest.raises(HashHopError, match="version"):
        tokenizer_from_spec({"kind": "char", "version": 99})
