"""The OpenAI-compatible backend against a real llama.cpp server running SmolLM2 on loopback.

A fault-injecting proxy stands between client and server to show that rate limits, server
errors and stalls are retried into the very answers an undisturbed run gets, and that
refusals stop the run with the server's reason and never the API key.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from llama_server import llama_server

from hashhop.backends import make_backend
from hashhop.backends.bundled import resolve_model
from hashhop.errors import HashHopError

httpx = pytest.importorskip("httpx")
pytest.importorskip("llama_cpp.server")
SMOLLM2 = Path(resolve_model("smollm2-135m"))

MODEL = "smollm2"
KEY_ENV = "HASHHOP_TEST_API_KEY"
CANARY = "sk-canary-4f9b2e7d"
CLIENT_TIMEOUT_S = 5.0
MAX_NEW_TOKENS = 16
PROMPTS = [
    "xKqv = Tzmb\nTzmb = 'Rwpa'\nWhat does xKqv lead to?",
    "What is 2+2?",
]
HANG = "hang"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """A llama.cpp server on a free loopback port for the whole module, stopped after."""
    with llama_server(SMOLLM2, MODEL) as server:
        yield server.url


class FaultProxy:
    """A loopback proxy that answers the next requests with injected faults, then forwards.

    `faults` is consumed one per request: an HTTP status (its body echoes the caller's
    Authorization header, as careless servers do) or HANG (no answer until closed).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[int | str] = []
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        serve.daemon = True
        serve.start()

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                authorization = self.headers.get("Authorization")
                with proxy._lock:
                    proxy.authorizations.append(authorization)
                    fault = proxy.faults.pop(0) if proxy.faults else None
                if fault == HANG:
                    proxy._closed.wait()
                elif fault is not None:
                    message = {"error": {"message": f"injected {fault} for {authorization}"}}
                    self._reply(fault, json.dumps(message).encode())
                else:
                    upstream = httpx.post(
                        proxy.upstream + self.path,
                        content=body,
                        headers={"Content-Type": "application/json"},
                        timeout=60,
                    )
                    self._reply(upstream.status_code, upstream.content)

            def _reply(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def proxy(server_url: str) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(server_url.removesuffix("/v1"))
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture(scope="module")
def undisturbed_answers(server_url: str) -> list[str]:
    backend = make_backend("openai", base_url=server_url, model=MODEL)
    return [completion.text for completion in backend.complete(PROMPTS, MAX_NEW_TOKENS)]


def proxied_backend(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, **settings: object):
    """A backend that talks through `proxy`, with the canary key and near-instant backoff."""
    monkeypatch.setenv(KEY_ENV, CANARY)
    options = {"timeout_s": CLIENT_TIMEOUT_S, "backoff_s": 0.01, "concurrency": 2} | settings
    return make_backend(
        "openai", base_url=f"{proxy.url}/v1", model=MODEL, api_key_env=KEY_ENV, **options
    )


@pytest.mark.slow
def test_chat_answers_are_greedy_and_counted(server_url, undisturbed_answers):
    backend = make_backend("openai", base_url=server_url, model=MODEL, concurrency=2)
    completions = backend.complete(PROMPTS, MAX_NEW_TOKENS)
    assert [completion.text for completion in completions] == undisturbed_answers
    assert all(completion.text for completion in completions)
    for completion in completions:
        assert completion.prompt_tokens > 0
        assert 0 < completion.completion_tokens <= MAX_NEW_TOKENS
        assert completion.latency_s > 0


@pytest.mark.slow
def test_completions_endpoint_continues_the_prompt(server_url):
    backend = make_backend("openai", base_url=server_url, model=MODEL, endpoint="completions")
    [completion] = backend.complete(["The capital of France is"], MAX_NEW_TOKENS)
    assert "Paris" in completion.text


@pytest.mark.slow
def test_count_tokens_matches_what_the_server_bills(server_url):
    backend = make_backend("openai", base_url=server_url, model=MODEL, endpoint="completions")
    [completion] = backend.complete([PROMPTS[0]], 1)
    assert backend.count_tokens(PROMPTS[0]) == completion.prompt_tokens


@pytest.mark.slow
def test_count_tokens_is_none_when_the_server_cannot_tokenize(proxy, monkeypatch):
    backend = proxied_backend(proxy, monkeypatch)
    proxy.faults = [404, 404]
    assert backend.count_tokens("abc") is None
    assert backend.count_tokens("abc") is None
    assert len(proxy.authorizations) == 2


@pytest.mark.slow
def test_rate_limits_errors_and_stalls_are_retried_to_the_same_answers(
    proxy, monkeypatch, undisturbed_answers
):
    backend = proxied_backend(proxy, monkeypatch)
    proxy.faults = [429, 500, HANG]
    completions = backend.complete(PROMPTS, MAX_NEW_TOKENS)
    assert [completion.text for completion in completions] == undisturbed_answers
    assert proxy.faults == []
    assert len(proxy.authorizations) == 3 + len(PROMPTS)


@pytest.mark.slow
def test_client_error_stops_with_status_and_reason_but_not_the_key(proxy, monkeypatch):
    backend = proxied_backend(proxy, monkeypatch)
    proxy.faults = [400]
    with pytest.raises(HashHopError, match="HTTP 400: injected 400") as error:
        backend.complete(PROMPTS[:1], MAX_NEW_TOKENS)
    assert proxy.authorizations == [f"Bearer {CANARY}"]
    assert CANARY not in str(error.value)
    assert CANARY not in json.dumps(backend.settings())


@pytest.mark.slow
def test_retries_give_up_after_the_configured_attempts(proxy, monkeypatch):
    backend = proxied_backend(proxy, monkeypatch, max_retries=2)
    proxy.faults = [503, 503, 503]
    with pytest.raises(HashHopError, match="kept failing after 3 attempts") as error:
        backend.complete(PROMPTS[:1], MAX_NEW_TOKENS)
    assert CANARY not in str(error.value)
    assert len(proxy.authorizations) == 3


def test_an_unknown_endpoint_is_refused():
    with pytest.raises(HashHopError, match="endpoint"):
        make_backend("openai", base_url="http://127.0.0.1:9/v1", model=MODEL, endpoint="edits")
