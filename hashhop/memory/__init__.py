"""The long-term-memory model (model.py), its memory store and index (store.py), streaming
ingest (ingest.py) and decoding over a stored memory (decode.py)."""
