"""HashHop as an lm-evaluation-harness task: point `lm_eval --include_path` at this folder.

The YAML files here are the tasks; `utils.py` builds their documents and grades replies.
"""
