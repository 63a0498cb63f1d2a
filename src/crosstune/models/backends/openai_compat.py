"""An OpenAI-compatible HTTP server (vLLM, llama.cpp server, TGI, OpenAI) as a backend.

Generation uses chat completions for message lists and completions for plain prompts, with up to `concurrency`
requests in flight (a server's parallel slots are the point); `generate_iter` yields `(index, text)` as each
request completes, so `CachedBackend` stores every result as it arrives. 429, 5xx, timeouts and connection errors
are retried with exponential backoff and full jitter, at most `max_retries` times; then a `CrosstuneError` names the
request and the server, after the requests already in flight have come back (their results are kept).
Log-likelihood uses completions with `echo=True, logprobs=1, max_tokens=0` (vLLM-style servers); others raise a
clear error. The API key comes from an environment variable only and is never logged or written anywhere: every
message this backend raises has the key (and any `Bearer ...` token) replaced by `***`, also when a server echoes
it. `timeout` bounds each attempt in total, not only each read (a server trickling a byte at a time is cut off at
the deadline, within one read); a reply over `max_reply_bytes` (4 MiB) is refused, not stored. Settings can ride on
the URL: `openai:MODEL@http://host:8000/v1?concurrency=8&timeout=60`.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crosstune.errors import CrosstuneError
from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult, truncate_at_stop

URL_SETTINGS = {"concurrency": int, "timeout": float, "max_retries": int, "max_reply_bytes": int}
MAX_REPLY_BYTES = 4 << 20  # a completion's JSON; far above any answer a model writes for crosstune


class _Deadline(Exception):
    """The whole reply did not arrive within the request's deadline."""


class _TooLarge(Exception):
    """The reply is larger than the cap."""


def _bounded_http_client(timeout: float, max_bytes: int):
    """An httpx client for the OpenAI SDK whose responses are read under a total deadline and a size cap (httpx's
    own timeouts apply to each read, so a trickling server could hold a request for ever)."""
    import importlib

    from openai import DefaultHttpxClient

    client_cls = next(c for c in DefaultHttpxClient.__mro__ if c.__name__ == "Client")
    httpx = importlib.import_module(client_cls.__module__.split(".")[0])  # httpx, or httpx2 in newer SDKs

    class Stream(httpx.SyncByteStream):
        def __init__(self, inner, deadline: float):
            self.inner, self.deadline = inner, deadline

        def __iter__(self):
            n = 0
            for chunk in self.inner:
                n += len(chunk)
                if n > max_bytes:
                    raise _TooLarge(f"the reply is larger than {max_bytes:,} bytes")
                if time.monotonic() > self.deadline:
                    raise _Deadline(f"the reply took longer than {timeout:g} s")
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class Transport(httpx.HTTPTransport):
        def handle_request(self, request):
            deadline = time.monotonic() + timeout
            response = super().handle_request(request)
            response.stream = Stream(response.stream, deadline)
            return response

    return DefaultHttpxClient(transport=Transport(), timeout=timeout)


def redact(text: str, secret: str | None) -> str:
    """`text` without the API key (and without anything sent as a bearer token)."""
    text = re.sub(r"(?i)(bearer\s+)[^\s\"',}]+", r"\1***", str(text))
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


class _Retryable(Exception):
    """A transient failure (429, 5xx, timeout, connection): worth another attempt."""

    def __init__(self, what: str, retry_after: float | None = None):
        super().__init__(what)
        self.retry_after = retry_after


def split_url_settings(base_url: str) -> tuple[str, dict]:
    """`http://h/v1?concurrency=8` -> (`http://h/v1`, {"concurrency": 8}); other query parameters stay."""
    parts = urlsplit(base_url)
    settings, rest = {}, []
    for k, v in parse_qsl(parts.query):
        if k in URL_SETTINGS:
            try:
                settings[k] = URL_SETTINGS[k](v)
            except ValueError:
                raise CrosstuneError(f"backend URL setting {k}={v!r}: expected a number") from None
        else:
            rest.append((k, v))
    return urlunsplit(parts._replace(query=urlencode(rest))), settings


