"""moto as a real HTTP server on 127.0.0.1, with call counting and fault injection.

A small WSGI middleware sits in front of moto's app (as TESTING-NOTES suggests): it counts
calls per operation (X-Amz-Target), records what ECS received, can answer the next N calls of an
operation with an error or, for RunTask, with `failures` (moto never returns either), gives RunTask
AWS's clientToken idempotency (moto ignores the token), and passes one ECS call into moto at a time.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

RECORDED = {"RegisterTaskDefinition", "RunTask", "StopTask", "DescribeTaskDefinition"}


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class MotoServer:
    def __init__(self) -> None:
        self.app = DomainDispatcherApplication(create_backend_app)
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, list[str]] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []  # (operation, JSON request) of ECS writes
        self._lock = threading.Lock()
        self._ecs_lock = threading.Lock()  # one ECS call inside moto at a time (TESTING-NOTES)
        self._tokens: dict[tuple[str, str], tuple[dict[str, Any], bytes]] = {}  # (cluster, clientToken)
        self.replays: Counter[str] = Counter()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def inject(self, operation: str, *faults: str) -> None:
        """Answer the next calls of an operation (e.g. "RunTask") with "throttle", "capacity", "error500",
        or "error:CODE:STATUS" (an AWS error answer, e.g. "error:AccessDeniedException:400")."""
        with self._lock:
            self.faults.setdefault(operation, []).extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faults.clear()
            self.received.clear()
            self.replays.clear()
        with self._ecs_lock:
            self._tokens.clear()

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        """The JSON requests of an operation that reached the server, oldest first ("what AWS received")."""
        with self._lock:
            return [body for op, body in self.received if op == operation]

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target else environ.get("PATH_INFO", "")
        if operation in RECORDED:
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            with self._lock:
                self.received.append((operation, json.loads(raw or b"{}")))
        with self._lock:
            self.calls[operation] += 1
            pending = self.faults.get(operation)
            fault = pending.pop(0) if pending else None
        if fault == "throttle":
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", "ThrottlingException")],
            )
            return [body]
        if fault == "capacity":
            body = json.dumps(
                {"tasks": [], "failures": [{"reason": "RESOURCE:FARGATE", "detail": "no Fargate capacity"}]}
            ).encode()
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
            return [body]
        if fault and fault.startswith("error:"):
            _, code, status = fault.split(":")
            body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
            start_response(
                f"{status} Error", [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
            )
            return [body]
        if fault == "error500":
            start_response("500 Internal Server Error", [("Content-Type", "application/x-amz-json-1.1")])
            return [json.dumps({"__type": "ServerException", "message": "boom"}).encode()]
        if operation == "RunTask":
            return self._idempotent_run_task(environ, start_response)
        if target.startswith("AmazonEC2ContainerService"):  # moto's ECS backend is not thread-safe
            with self._ecs_lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _idempotent_run_task(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """RunTask with AWS's clientToken semantics, which moto lacks: the first 200 answer per (cluster, token)
        is replayed for a repeat with the same parameters; other parameters get a ConflictException."""
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        request = json.loads(raw or b"{}")
        token = request.get("clientToken")
        key = (request.get("cluster", "default"), token)
        with self._ecs_lock:
            if token and key in self._tokens:
                first, answer = self._tokens[key]
                if first != request:
                    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                                       ("x-amzn-ErrorType", "ConflictException")])  # fmt: skip
                    self.replays["conflict"] += 1
                    return [json.dumps({"__type": "ConflictException", "message": "clientToken reused"}).encode()]
                self.replays["replayed"] += 1
                start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
                return [answer]
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                captured["status"] = status
                return start_response(status, headers, *rest)

            body = b"".join(self.app(environ, capture))
            if token and captured.get("status", "").startswith("200"):
                self._tokens[key] = (request, body)
            return [body]
