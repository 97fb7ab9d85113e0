"""HashHop: a fast, exact, reproducible long-context benchmark, scorer and harness."""

from hashhop.compat import MultiHopEval, MultiHopSample
from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.render import completion_text, prompt_text, targets
from hashhop.task import Sample, TaskSpec

__version__ = "0.1.0"

__all__ = [
    "HashHopError",
    "MultiHopEval",
    "MultiHopSample",
    "Sample",
    "TaskSpec",
    "__version__",
    "completion_text",
    "make_sample",
    "prompt_text",
    "targets",
]