class OpenAICompatBackend:
    name = "openai"

    def __init__(self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY", batch_size: int = 8,
                 timeout: float = 120.0, max_retries: int = 3, concurrency: int = 4, backoff: float = 0.5,
                 max_backoff: float = 20.0, max_reply_bytes: int = MAX_REPLY_BYTES):
        from openai import OpenAI

        base_url, url_settings = split_url_settings(base_url)
        timeout = url_settings.get("timeout", timeout)
        max_retries = url_settings.get("max_retries", max_retries)
        concurrency = url_settings.get("concurrency", concurrency)
        max_reply_bytes = url_settings.get("max_reply_bytes", max_reply_bytes)
        if not (1 <= concurrency <= 1024 and 0 <= max_retries <= 100 and 0 < timeout <= 86400
                and 1 <= max_reply_bytes <= 1 << 30):
            raise CrosstuneError(f"openai backend: expected concurrency 1..1024, max_retries 0..100, timeout "
                                 f"0..86400 s, max_reply_bytes 1..2**30 (got {concurrency}, {max_retries}, "
                                 f"{timeout}, {max_reply_bytes})")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.batch_size = batch_size  # kept for a uniform interface
        self.concurrency, self.max_retries, self.backoff, self.max_backoff = concurrency, max_retries, backoff, max_backoff
        self.tokens_generated = 0
        self.retries = 0  # attempts beyond the first, over the backend's life
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._fingerprint: str | None = None
        key = os.environ.get(api_key_env) or "EMPTY"  # local servers accept any key
        self._secret = key if key != "EMPTY" else None
        # The client's own retries are off: ours back off with jitter and count attempts.
        self.client = OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=0,
                             http_client=_bounded_http_client(timeout, max_reply_bytes))

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatBackend(model={self.model!r}, base_url={self.base_url!r}, concurrency={self.concurrency})"

    # ---- identity -------------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Model name + base URL + the model id the server reports for it (when /models answers)."""
        if self._fingerprint is None:
            served = "?"
            try:
                ids = [m.id for m in self.client.models.list().data]
                served = self.model if self.model in ids else ",".join(sorted(ids)) or "?"
            except Exception:  # a server without /models: name and URL alone
                pass
            self._fingerprint = f"openai:{self.model}@{self.base_url}|served={served}"
        return self._fingerprint

    # ---- generation -----------------------------------------------------------------------------------
    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        out: list[str] = [""] * len(requests)
        for i, text in self.generate_iter(requests):
            out[i] = text
        return out

    def generate_iter(self, requests: list[GenerateRequest]) -> Iterator[tuple[int, str]]:
        """(index, text) as requests complete, `concurrency` in flight. On a request that fails for good, no new
        request starts; the ones in flight finish and are yielded; then the error is raised."""
        pending = iter(range(len(requests)))
        error: CrosstuneError | None = None
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai") as pool:
            running: dict[Future, int] = {}

            def submit_next() -> None:
                i = next(pending, None)
                if i is not None:
                    running[pool.submit(self._with_retries, i, requests[i], self._generate_one)] = i

            for _ in range(self.concurrency):
                submit_next()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    try:
                        text = fut.result()
                    except CrosstuneError as e:
                        error = error or e
                        continue
                    yield i, text
                    if error is None:
                        submit_next()
        if error is not None:
            raise error

    def _generate_one(self, r: GenerateRequest) -> str:
        common = dict(model=self.model, max_tokens=r.max_new_tokens, temperature=r.temperature, seed=r.seed,
                      stop=list(r.stop) or None)
        if r.temperature > 0 and r.top_p < 1.0:
            common["top_p"] = r.top_p
        if isinstance(r.prompt, str):
            resp = self.client.completions.create(prompt=r.prompt, **common)
            text = resp.choices[0].text
        else:
            resp = self.client.chat.completions.create(messages=r.prompt, **common)
            text = resp.choices[0].message.content
        if not isinstance(text, (str, type(None))):
            raise TypeError(f"a completion's text is {type(text).__name__}")
        usage = getattr(resp, "usage", None)
        if usage is not None and getattr(usage, "completion_tokens", None):
            with self._lock:
                self.tokens_generated += int(usage.completion_tokens)
        return truncate_at_stop(text or "", tuple(r.stop))

    # ---- retries --------------------------------------------------------------------------------------
    def _with_retries(self, index: int, request, call):
        for attempt in range(self.max_retries + 1):
            try:
                return self._classify(call, request, self._secret)
            except _Retryable as e:
                if attempt == self.max_retries:
                    raise CrosstuneError(
                        f"openai backend: request {index} to {self.base_url} (model {self.model}) failed after "
                        f"{attempt + 1} attempts: {e}; results that came back are kept in the call cache, "
                        "rerun to resume") from None
                with self._lock:
                    self.retries += 1
                    delay = self._rng.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt))
                time.sleep(max(delay, min(e.retry_after or 0.0, self.max_backoff)))
            except CrosstuneError as e:
                raise CrosstuneError(f"openai backend: request {index} to {self.base_url} (model {self.model}): "
                                     f"{e}") from None

    @staticmethod
    def _classify(call, request, secret: str | None = None):
        """Run one call; transient failures become `_Retryable`, others a `CrosstuneError`; neither holds the key."""
        try:
            return OpenAICompatBackend._classify_raw(call, request)
        except _Retryable as e:
            raise _Retryable(redact(str(e), secret), e.retry_after) from None
        except CrosstuneError as e:
            raise CrosstuneError(redact(str(e), secret)) from None

    @staticmethod
    def _classify_raw(call, request):
        import openai

        try:
            return call(request)
        except (_Deadline, _TooLarge) as e:  # raised while the SDK reads the body
            cause: BaseException = e
        except openai.APITimeoutError:
            raise _Retryable("timed out") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            if not isinstance(cause, (_Deadline, _TooLarge)):
                raise _Retryable(f"connection failed ({type(cause).__name__})") from None
        except openai.APIStatusError as e:
            status = e.status_code
            if status == 429 or status >= 500:
                after = e.response.headers.get("retry-after") if e.response is not None else None
                try:
                    after_s = float(after) if after else None
                except ValueError:
                    after_s = None
                raise _Retryable(f"HTTP {status}", after_s) from None
            raise CrosstuneError(f"HTTP {status}: {_short(e.message)}") from None
        except (openai.APIResponseValidationError, AttributeError, IndexError, TypeError, ValueError) as e:
            raise CrosstuneError(f"the server's answer is not a completion ({type(e).__name__}: {_short(str(e))})") \
                from None
        except openai.OpenAIError as e:
            raise CrosstuneError(f"{type(e).__name__}: {_short(str(e))}") from None
        if isinstance(cause, _Deadline):
            raise _Retryable(str(cause)) from None
        raise CrosstuneError(f"{cause}; not stored (raise max_reply_bytes on the URL if this is expected)") from None

    # ---- log-likelihood -------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]:
        return [self._with_retries(i, r, self._loglik_one) for i, r in enumerate(requests)]

    def _loglik_one(self, r: LoglikRequest) -> LoglikResult:
        import openai

        try:
            # max_tokens=1, not 0: llama.cpp's server reads 0 as "no limit" and generates; the one generated token
            # lies past the end of the text and is not counted below
            out = self.client.completions.create(model=self.model, prompt=r.context + r.continuation, echo=True,
                                                 logprobs=1, max_tokens=1, temperature=0.0)
            lp = out.choices[0].logprobs
            offsets, token_lps, top = lp.text_offset, lp.token_logprobs, lp.top_logprobs
        except (openai.APITimeoutError, openai.APIConnectionError, _Deadline, _TooLarge):
            raise
        except openai.APIStatusError as e:
            if e.status_code == 429 or e.status_code >= 500:
                raise
            raise CrosstuneError(f"this server cannot score log-likelihoods (completions with echo and logprobs: "
                                 f"HTTP {e.status_code})") from None
        except Exception as e:
            raise CrosstuneError(f"this server cannot score log-likelihoods (completions with echo and logprobs "
                                 f"failed: {type(e).__name__}: {_short(str(e))})") from None
        start, end = len(r.context), len(r.context) + len(r.continuation)
        picked = [i for i, off in enumerate(offsets) if start <= off < end]
        if not picked:
            raise CrosstuneError("no tokens returned for the continuation")
        total = sum(token_lps[i] for i in picked)
        greedy = all(top and top[i] and max(top[i].values()) <= token_lps[i] + 1e-6 for i in picked)
        return LoglikResult(float(total), bool(greedy))


def _short(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n] + "..."
