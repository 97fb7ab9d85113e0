"""The instruction a model is given around a HashHop prompt, and its default wording.

A base model trained on HashHop completions sees only the pairs; an instruction-tuned model
needs the task said in words. The template is plain `str.format` text with named fields,
so a user can override it with a file; the scorer reads whatever comes back.
"""

from __future__ import annotations

import string
from pathlib import Path

from hashhop.errors import HashHopError
from hashhop.render import COMPLETION_HEADER, prompt_text, query_answers
from hashhop.task import Sample

DEFAULT_TEMPLATE = """\
Below is a list of assignments, one per line, in the form KEY = VALUE. A VALUE can be the \
KEY of another line; a quoted VALUE ends a chain.

{pairs}

Start from each query and follow the assignments for exactly {hops} hop(s). {task}

Queries: {queries}

Reply with one line per query, QUERY = 'ANSWER', under this header:
{answer_form}"""

COMPLETION_TEMPLATE = "{pairs}\n\n{answer_form}\n\n{first_query} = '"
"""For base models trained on Magic's format: the prompt, the completion header, and the
first query's answer line opened, for the model to finish (one query per prompt)."""

TEMPLATES = {"instruct": DEFAULT_TEMPLATE, "completion": COMPLETION_TEMPLATE}
ANSWER_OPENING = " = '"
"""A prompt ending in this leaves its last line, the open answer line, to the model."""

TASK_SKIP = "The ANSWER is only the value reached after the last hop."
TASK_COT = "The ANSWER is every value reached, hop by hop, separated by ' = '."
FIELDS = frozenset({"pairs", "task", "hops", "queries", "first_query", "answer_form"})
REQUIRED_FIELDS = frozenset({"pairs"})


def load_template(name_or_path: str | Path | None) -> str:
    """A built-in template by name (instruct, completion), or a user's file, checked for its fields."""
    if name_or_path is None:
        return DEFAULT_TEMPLATE
    if str(name_or_path) in TEMPLATES:
        return TEMPLATES[str(name_or_path)]
    path = Path(name_or_path)
    try:
        template = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise HashHopError(f"cannot read template {path}: {error.strerror}") from None
    used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if unknown := used - FIELDS:
        raise HashHopError(f"template {path} uses unknown field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")
    if missing := REQUIRED_FIELDS - used:
        raise HashHopError(f"template {path} must contain {{{'}, {'.join(sorted(missing))}}}")
    if not used & {"queries", "first_query"}:
        raise HashHopError(f"template {path} must name the queries: {{queries}} or {{first_query}}")
    return template


def instruction_prompt(sample: Sample, template: str = DEFAULT_TEMPLATE) -> str:
    """The full text the model reads: the pairs, the task, the queries, the answer form."""
    queries = [query for query, _ in query_answers(sample)]
    header = COMPLETION_HEADER.format(hops=sample.spec.hops, cot=sample.spec.cot)
    return template.format(
        pairs=prompt_text(sample),
        task=TASK_COT if sample.spec.cot else TASK_SKIP,
        hops=sample.spec.hops,
        queries=", ".join(queries),
        first_query=queries[0],
        answer_form=header.rstrip(),
    )


def reply_to_score(prompt: str, reply: str) -> str:
    """The text that answers: the reply, after the prompt's open answer line if it left one."""
    if prompt.endswith(ANSWER_OPENING):
        return prompt.rpartition("\n")[2] + reply
    return reply
