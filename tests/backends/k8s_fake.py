"""A small fake Kubernetes API server over real HTTP, for the Kubernetes backend's tests.

It implements only what xstilts calls: create / list (label selectors, limit + continue) / read /
delete of Jobs, Services and ConfigMaps, replace of ConfigMaps, the pod list and pod logs (optionally
streamed). Every request is recorded; faults can be injected (`fail_next`). The test plays the
Job controller by setting Job status (`complete`, `fail`, `set_status`) and adding pods.
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
    r"(?:/(?P<name>[^/]+))?(?P<log>/log)?$"
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
    logs: dict[str, list[str]] = field(default_factory=dict)  # pod -> lines
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
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

    def set_status(self, name: str, status: dict[str, Any], namespace: str = "xs") -> None:
        with self.lock:
            self.objects[("jobs", namespace, name)]["status"] = status

    def complete(self, name: str, namespace: str = "xs") -> None:
        self.set_status(
            name,
            {
                "startTime": _now(),
                "completionTime": _now(),
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": _now()}],
            },
            namespace,
        )

    def fail(self, name: str, reason: str, message: str, namespace: str = "xs") -> None:
        self.set_status(
            name,
            {
                "startTime": _now(),
                "failed": 4,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": reason,
                        "message": message,
                        "lastTransitionTime": _now(),
                    }
                ],
            },
            namespace,
        )

    def add_pod(
        self,
        job: str,
        name: str,
        phase: str = "Running",
        lines: list[str] | None = None,
        created: str | None = None,
        index: str | None = None,
    ) -> None:
        labels = {"batch.kubernetes.io/job-name": job, "job-name": job}
        if index is not None:
            labels["batch.kubernetes.io/job-completion-index"] = index
        self.put(
            "pods",
            {
                "metadata": {"name": name, "labels": labels, "creationTimestamp": created or _now()},
                "status": {"phase": phase},
            },
        )
        self.logs[name] = list(lines or [])

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
        if match["log"]:
            if key not in self.objects:
                return 404, _status(404, f'pods "{name}" not found')
            return 200, ("log", self.logs.get(name, []), query.get("follow") == "true")
        if method == "POST" and not name:
            body_name = body["metadata"]["name"]
            if (resource, ns, body_name) in self.objects:
                return 409, _status(409, f'{resource} "{body_name}" already exists', "AlreadyExists")
            return 201, self.put(resource, body, ns)
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
        if isinstance(payload, tuple) and payload[0] == "log":
            self._send_log(payload[1], payload[2])
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_log(self, lines: list[str], follow: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            chunk = (line + "\n").encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
            if follow:
                time.sleep(0.01)  # streamed, not one block
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
