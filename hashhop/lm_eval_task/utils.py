"""HashHop in lm-evaluation-harness: documents generated here from a seed, graded by hashhop.

Run it like any lm-eval task; nothing is downloaded but the model itself:

    lm_eval --include_path hashhop/lm_eval_task --tasks hashhop \\
        --model hf --model_args pretrained=HuggingFaceTB/SmolLM2-135M-Instruct,max_length=8192 \\
        --apply_chat_template --metadata size=4000 n_samples=50

Tasks: `hashhop_1hop` and `hashhop_2hop` (answer with the last hash of the chain) and
`hashhop_2hop_cot` (write every hop), grouped as `hashhop`. Each reports `exact_match` and
`hop_credit` (the share of a chain's hops answered right), means over the documents.

Settings, as `--metadata key=value` (defaults in `_hashhop_template_yaml`): `size` (tokens of
the hash list), `queries`, `hash_len`, `n_samples`, `seed` (of the whole set; each document
gets its own), `max_length`, `max_gen_toks`. Hops and chain of thought define a task, so
they sit in its YAML's `dataset_kwargs`; add a task by copying one of those files.

Never truncated: prompts are sized in the evaluated model's own tokens (its `tokenizer`, or
`pretrained` and `gguf_file`, which `--model_args` hands to tasks), and lm-eval would cut a
prompt longer than the model's window from the left with only a warning, so building the
documents fails instead when a prompt would not fit `max_length`. Give `max_length` in
`--model_args`: the model and this task then read the same value. When changing
`--gen_kwargs max_gen_toks`, pass the same `max_gen_toks` in `--metadata`.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import datasets
from transformers import AutoTokenizer

from hashhop import HashHopError, TaskSpec, make_sample
from hashhop.fit import TokenCounter
from hashhop.prompting import instruction_prompt
from hashhop.render import completion_text
from hashhop.score import Summary, score_sample
from hashhop.task import sample_seed

TEMPLATE_MARGIN_TOKENS = 64
"""Room kept for what lm-eval wraps around a prompt: a BOS token, a chat template's turns."""


def load_docs(
    *,
    hops: int,
    cot: bool,
    size: int,
    queries: int,
    hash_len: int,
    n_samples: int,
    seed: int,
    max_length: int,
    max_gen_toks: int,
    tokenizer: str | None = None,
    pretrained: str | None = None,
    gguf_file: str | None = None,
    **_other_settings: object,
) -> dict[str, datasets.Dataset]:
    """lm-eval's `custom_dataset` hook: the task's test split, built locally.

    lm-eval calls it with the YAML's `dataset_kwargs` and `metadata`, merged with
    `--model_args` and `--metadata`; the keys it does not use (the model's other
    settings, the task version) are ignored.
    """
    name = tokenizer or pretrained
    if name is None:
        raise HashHopError(
            "HashHop sizes prompts in the evaluated model's tokens: give tokenizer=NAME_OR_PATH "
            "in --model_args or --metadata"
        )
    gguf_file = None if tokenizer else gguf_file
    spec = TaskSpec(
        size=size,
        hops=hops,
        cot=cot,
        queries=queries,
        hash_len=hash_len,
        seed=seed,
        tokenizer=f"{name}/{gguf_file}" if gguf_file else name,
    )
    docs = build_docs(
        spec,
        n_samples=n_samples,
        max_length=max_length,
        max_gen_toks=max_gen_toks,
        count_tokens=_token_counter(name, gguf_file),
    )
    return {"test": datasets.Dataset.from_list(docs)}


@functools.cache
def _token_counter(name: str, gguf_file: str | None) -> TokenCounter:
    """The model's tokenizer, loaded once per run: every HashHop task of a run shares it."""
    gguf = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(name, **gguf)
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)


def build_docs(
    spec: TaskSpec,
    *,
    n_samples: int,
    max_length: int,
    max_gen_toks: int,
    count_tokens: TokenCounter,
) -> list[dict[str, object]]:
    """`n_samples` documents of `spec`, sample i seeded by `sample_seed(spec.seed, i)`.

    Raises HashHopError when a prompt, plus `max_gen_toks` and the template margin, would
    exceed `max_length`: lm-eval would silently keep only its end.
    """
    prompt_budget = max_length - max_gen_toks - TEMPLATE_MARGIN_TOKENS
    docs = []
    for index in range(n_samples):
        sample_spec = dataclasses.replace(spec, seed=sample_seed(spec.seed, index))
        sample = make_sample(sample_spec, count_tokens)
        prompt = instruction_prompt(sample)
        prompt_tokens = count_tokens(prompt)
        if prompt_tokens > prompt_budget:
            raise HashHopError(
                f"HashHop prompt {index} is {prompt_tokens} tokens, but max_length={max_length} "
                f"leaves {prompt_budget} after max_gen_toks={max_gen_toks} and "
                f"{TEMPLATE_MARGIN_TOKENS} for the chat template: lower size (now {spec.size}) "
                "or raise max_length"
            )
        docs.append(
            {
                "prompt": prompt,
                "completion": completion_text(sample),
                "prompt_tokens": prompt_tokens,
                "spec": json.dumps(sample_spec.to_dict()),
            }
        )
    return docs


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Grade the reply with hashhop's scorer, each metric a mean over the document's queries.

    The instruction prompt holds every `KEY = VALUE` line verbatim, which is all the scorer
    reads from a prompt (to diagnose wrong answers).
    """
    summary = Summary.of(score_sample(doc["prompt"], doc["completion"], results[0]))
    return {"exact_match": summary.accuracy, "hop_credit": summary.mean_hop_credit}
