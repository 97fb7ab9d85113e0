"""The answer cache: what it returns, what it keys on, and what survives a kill."""

import signal
import sqlite3
import subprocess
import sys

import pytest

from hashhop.backends.base import Completion
from hashhop.cache import CACHE_FILE, AnswerCache
from hashhop.errors import HashHopError

SETTINGS = {"backend": "openai", "model": "m", "temperature": 0.0}
ANSWER = Completion(text="H1 = 'H3'", prompt_tokens=120, completion_tokens=7, latency_s=0.25)


def test_unanswered_prompts_are_none(tmp_path):
    with AnswerCache(tmp_path) as cache:
        assert cache.get_many(SETTINGS, ["a", "b"], 16) == [None, None]


def test_put_answers_come_back_in_prompt_order(tmp_path):
    other = Completion(text="x", prompt_tokens=None, completion_tokens=None, latency_s=1.5)
    with AnswerCache(tmp_path) as cache:
        cache.put(SETTINGS, ["a", "b"], 16, [ANSWER, other])
        assert cache.get_many(SETTINGS, ["b", "c", "a"], 16) == [other, None, ANSWER]


def test_answers_survive_reopening(tmp_path):
    with AnswerCache(tmp_path) as cache:
        cache.put(SETTINGS, ["a"], 16, [ANSWER])
    with AnswerCache(tmp_path) as cache:
        assert cache.get_many(SETTINGS, ["a"], 16) == [ANSWER]
    assert (tmp_path / CACHE_FILE).is_file()


def test_different_settings_or_budget_miss(tmp_path):
    with AnswerCache(tmp_path) as cache:
        cache.put(SETTINGS, ["a"], 16, [ANSWER])
        assert cache.get_many({**SETTINGS, "temperature": 0.5}, ["a"], 16) == [None]
        assert cache.get_many(SETTINGS, ["a"], 32) == [None]


def test_settings_key_ignores_key_order(tmp_path):
    reordered = dict(reversed(list(SETTINGS.items())))
    with AnswerCache(tmp_path) as cache:
        cache.put(SETTINGS, ["a"], 16, [ANSWER])
        assert cache.get_many(reordered, ["a"], 16) == [ANSWER]


def test_putting_again_replaces_the_answer(tmp_path):
    newer = Completion(text="H1 = 'H4'", prompt_tokens=120, completion_tokens=7, latency_s=0.5)
    with AnswerCache(tmp_path) as cache:
        cache.put(SETTINGS, ["a"], 16, [ANSWER])
        cache.put(SETTINGS, ["a"], 16, [newer])
        assert cache.get_many(SETTINGS, ["a"], 16) == [newer]


def test_put_needs_one_completion_per_prompt(tmp_path):
    with AnswerCache(tmp_path) as cache, pytest.raises(ValueError):
        cache.put(SETTINGS, ["a", "b"], 16, [ANSWER])


def test_a_file_that_is_not_a_cache_is_refused(tmp_path):
    (tmp_path / CACHE_FILE).write_text("not a database " * 100)
    with pytest.raises(HashHopError, match="not a usable answer cache"):
        AnswerCache(tmp_path)


def test_a_cache_of_another_format_is_refused(tmp_path):
    AnswerCache(tmp_path).close()
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HashHopError, match="format 99"):
        AnswerCache(tmp_path)


WRITER = """
import sys
from hashhop.backends.base import Completion
from hashhop.cache import AnswerCache

cache = AnswerCache(sys.argv[1])
for i in range(100_000):
    cache.put({"model": "m"}, [f"prompt {i}"], 8, [Completion(f"answer {i}", 1, 1, 0.0)])
    print(i, flush=True)
"""


def test_every_committed_answer_survives_a_kill(tmp_path):
    command = [sys.executable, "-c", WRITER, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as writer:
        for line in writer.stdout:
            if int(line) == 50:
                break
        writer.send_signal(signal.SIGKILL)
    with AnswerCache(tmp_path) as cache:
        found = cache.get_many({"model": "m"}, [f"prompt {i}" for i in range(51)], 8)
    assert [completion.text for completion in found] == [f"answer {i}" for i in range(51)]
