"""Any OpenAI-compatible server (vLLM, llama.cpp, hosted APIs) as a backend.

Long runs meet rate limits, restarts and stalls, so transient failures (429, 5xx, dropped
connections, timeouts) are retried with bounded exponential backoff and jitter; anything
else the server refuses stops the run with its status and message. A server that has never
answered is not restarting: if it cannot be connected to, the run stops at once, naming
the `base_url` the user gave rather than the route asked. The API key is read
from an environment variable named in the settings, goes only into the request header,
and is scrubbed from any server message we repeat.
"""

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from hashhop.backends.base import Completion, user_turn
from hashhop.errors import HashHopError

ENDPOINTS = ("chat", "completions")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx
ROUTE_ABSENT_STATUS = frozenset({404, 405})
MAX_MESSAGE_CHARS = 500
# Token-counting routes (path below the server root, field holding the text), tried in
# order until one answers with a count: llama-cpp-python's server, then vLLM's.
TOKEN_COUNT_ROUTES = (("extras/tokenize/count", "input"), ("tokenize", "prompt"))


class OpenAIBackend:
    """Greedy completions from an OpenAI-compatible `chat` or `completions` endpoint.

    `base_url` is the API root as clients write it (`http://host:8000/v1`); token-counting
    routes are looked for at the server root, i.e. without the trailing `/v1`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        endpoint: str = "chat",
        temperature: float = 0.0,
        api_key_env: str = "OPENAI_API_KEY",
        context_window: int | None = None,
        concurrency: int = 4,
        timeout_s: float = 300.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        if endpoint not in ENDPOINTS:
            raise HashHopError(f"endpoint must be one of {ENDPOINTS}, not {endpoint!r}")
        if concurrency < 1 or timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise HashHopError(
                "need concurrency >= 1, timeout_s > 0, max_retries >= 0 and backoff_s >= 0"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.endpoint = endpoint
        self.temperature = temperature
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._context_window = context_window
        self._root_url = self.base_url.removesuffix("/v1")
        self._count_routes = list(TOKEN_COUNT_ROUTES)
        self._api_key = os.environ.get(api_key_env, "")
        self._answered = False
        """Whether the server has answered once: only then is a refused connection a restart."""

    def settings(self) -> dict[str, object]:
        """What decides the answers; concurrency, timeouts and the key do not."""
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "endpoint": self.endpoint,
            "temperature": self.temperature,
        }

    @property
    def context_window(self) -> int | None:
        """As configured: the OpenAI API has no standard way to ask a server for it."""
        return self._context_window

    def count_tokens(self, text: str) -> int | None:
        """Ask the server's own tokenizer; None when it offers no counting route we know."""
        for path, field in list(self._count_routes):
            url = f"{self._root_url}/{path}"
            with self._connect() as client:
                response = self._post(client, url, {"model": self.model, field: text})
            if response.status_code in ROUTE_ABSENT_STATUS:
                self._count_routes.remove((path, field))
                continue
            self._raise_for_status(url, response)
            try:
                count = response.json().get("count")
            except (ValueError, AttributeError):
                count = None
            if isinstance(count, int):
                self._count_routes = [(path, field)]
                return count
            self._count_routes.remove((path, field))
        return None

    def complete(self, prompts: list[str], max_new_tokens: int) -> list[Completion]:
        """Ask up to `concurrency` prompts at once; the first unrecoverable error stops all."""
        with self._connect() as client, ThreadPoolExecutor(self.concurrency) as pool:
            futures = [
                pool.submit(self._complete_one, client, prompt, max_new_tokens)
                for prompt in prompts
            ]
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise

    def _connect(self) -> httpx.Client:
        """Connections live for one call, so a backend holds nothing that needs closing."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency)
        return httpx.Client(headers=headers, timeout=self.timeout_s, limits=limits)

    def _complete_one(self, client: httpx.Client, prompt: str, max_new_tokens: int) -> Completion:
        if self.endpoint == "chat":
            path = "chat/completions"
            body: dict[str, object] = {"messages": user_turn(prompt)}
        else:
            path = "completions"
            body = {"prompt": prompt}
        body |= {"model": self.model, "max_tokens": max_new_tokens, "temperature": self.temperature}
        url = f"{self.base_url}/{path}"
        response = self._post(client, url, body)
        self._raise_for_status(url, response)
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
        except (ValueError, LookupError, TypeError):
            raise HashHopError(
                f"{url} answered without a completion: {self._server_message(response)}"
            ) from None
        usage = payload.get("usage") or {}
        return Completion(
            text=text or "",
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=response.elapsed.total_seconds(),
        )

    def _post(self, client: httpx.Client, url: str, body: dict[str, object]) -> httpx.Response:
        """POST, retrying transient failures; return the first response that is not one."""
        for attempt in range(self.max_retries + 1):
            try:
                response = client.post(url, json=body)
            except httpx.ConnectError as error:
                if not self._answered:
                    raise HashHopError(
                        f"cannot connect to {self.base_url}: {error} (is the server running there?)"
                    ) from None
                failure = f"{type(error).__name__} ({error})"
            except httpx.TransportError as error:
                failure = f"{type(error).__name__} ({error})"
            else:
                self._answered = True
                if not _is_transient(response.status_code):
                    return response
                failure = f"HTTP {response.status_code}: {self._server_message(response)}"
            if attempt < self.max_retries:
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                time.sleep(delay * random.uniform(0.5, 1.0))
        raise HashHopError(
            f"{url} kept failing after {self.max_retries + 1} attempts; last: {failure}"
        )

    def _raise_for_status(self, url: str, response: httpx.Response) -> None:
        if response.is_success:
            return
        hint = ""
        if response.status_code in (401, 403):
            hint = f" (is the environment variable {self.api_key_env} set to a valid key?)"
        raise HashHopError(
            f"{url} answered HTTP {response.status_code}: {self._server_message(response)}{hint}"
        )

    def _server_message(self, response: httpx.Response) -> str:
        """The server's own explanation, short, with our API key scrubbed out of it."""
        try:
            payload = response.json()
        except ValueError:
            message = response.text
        else:
            error = payload.get("error", payload) if isinstance(payload, dict) else payload
            if isinstance(error, dict):
                error = error.get("message") or error.get("detail") or error
            message = str(error)
        if self._api_key:
            message = message.replace(self._api_key, "[API key]")
        return message[:MAX_MESSAGE_CHARS]


def _is_transient(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500
