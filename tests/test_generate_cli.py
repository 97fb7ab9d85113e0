"""`hashhop generate`: files appear whole or not at all; bad input is one line and exit 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from hashhop import TaskSpec
from hashhop.cli import main

HASHHOP = [sys.executable, "-m", "hashhop"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HASHHOP, *args], capture_output=True, text=True, check=False)


def test_generate_writes_one_record_per_sample_with_its_spec(tmp_path):
    out = tmp_path / "data.jsonl"
    result = run("generate", "--tokens", "500", "--hops", "2", "--cot", "--queries", "3",
                 "--samples", "4", "--seed", "5", "-o", str(out))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4
    specs = [TaskSpec(**record["spec"]) for record in records]
    assert all(spec.hops == 2 and spec.cot and spec.queries == 3 for spec in specs)
    assert len({spec.seed for spec in specs}) == 4
    assert all(set(record) == {"prompt", "completion", "targets", "spec"} for record in records)


def test_prompt_only_writes_the_raw_prompt(tmp_path):
    out = tmp_path / "prompt.txt"
    assert run("generate", "--chars", "2000", "--prompt-only", "-o", str(out)).returncode == 0
    text = out.read_text()
    assert len(text) <= 2000 and text.count("\n") + 1 == len(text.splitlines())
    assert "COMPLETION" not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tokens", "100", "--hops", "0"], "hops must be at least 1"),
        (["--tokens", "1000", "--queries", "500"], "500 queries asked"),
        (["--tokens", "10", "--hops", "3"], "too small for one chain"),
        (["--tokens", "100", "--alphabet", "ab=c"], "alphabet has characters"),
        (["--chars", "50000", "--hash-len", "2", "--alphabet", "ab"], "distinct hashes"),
        (["--tokens", "100", "--chars", "100"], "exactly one of --tokens or --chars"),
        (["--tokens", "100", "--samples", "2", "--prompt-only"], "single raw prompt"),
    ],
)
def test_bad_parameters_give_one_line_exit_2_and_no_file(tmp_path, args, message):
    out = tmp_path / "out.jsonl"
    result = run("generate", *args, "-o", str(out))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--bogus"], "No such option: --bogus"),
        (["generate", "--tokens", "100"], "Missing option '-o' / '--output'"),
        (["generate", "--tokens", "many", "-o", "x"], "Invalid value for '--tokens'"),
        (["generat"], "No such command 'generat'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2_like_every_other_error(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("hashhop: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_still_prints_and_exits_0():
    result = run("generate", "--help")
    assert result.returncode == 0 and "--output" in result.stdout


def test_a_missing_output_directory_is_a_clear_error(tmp_path):
    result = run("generate", "--tokens", "100", "-o", str(tmp_path / "nope" / "x.jsonl"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, capsys):
    out = tmp_path / "data.jsonl"
    out.write_text("precious\n")

    def failing_chunks(sample):
        yield b'{"prompt": "'
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("hashhop.dataset.record_chunks", failing_chunks)
    monkeypatch.setattr(sys, "argv", ["hashhop", "generate", "--tokens", "100", "-o", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert [path.name for path in tmp_path.iterdir()] == ["data.jsonl"]


# Runs `hashhop generate ARGS...` in a process that receives signal SIGNAL (argv[1]) from the
# kernel right after the prompt's second chunk is written: mid-write, deterministically. The
# signal starts as Python sets it up under a terminal (SIGINT raising KeyboardInterrupt, the
# others at their default): under `nohup`, or as a script's background job, SIGHUP or SIGINT
# arrive ignored, and the CLI rightly leaves an ignored signal ignored (test_interrupts.py).
SIGNALLED_MID_WRITE = """
import os, signal, sys
import hashhop.dataset
from hashhop.cli import main

signal_number = int(sys.argv[1])
signal.signal(signal_number, signal.default_int_handler if signal_number == signal.SIGINT else signal.SIG_DFL)
real_chunks = hashhop.dataset.prompt_chunks

def chunks_then_signal(sample):
    for index, chunk in enumerate(real_chunks(sample)):
        yield chunk
        if index == 1:
            os.kill(os.getpid(), signal_number)

hashhop.dataset.prompt_chunks = chunks_then_signal
sys.argv = ["hashhop", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_termination_signal_mid_write_leaves_no_file_and_exits_128_plus_signal(tmp_path, signal_number):
    out = tmp_path / "x.txt"
    command = [sys.executable, "-c", SIGNALLED_MID_WRITE, str(int(signal_number)),
               "generate", "--chars", "5000000", "--prompt-only", "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 128 + signal_number, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_streaming_a_large_sample_keeps_memory_bounded(tmp_path):
    """10M tokens (30 MB of prompt, 3.2M hashes) written with a peak far below the output size."""
    out = tmp_path / "big.jsonl"
    # VmHWM is this process's own peak; ru_maxrss would inherit the forking parent's.
    code = (
        "import re, sys\n"
        "from hashhop.cli import main\n"
        f"sys.argv = ['hashhop', 'generate', '--tokens', '10000000', '-o', {str(out)!r}]\n"
        "try:\n    main()\n"
        "finally:\n    print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    peak_mb = int(result.stdout.split()[-1]) / 1024
    size_mb = out.stat().st_size / 1e6
    assert size_mb > 55  # prompt plus targets
    assert peak_mb < 150, f"peak {peak_mb:.0f} MB for a {size_mb:.0f} MB file"
