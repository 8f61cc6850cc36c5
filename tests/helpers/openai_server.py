"""A local HTTP server speaking the OpenAI wire format, with faults injected on request.

It stands in for a hosted API (which tests cannot reach): POST /v1/chat/completions and
/v1/completions answer with the JSON bodies the real API sends, usage included. Faults are
taken one per request, in arrival order, from a queue: ``400`` (a bad request, as for a
prompt over the context length), ``429`` (rate limited, with a
Retry-After header), ``500``/``502``/``503``, ``hang`` (no answer for longer than any test
timeout), ``malformed`` (a 200 whose body is cut-off JSON) and ``401_echo`` (a 401 whose body
echoes the request's headers, Authorization included, as some proxies and providers do). A
prompt containing
``ALWAYS_FAIL`` gets a 500 every time. ``served`` counts what was sent, by outcome.

What it answers is up to ``respond(prompt, seed)`` (a function of the test's choosing).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ray_asd.tasks import arith, make_task

ALWAYS_FAIL = "ALWAYS_FAIL"
FAULTS = {"400", "429", "500", "502", "503", "hang", "malformed", "401_echo"}


class FaultyOpenAIServer:
    def __init__(self, respond: Callable[[str, int], str], hang_s: float = 5.0) -> None:
        self.respond = respond
        self.hang_s = hang_s
        self.faults: deque[str] = deque()
        self.served: Counter[str] = Counter()
        self.auth_headers: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # shutdown() waits out the serving loop's poll: 0.5 s by default, at every test's end.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def inject(self, faults: Iterable[str]) -> None:
        faults = list(faults)
        assert set(faults) <= FAULTS, faults
        with self._lock:
            self.faults.extend(faults)

    def __enter__(self) -> FaultyOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self, prompt: str) -> str | None:
        with self._lock:
            if ALWAYS_FAIL in prompt:
                fault = "always_500"
            else:
                fault = self.faults.popleft() if self.faults else None
            self.served[fault or "ok"] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.auth_headers.add(self.headers.get("Authorization", ""))
                chat = self.path.endswith("/chat/completions")
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                fault = server._next_fault(prompt)
                if fault == "hang":
                    time.sleep(server.hang_s)
                    return
                if fault == "401_echo":
                    # Authorization first, so that a cut-off message still shows it.
                    headers = {"Authorization": self.headers.get("Authorization", "")}
                    headers |= {
                        k: v for k, v in self.headers.items() if k.lower() != "authorization"
                    }
                    message = f"invalid credentials in request with headers {headers}"
                    error = {"error": {"message": message, "type": "invalid_request_error"}}
                    return self._send(401, json.dumps(error).encode())
                if fault == "malformed":
                    return self._send(200, b'{"id": "cmpl-1", "choices": [{"mess')
                if fault in {"400", "429", "500", "502", "503", "always_500"}:
                    status = 500 if fault == "always_500" else int(fault)
                    error = {"error": {"message": f"injected {status}", "type": "server_error"}}
                    headers = {"Retry-After": "0"} if status == 429 else {}
                    return self._send(status, json.dumps(error).encode(), headers)
                text = server.respond(prompt, body.get("seed", 0))
                usage = {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": len(text.split()),
                    "total_tokens": len(prompt.split()) + len(text.split()),
                }
                choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
                if chat:
                    choice["message"] = {"role": "assistant", "content": text}
                else:
                    choice["text"] = text
                response = {
                    "id": "cmpl-1",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [choice],
                    "usage": usage,
                }
                self._send(200, json.dumps(response).encode())

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler


_SEED_QUESTION = re.compile(r"Here is an example problem:\n(.*?)\n\nWrite one new", re.DOTALL)
_QUESTION = re.compile(r"Problem: (.*?)\n\nSolution:", re.DOTALL)


def arith_teacher(prompt: str, seed: int) -> str:
    """What the server answers: a good teacher for the arith task's two-step prompts."""
    written = _SEED_QUESTION.search(prompt)
    if written:
        return arith.oracle_question(written.group(1), random.Random(seed)) or "no idea"
    asked = _QUESTION.search(prompt)
    return (asked and arith.oracle_answer(asked.group(1))) or "no idea"


_JUDGED = re.compile(r"Problem:\n(.*?)\n\nStudent's answer:\n(.*?)\n\nFirst explain", re.DOTALL)
NO_VERDICT = "NO_VERDICT"  # an answer holding this is never rated
LATE_VERDICT = "LATE_VERDICT"  # rated only when asked again


def arith_judge(prompt: str, seed: int) -> str:
    """What the server answers to judge prompts: a judge of arith answers that writes as
    real judges do, a verdict line last: 9 for a correct final answer, 2 for a wrong one.
    Answers marked NO_VERDICT get reasoning without a rating, every time; LATE_VERDICT
    ones only when reminded (then a bare verdict line, as real models reply to reminders)."""
    judged = _JUDGED.search(prompt)
    if judged is None:
        return "I cannot grade this."
    question, answer = judged.groups()
    if NO_VERDICT in answer or (LATE_VERDICT in answer and "Your reply was" not in prompt):
        return "The student sets up the computation, but let me think about the steps again."
    if LATE_VERDICT in answer:
        return "Rating: 4"
    task = make_task("arith")
    reference = arith.oracle_answer(question) or ""
    if task.is_correct(question, answer, reference):
        return f"The final answer {task.extract(answer)} is correct and each step holds.\nRating: 9"
    return "**Assessment:** the final answer does not follow from the steps.\n\n**Rating:** 2/10"
