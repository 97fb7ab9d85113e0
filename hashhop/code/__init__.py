"""Code memory: index a Python tree and find its functions by name, typo, description or docstring.

Data path (DESIGN.md): symbols (parse, never import) -> index (one file, incremental) ->
channels (names, BM25, learned encoders) -> search (fusion) -> CLI, Python, MCP server.
"""
