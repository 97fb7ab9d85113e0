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

TASK_SKIP = "The ANSWER is only the value reached after the last hop."
TASK_COT = "The ANSWER is every value reached, hop by hop, separated by ' = '."
FIELDS = frozenset({"pairs", "task", "hops", "queries", "answer_form"})
REQUIRED_FIELDS = frozenset({"pairs", "queries"})


def load_template(path: Path | None) -> str:
    """The default template, or a user's file checked for the fields it must and may use."""
    if path is None:
        return DEFAULT_TEMPLATE
    try:
        template = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise HashHopError(f"cannot read template {path}: {error.strerror}") from None
    used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if unknown := used - FIELDS:
        raise HashHopError(f"template {path} uses unknown field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")
    if missing := REQUIRED_FIELDS - used:
        raise HashHopError(f"template {path} must contain {{{'}, {'.join(sorted(missing))}}}")
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
        answer_form=header.rstrip(),
    )
