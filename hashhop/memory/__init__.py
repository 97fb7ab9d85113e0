"""The long-term-memory model (model.py), its memory store and index (store.py), streaming
ingest (ingest.py), saved memories (persist.py) and decoding over a memory (decode.py)."""
