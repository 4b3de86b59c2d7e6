"""A small fake Kubernetes API server over real HTTP, for the faults a real API server cannot be made
to produce on demand: injected 5xx/429 answers (`fail_next`), the 403s of a server whose authorizer
is still starting, and an expired watch (410 Gone, which a real server answers only once etcd has
compacted the version away). Everything a real server can answer is tested against one:
tests/cluster (the loopback control plane, or the cluster KUBECONFIG names).

It implements only what those tests call: create / list (label selectors, limit + continue) / read /
delete of Jobs, Services and ConfigMaps, and watches that replay `watch_events`. Every request is
recorded.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_PATH = re.compile(
    r"^/(?:api/v1|apis/batch/v1)/namespaces/(?P<ns>[^/]+)/(?P<resource>jobs|services|configmaps|pods)"
    r"(?:/(?P<name>[^/]+))?$"
)
KINDS = {"jobs": "Job", "services": "Service", "configmaps": "ConfigMap", "pods": "Pod"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int
    count: int


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class FakeCluster:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (resource, ns, name)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    watch_events: list[dict[str, Any]] = field(default_factory=list)  # what every watch replays
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- test controls ---------------------------------------------------------------------------
    def fail_next(self, method: str, path_contains: str, status: int = 500, count: int = 1) -> None:
        self.faults.append(Fault(method, path_contains, status, count))

    def calls(self, method: str, resource: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and f"/{resource}" in r.path]

    def get(self, resource: str, name: str, namespace: str = "xs") -> dict[str, Any] | None:
        return self.objects.get((resource, namespace, name))

    def names(self, resource: str) -> list[str]:
        return sorted(name for (res, _, name) in self.objects if res == resource)

    def put(self, resource: str, obj: dict[str, Any], namespace: str = "xs") -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        obj.setdefault("kind", KINDS[resource])
        if resource == "jobs":
            obj.setdefault("status", {})
        with self.lock:
            self.objects[(resource, namespace, meta["name"])] = obj
        return obj

    # ---- the API ---------------------------------------------------------------------------------
    def _fault(self, method: str, path: str) -> int | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path_contains in path and fault.count > 0:
                    fault.count -= 1
                    return fault.status
        return None

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        url = urlparse(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append(Request(method, url.path, query, body))
        status = self._fault(method, url.path)
        if status is not None:
            return status, _status(status, "injected fault")
        match = _PATH.match(url.path)
        if not match:
            return 404, _status(404, f"no route {url.path}")
        ns, resource, name = match["ns"], match["resource"], match["name"]
        key = (resource, ns, name or "")
        if method == "POST" and not name:
            body_name = body["metadata"]["name"]
            if (resource, ns, body_name) in self.objects:
                return 409, _status(409, f'{resource} "{body_name}" already exists', "AlreadyExists")
            return 201, self.put(resource, body, ns)
        if method == "GET" and not name and query.get("watch") in ("true", "1", "True"):
            return 200, ("watch", list(self.watch_events))
        if method == "GET" and not name:
            return 200, self._list(resource, ns, query)
        if key not in self.objects:
            return 404, _status(404, f'{resource} "{name}" not found', "NotFound")
        if method == "GET":
            return 200, self.objects[key]
        if method == "PUT":
            return 200, self.put(resource, body, ns)
        if method == "DELETE":
            with self.lock:
                removed = self.objects.pop(key)
            return 200, removed
        return 405, _status(405, "method not allowed")

    def _list(self, resource: str, ns: str, query: dict[str, str]) -> dict[str, Any]:
        selector = query.get("labelSelector", "")
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (res, space, _), o in sorted(self.objects.items())
                if res == resource
                and space == ns
                and selector_matches(selector, o["metadata"].get("labels") or {})
            ]
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(items) or 1
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "kind": f"{KINDS[resource]}List",
            "apiVersion": "v1",
            "items": page,
            "metadata": {"resourceVersion": "1", **({"continue": str(start + limit)} if more else {})},
        }


def _status(code: int, message: str, reason: str = "") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        status, payload = self.cluster.handle(method, self.path, body)
        if isinstance(payload, tuple) and payload[0] == "watch":
            self._send_lines([json.dumps(event) for event in payload[1]])
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_lines(self, lines: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            chunk = (line + "\n").encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


class FakeApiServer:
    """`with FakeApiServer() as server:` serves `server.cluster` at `server.url`."""

    def __init__(self) -> None:
        self.cluster = FakeCluster()
        handler = type("Handler", (_Handler,), {"cluster": self.cluster})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
