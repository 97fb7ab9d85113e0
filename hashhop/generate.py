"""`from hashhop.generate import MultiHopEval`: the import line of Magic's reference package.

Code written for Magic's generator imports `MultiHopEval` (and `MultiHopSample`) from this
module path; it gets ours (hashhop.compat) unchanged. numpy only: no torch, no model code.
"""

from hashhop.compat import MultiHopEval, MultiHopSample

__all__ = ["MultiHopEval", "MultiHopSample"]
