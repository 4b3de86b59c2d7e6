"""The Kubernetes backend: phase Jobs on a cluster, through the official `kubernetes` client.

Stateless like the reconcile loop above it: the store and the Jobs are the truth. A Job belongs to
one store (its name ends in a short hash of the store URI, and `xstilts.io/store` carries it), so the
same sweep against two stores in one namespace shares nothing. Deterministic names make a create
answered 409 AlreadyExists mean "already submitted".

Cost: the first pass lists the store's phase Jobs (`xstilts.io/store=<id>,xstilts.io/address`, which
also finds phases shared with other sweeps of the same store); after that a watch from the list's
resourceVersion keeps them current, and `poll` wakes the loop when a Job's state changes. An
expired resourceVersion (410 Gone) falls back to a new list. Once some Job has pods that are not
ready, the store's unfinished pods are listed and then watched the same way, to see why a pod does
not start (image pulls, scheduling, a missing Secret); the loop fails such a phase after
`podProblemGraceSeconds`. One-shot commands (`status`) list instead of watching. A failed Job's message
ends with the last error line of its pod's log (as the local backend's does): read once per failure,
one list of the failed pods in a pass that sees new failures and one log read per failed Job.

Every call is retried with truncated exponential backoff and jitter on 5xx/429 and connection errors.
Commands that run once give up after a few tries with one `XstiltsError` line that names the server
and namespace; the reconcile loop (`controller=True`) rides out an outage for `apiOutageSeconds`,
including the 403s an API server answers while its authorizer starts.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from xstilts.backends.base import Backend, JobState, Observed
from xstilts.backends.errorline import TAIL_BYTES, last_error_line_of
from xstilts.backends.kubeconfig import cluster_configuration
from xstilts.errors import XstiltsError
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict
from xstilts.render.job import (
    ADDRESS_LABEL,
    CONTAINER,
    JOB_NAME_LABEL,
    KUEUE_QUEUE_LABEL,
    STORE_LABEL,
    SWEEP_LABEL,
)
from xstilts.render.names import job_name, label_value, store_id
from xstilts.spec.cluster import ClusterSettings

log = logging.getLogger(__name__)

COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
# Set by the reconcile loop on a Job it failed (a pod that could not start): "<reason>: <message>".
FAILED_ANNOTATION = "xstilts.io/failed"
PAGE = 500  # list page size: one call for sweeps up to this many Jobs
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# An API server that has just restarted answers 401/403 until its authenticators and RBAC caches are
# ready: within this many seconds of a connection failure those are retried like a 503.
RESTART_AUTH_SECONDS = 60.0
WATCH_SECONDS = 300  # the server ends a watch after this; it is then resumed from its resourceVersion
SETTLE_SECONDS = 0.5  # after a change, gather the events that follow before the next pass
# The pods the loop looks at for why they do not start (a pod leaving this selection is DELETED).
UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed"
# The pods whose log says why their phase failed.
FAILED_PODS = "status.phase=Failed"
# Container waiting reasons that mean "this pod is not going to start by itself soon".
POD_PROBLEMS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
        "RunContainerError",
    }
)
_RESOURCES = {
    # resource: (api attribute, method suffix)
    "jobs": ("batch", "namespaced_job"),
    "pods": ("core", "namespaced_pod"),
    "services": ("core", "namespaced_service"),
    "configmaps": ("core", "namespaced_config_map"),
}
_EXPIRED = object()  # queued by the watch when its resourceVersion is too old (410 Gone)


class KubeApi:
    """The few API calls xstilts makes: JSON in and out (no model deserialisation, which is slow for
    thousands of Jobs), retries, one-line errors, and a count of the requests made (`calls`, by
    "verb resource", as the API server's audit log names them)."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        *,
        retries: int = 4,
        connect_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        timeout: tuple[float, float] = (3.0, 30.0),
        outage_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ):
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.retries, self.connect_retries = retries, connect_retries
        self.backoff, self.max_backoff, self.timeout = backoff, max_backoff, timeout
        # > 0: keep retrying connection errors and 5xx for this long (the reconcile loop).
        self.outage_seconds = outage_seconds
        self.sleep, self.jitter, self.clock = sleep, jitter, clock
        self.calls: Counter[str] = Counter()
        self.listed: Counter[str] = Counter()  # objects the lists returned, by resource
        self.received = 0  # bytes of list responses
        self._lock = threading.Lock()
        self._unreachable_at: float | None = None

    @classmethod
    def from_configuration(cls, configuration: Any, namespace: str, **kwargs: Any) -> KubeApi:
        from kubernetes import client

        # Our own retries (with backoff) replace urllib3's immediate ones, so that an unreachable
        # server fails in about a second.
        configuration.retries = 0
        return cls(client.ApiClient(configuration), namespace, **kwargs)

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()

    # ---- errors and retries ----------------------------------------------------------------------
    def _failure(self, action: str, exc: Exception, outage: float | None = None) -> XstiltsError:
        from kubernetes.client.exceptions import ApiException

        where = f"the Kubernetes API server at {self.host} (namespace {self.namespace})"
        after = f" (retried for {outage:.0f}s, apiOutageSeconds)" if outage else ""
        if not isinstance(exc, ApiException):
            text = str(getattr(exc, "reason", None) or exc)
            errno = re.search(r"\[Errno -?\d+\][^\"')]*", text)
            reason = errno.group(0).strip() if errno else (text.splitlines() or [type(exc).__name__])[0][:200]
            return XstiltsError(
                f"cannot reach {where} to {action}: {reason}{after}; check KUBECONFIG and the current context"
            )
        detail = _status_message(exc)
        if exc.status in (401, 403):
            return XstiltsError(
                f"{where} refused to {action}: {exc.status} {exc.reason}: {detail}{after}; check your "
                "credentials, or the ServiceAccount and the chart's Role (rbac.create)"
            )
        return XstiltsError(f"{where} failed to {action}: {exc.status} {exc.reason}: {detail}{after}")

    def note_unreachable(self) -> None:
        """Record a broken connection (also one seen outside `call`, such as a watch stream's)."""
        self._unreachable_at = self.clock()

    def _restarting(self) -> bool:
        seen = self._unreachable_at
        return seen is not None and self.clock() - seen < RESTART_AUTH_SECONDS

    def call(
        self,
        verb: str,
        resource: str,
        action: str,
        fn: Callable[..., Any],
        *args: Any,
        ok: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """`fn(*args, **kwargs)` with retries. Statuses in `ok` come back as the ApiException itself."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", self.timeout)
        attempt = 0
        outage_since: float | None = None
        while True:
            with self._lock:
                self.calls[f"{verb} {resource}"] += 1
            try:
                result = fn(*args, **kwargs)
                if outage_since is not None and self.outage_seconds:
                    log.warning(
                        "the Kubernetes API server at %s answers again (after %.0fs)",
                        self.host,
                        self.clock() - outage_since,
                    )
                return result
            except ApiException as exc:
                if exc.status in ok:
                    return exc
                transient = exc.status in RETRY_STATUSES or (exc.status in (401, 403) and self._restarting())
                if not transient or (not self.outage_seconds and attempt >= self.retries):
                    raise self._failure(action, exc) from None
                error: Exception = exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                self.note_unreachable()
                if not self.outage_seconds and attempt >= self.connect_retries:
                    raise self._failure(action, exc) from None
                error = exc
            now = self.clock()
            if outage_since is None:
                outage_since = now
                if self.outage_seconds:
                    log.warning(
                        "%s; retrying for up to %.0fs (apiOutageSeconds)",
                        self._failure(action, error),
                        self.outage_seconds,
                    )
            delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + 0.5 * self.jitter())
            if self.outage_seconds:
                left = self.outage_seconds - (now - outage_since)
                if left <= 0:
                    raise self._failure(action, error, now - outage_since) from None
                delay = min(delay, left)
            self.sleep(delay)
            attempt += 1

    # ---- resources -------------------------------------------------------------------------------
    def _method(self, verb: str, resource: str) -> Callable[..., Any]:
        api, suffix = _RESOURCES[resource]
        return getattr(getattr(self, api), f"{verb}_{suffix}")

    def list(self, resource: str, selector: str, field_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of `resource` matching the label selector (pages of PAGE)."""
        return self.list_with_version(resource, selector, field_selector)[0]

    def list_with_version(
        self, resource: str, selector: str, field_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The objects and the list's resourceVersion (where a watch of the same selector resumes)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        extra = {"field_selector": field_selector} if field_selector else {}
        while True:
            response = self.call(
                "list",
                resource,
                f"list {resource} ({selector})",
                self._method("list", resource),
                self.namespace,
                label_selector=selector,
                limit=PAGE,
                _continue=token,
                _preload_content=False,
                **extra,
            )
            self.received += len(response.data or b"")
            page = _json(response)
            items += page.get("items") or []
            self.listed[resource] += len(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, meta.get("resourceVersion")

    def watch(
        self, resource: str, selector: str, resource_version: str | None, field_selector: str | None = None
    ) -> Any:
        """A watch stream (a urllib3 response of JSON lines) from `resource_version` on, or the
        ApiException when that version has expired (410)."""
        extra = {"field_selector": field_selector} if field_selector else {}
        return self.call(
            "watch",
            resource,
            f"watch {resource} ({selector})",
            self._method("list", resource),
            self.namespace,
            label_selector=selector,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            ok=(410,),
            _preload_content=False,
            _request_timeout=(self.timeout[0], WATCH_SECONDS + 30),
            **extra,
        )

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        response = self.call(
            "get",
            resource,
            f"read {resource[:-1]} {name}",
            self._method("read", resource),
            name,
            self.namespace,
            ok=(404,),
            _preload_content=False,
        )
        return None if _is_exception(response) else _json(response)

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The created object, or None when one of that name already exists (409)."""
        name = body["metadata"]["name"]
        response = self.call(
            "create",
            resource,
            f"create {resource[:-1]} {name}",
            self._method("create", resource),
            self.namespace,
            body,
            ok=(409,),
            _preload_content=False,
        )
        return None if _is_exception(response) else _json(response)

    def replace(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        response = self.call(
            "update",
            resource,
            f"replace {resource[:-1]} {name}",
            self._method("replace", resource),
            name,
            self.namespace,
            body,
            _preload_content=False,
        )
        return _json(response)

    def patch(self, resource: str, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """A JSON merge patch; None when the object is gone."""
        response = self.call(
            "patch",
            resource,
            f"patch {resource[:-1]} {name}",
            self._method("patch", resource),
            name,
            self.namespace,
            body,
            ok=(404,),
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        return None if _is_exception(response) else _json(response)

    def delete(self, resource: str, name: str) -> bool:
        """Delete with background propagation (the Job's pods go too). False when it was already gone."""
        from kubernetes.client import V1DeleteOptions

        body = V1DeleteOptions(propagation_policy="Background")
        response = self.call(
            "delete",
            resource,
            f"delete {resource[:-1]} {name}",
            self._method("delete", resource),
            name,
            self.namespace,
            body=body,
            ok=(404,),
            _preload_content=False,
        )
        if _is_exception(response):
            return False
        _json(response)  # read it all: a connection returned to the pool half-read breaks the next call
        return True

    def _read_log(self, pod: str, ok: tuple[int, ...], **options: Any) -> Any:
        return self.call(
            "get",
            "pods/log",
            f"read the log of pod {pod}",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            container=CONTAINER,
            ok=ok,
            _preload_content=False,
            **options,
        )

    def log_lines(self, pod: str, follow: bool) -> Iterator[str] | None:
        """The pod's log as lines; None when the pod is gone (404): it can be deleted between the
        list that found it and this read."""
        response = self._read_log(
            pod, (404,), follow=follow, _request_timeout=None if follow else self.timeout
        )
        return None if _is_exception(response) else _lines(response)

    def log_tail(self, pod: str, limit_bytes: int = TAIL_BYTES) -> list[str]:
        """The last `limit_bytes` of the pod's log as lines; [] when the pod or its log is gone (404) or
        its container never started (400)."""
        response = self._read_log(pod, (400, 404), tail_lines=200, limit_bytes=limit_bytes)
        return [] if _is_exception(response) else list(_lines(response))


def _json(response: Any) -> dict[str, Any]:
    try:
        return json.loads(response.data or b"{}")
    finally:
        response.release_conn()


def _is_exception(value: Any) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(value, ApiException)


def _status_message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.body or "").strip()
    except (ValueError, AttributeError):
        return str(exc.body or "").strip()


def _lines(response: Any) -> Iterator[str]:
    buffer = b""
    try:
        for chunk in response.stream(64 * 1024, decode_content=True):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace")
        if buffer:
            yield buffer.decode("utf-8", errors="replace")
    finally:
        response.release_conn()


class Watch:
    """The events of one resource and selector from a resourceVersion on, read by a background thread
    into a queue shared with other watches: (watch, type, object) triples, (watch, _EXPIRED) when the
    version is too old, or the XstiltsError that ended it (an outage longer than the KubeApi's
    window). The server ends each watch after WATCH_SECONDS; it is resumed from the last version seen
    (bookmarks included), and a broken stream is resumed the same way once the server answers again.
    An object that stops matching a field selector arrives as DELETED."""

    def __init__(
        self,
        api: KubeApi,
        resource: str,
        selector: str,
        resource_version: str | None,
        events: queue.Queue[Any],
        field_selector: str | None = None,
    ):
        self.api, self.resource, self.selector = api, resource, selector
        self.resource_version, self.field_selector, self.events = resource_version, field_selector, events
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"xstilts-watch-{resource}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import urllib3

        try:
            while not self._stopped.is_set():
                response = self.api.watch(
                    self.resource, self.selector, self.resource_version, self.field_selector
                )
                if _is_exception(response):  # 410: expired
                    self.events.put((self, _EXPIRED))
                    return
                self._response = response
                try:
                    for line in _lines(response):
                        if self._stopped.is_set():
                            return
                        if line.strip() and not self._event(json.loads(line)):
                            return
                except (urllib3.exceptions.HTTPError, OSError, ValueError):
                    if self._stopped.is_set():
                        return
                    self.api.note_unreachable()  # resumed by the next watch, which rides out the outage
        except XstiltsError as exc:
            self.events.put((self, exc))

    def _event(self, event: dict[str, Any]) -> bool:
        """Queue one event; False when the watch must end (expired)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                self.events.put((self, _EXPIRED))
                return False
            raise ValueError(f"watch error: {obj.get('message')}")  # resume from the last version
        self.resource_version = (obj.get("metadata") or {}).get("resourceVersion") or self.resource_version
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.events.put((self, kind, obj))
        return True

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()  # unblocks the thread's read
            except Exception:  # noqa: BLE001 - best effort on a daemon thread
                pass


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _finished(job: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def job_state(job: dict[str, Any]) -> Observed:
    """A Job (as the API returns it) -> Observed. Terminal conditions first (Complete, Failed, and
    SuccessCriteriaMet / FailureTarget, which 1.31+ set before the pods have stopped; a Job the
    reconcile loop failed for a pod that could not start counts as failed at once), then suspension
    (Kueue has not admitted it), then pods."""
    meta, spec, status = job.get("metadata") or {}, job.get("spec") or {}, job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    started = _timestamp(status.get("startTime"))
    failed, active = status.get("failed") or 0, status.get("active") or 0
    # Pods started: the failed ones, plus the running or succeeded one.
    attempts = failed + (1 if active or status.get("succeeded") else 0)
    name = meta.get("name")
    pod = f"job/{name}" if name else None

    def observed(
        state: JobState, reason: str | None = None, message: str | None = None, finished: float | None = None
    ) -> Observed:
        return Observed(state, reason, message, started, finished, pod, attempts)

    for kind in ("Complete", "SuccessCriteriaMet"):
        if kind in conditions:
            done = _timestamp(status.get("completionTime")) or _timestamp(
                conditions[kind].get("lastTransitionTime")
            )
            return observed(JobState.SUCCEEDED, finished=done)
    ours = (meta.get("annotations") or {}).get(FAILED_ANNOTATION)
    if ours:
        reason, _, message = ours.partition(": ")
        when = conditions.get("Failed", conditions.get("FailureTarget", {})).get("lastTransitionTime")
        return observed(JobState.FAILED, reason, message or None, _timestamp(when))
    for kind in ("Failed", "FailureTarget"):
        if kind in conditions:
            condition = conditions[kind]
            return observed(
                JobState.FAILED,
                condition.get("reason") or "Failed",
                condition.get("message"),
                _timestamp(condition.get("lastTransitionTime")),
            )
    if spec.get("suspend") or "Suspended" in conditions:
        queued = KUEUE_QUEUE_LABEL in (meta.get("labels") or {})
        return observed(
            JobState.PENDING,
            "Suspended",
            "suspended (waiting for Kueue admission)" if queued else "suspended",
        )
    if active:
        ready = status.get("ready")
        if ready == 0:
            return observed(
                JobState.PENDING, "PodsStarting", f"{active} pod(s) starting (scheduling, image pull)"
            )
        return observed(JobState.RUNNING)
    if failed:
        return observed(JobState.PENDING, "Retrying", f"{failed} failed pod(s); the next one is starting")
    return observed(JobState.PENDING, "Created", "waiting for its pod to be created")


def _pods_not_ready(job: dict[str, Any]) -> bool:
    """Whether the Job has pods that have not become ready (the only ones that can be stuck)."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    if _finished(job) or spec.get("suspend"):
        return False
    active = status.get("active") or 0
    ready = status.get("ready")
    return active > 0 and (ready is None or ready < active)


def pod_problem(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the pod cannot start by itself: a container waiting for one of
    POD_PROBLEMS, or a pod the scheduler found no node for (Unschedulable)."""
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in POD_PROBLEMS:
            return waiting["reason"], (waiting.get("message") or "").strip()
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return "Unschedulable", (condition.get("message") or "").strip()
    return None


def _pod_rank(pod: dict[str, Any]) -> tuple[int, str]:
    """Which of a Job's pods to read: rank 0 of a multi-node phase (it holds the progress lines), then
    the latest attempt."""
    index = (pod["metadata"].get("labels") or {}).get(COMPLETION_INDEX_LABEL, "0")
    return (1 if index == "0" else 0, pod["metadata"].get("creationTimestamp") or "")


def _summary(observed: Observed) -> tuple[Any, ...]:
    return (observed.state, observed.reason, observed.message, observed.attempts)


class KubernetesBackend(Backend):
    name = "kubernetes"

    def __init__(
        self,
        settings: ClusterSettings,
        store_uri: str,
        *,
        api: KubeApi | None = None,
        in_cluster: bool | None = None,
        controller: bool = False,
    ):
        """`controller`: this backend drives the reconcile loop, so it rides out API-server outages
        (`apiOutageSeconds`) and fails phases whose pods cannot start (`podProblemGraceSeconds`);
        otherwise (status, logs, cancel) it only reports, and gives up on an unreachable server at once."""
        self.settings = settings
        self.namespace = settings.namespace
        self.store_uri = store_uri
        self.store_id = store_id(store_uri)
        self.controller = controller
        if api is None:
            configuration = cluster_configuration(in_cluster)
            if configuration is None:
                raise XstiltsError(
                    "no Kubernetes cluster configured: no kubeconfig (KUBECONFIG or ~/.kube/config) and not "
                    "running in a pod; point KUBECONFIG at your cluster or use --backend local"
                )
            outage = settings.api_outage_seconds if controller else 0.0
            api = KubeApi.from_configuration(configuration, self.namespace, outage_seconds=outage)
        self.api = api
        self.clock = api.clock
        self.selector = f"{STORE_LABEL}={self.store_id},{ADDRESS_LABEL}"
        # The reconcile loop's caches, kept current by watches (None: list on the next pass).
        self._jobs: dict[str, dict[str, Any]] | None = None  # this store's phase Jobs by name
        self._pods: dict[str, dict[str, Any]] | None = None  # its unfinished phase pods by name
        self._versions: dict[str, str | None] = {}  # resource -> the resourceVersion of its list
        self._watches: dict[str, Watch] = {}
        self._events: queue.Queue[Any] = queue.Queue()  # what every watch delivers
        self._problem_since: dict[str, float] = {}  # Job uid -> when its pod was first seen stuck
        self._conflicts: dict[str, Observed] = {}  # address -> a Job of its name from another store
        self._errors: dict[str, str | None] = {}  # failed Job uid -> its pod's last error line, once read
        self._errors_later: set[str] = set()  # failed Job uids whose pod had not stopped yet: once finished
        self.passes = 0

    # ---- the caches ------------------------------------------------------------------------------
    def _relist(self) -> None:
        self._stop_watch("jobs")
        items, self._versions["jobs"] = self.api.list_with_version("jobs", self.selector)
        self._jobs = {job["metadata"]["name"]: job for job in items}

    def _list_pods(self) -> list[dict[str, Any]]:
        items, version = self.api.list_with_version("pods", self.selector, field_selector=UNFINISHED_PODS)
        if self.controller:
            self._stop_watch("pods")
            self._pods, self._versions["pods"] = {pod["metadata"]["name"]: pod for pod in items}, version
        return items

    def _stop_watch(self, resource: str | None = None) -> None:
        for name in [resource] if resource else list(self._watches):
            watch = self._watches.pop(name, None)
            if watch is not None:
                watch.stop()

    def _start_watches(self) -> None:
        for resource, cache in (("jobs", self._jobs), ("pods", self._pods)):
            if cache is not None and resource not in self._watches:
                field_selector = UNFINISHED_PODS if resource == "pods" else None
                self._watches[resource] = Watch(
                    self.api,
                    resource,
                    self.selector,
                    self._versions.get(resource),
                    self._events,
                    field_selector,
                )

    def _remember(self, job: dict[str, Any]) -> None:
        if self._jobs is not None and (job["metadata"].get("labels") or {}).get(STORE_LABEL) == self.store_id:
            self._jobs[job["metadata"]["name"]] = job

    def _apply(self, item: Any) -> bool:
        """Apply one watch item to its cache; True when a Job's state or a pod's problem changed."""
        watch, *rest = item
        resource = watch.resource
        if self._watches.get(resource) is not watch:
            return False  # from a watch replaced since (after a new list)
        if isinstance(rest[0], XstiltsError):
            self._watches.pop(resource, None)
            raise rest[0]
        if rest[0] is _EXPIRED:
            self._watches.pop(resource, None)
            setattr(self, f"_{resource}", None)  # the next pass lists again
            return True
        kind, obj = rest
        cache = self._jobs if resource == "jobs" else self._pods
        if cache is None:
            return False
        name = obj["metadata"]["name"]
        known = cache.pop(name, None) if kind == "DELETED" else cache.get(name)
        if kind != "DELETED":
            cache[name] = obj
        if resource == "pods":
            return (pod_problem(known) if known else None) != (
                None if kind == "DELETED" else pod_problem(obj)
            )
        if kind == "DELETED" or known is None:
            return True
        return _summary(job_state(known)) != _summary(job_state(obj))

    def _drain(self) -> None:
        while True:
            try:
                self._apply(self._events.get_nowait())
            except queue.Empty:
                return

    # ---- submit --------------------------------------------------------------------------------
    def submit(self, phase: Phase, objects: list[Any]) -> bool:
        job, services = to_dict(objects[0]), [to_dict(o) for o in objects[1:]]
        name = job["metadata"]["name"]
        created = self.api.create("jobs", job)
        if created is None:
            existing = self.api.get("jobs", name)
            if existing is None:
                return False  # deleted since: the next pass submits it again
            theirs = (existing["metadata"].get("labels") or {}).get(STORE_LABEL)
            if theirs != self.store_id:
                self._conflicts[phase.address] = Observed(
                    JobState.FAILED,
                    "NameConflict",
                    f"Job {name} exists but does not belong to this store ({STORE_LABEL}={theirs}, "
                    f"expected {self.store_id}); delete it: kubectl -n {self.namespace} delete job {name}",
                )
                return False
            self._remember(existing)
            if services:  # a controller stopped between the two creates would have left no Service
                self._create_services(services, existing)
            return False
        self._remember(created)
        self._create_services(services, created)
        return True

    def _create_services(self, services: list[dict[str, Any]], job: dict[str, Any]) -> None:
        # Owned by the Job: deleted with it (by its TTL, or `cancel`). No blockOwnerDeletion, which
        # would need an extra permission on the Job's finalizers.
        owner = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job["metadata"]["name"],
            "uid": job["metadata"]["uid"],
            "controller": False,
        }
        for service in services:
            body = {**service, "metadata": {**service["metadata"], "ownerReferences": [owner]}}
            self.api.create("services", body)

    # ---- observe -------------------------------------------------------------------------------
    def observe(self, sweep: str) -> dict[str, Observed]:
        """This store's phase Jobs by address (phases shared with the store's other sweeps included),
        from the cache the watch keeps current; a list on the first pass and after an expiry."""
        self.passes += 1
        self._drain()
        if self._jobs is None:
            self._relist()
        assert self._jobs is not None
        now = self.clock()
        stuck = self._stuck_pods() if any(map(_pods_not_ready, self._jobs.values())) else {}
        observed: dict[str, Observed] = {}
        for name, job in list(self._jobs.items()):
            address = (job["metadata"].get("labels") or {}).get(ADDRESS_LABEL)
            if not address:
                continue
            state = job_state(job)
            uid = job["metadata"].get("uid", name)
            problem = stuck.get(name) if state.state is JobState.PENDING else None
            if problem is None:
                self._problem_since.pop(uid, None)
            else:
                since = self._problem_since.setdefault(uid, now)
                state = self._stuck(job, state, problem, now - since)
            observed[address] = state
        self._add_error_lines(observed)
        for address, conflict in self._conflicts.items():
            observed.setdefault(address, conflict)
        return observed

    def _add_error_lines(self, observed: dict[str, Observed]) -> None:
        """Append the last error line of each failed Job's pod log to its message, as the local backend
        does. Read once per failure: one list of the store's failed pods in a pass that sees new
        failures, then one log read per failed Job; nothing for running or succeeded Jobs. A Job failing
        (FailureTarget, such as a deadline) before its pod has stopped is looked at once more, finished."""
        assert self._jobs is not None
        failed = {}  # Job name -> (uid, address)
        for name, job in self._jobs.items():
            meta = job["metadata"]
            address = (meta.get("labels") or {}).get(ADDRESS_LABEL)
            # A Job the loop failed for a pod that could not start: its pod printed nothing.
            ours = FAILED_ANNOTATION in (meta.get("annotations") or {})
            if address in observed and observed[address].state is JobState.FAILED and not ours:
                failed[name] = (meta.get("uid", name), address)
        unread = {
            name
            for name, (uid, _) in failed.items()
            if uid not in self._errors and (uid not in self._errors_later or _finished(self._jobs[name]))
        }
        if unread:
            pods: dict[str, dict[str, Any]] = {}
            for pod in self.api.list("pods", self.selector, field_selector=FAILED_PODS):
                job = (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
                if job in unread and (job not in pods or _pod_rank(pod) > _pod_rank(pods[job])):
                    pods[job] = pod
            for name in unread:
                pod, uid = pods.get(name), failed[name][0]
                if pod is None and not _finished(self._jobs[name]):
                    self._errors_later.add(uid)  # its pod is still stopping
                    continue
                self._errors[uid] = last_error_line_of(self._log_tail(pod) if pod is not None else [])
                self._errors_later.discard(uid)
        for uid, address in failed.values():
            error = self._errors.get(uid)
            if error:
                state = observed[address]
                message = f"{state.message}: {error}" if state.message else error
                observed[address] = replace(state, message=message)

    def _log_tail(self, pod: dict[str, Any]) -> list[str]:
        """The failed pod's log tail; [] (with a warning) when it cannot be read, such as a Role
        without pods/log: the phase's failure shows without its error line."""
        name = pod["metadata"]["name"]
        try:
            return self.api.log_tail(name)
        except XstiltsError as exc:
            log.warning("the last error line of pod %s is not shown: %s", name, exc)
            return []

    def _stuck_pods(self) -> dict[str, tuple[str, str, str]]:
        """Job name -> (reason, message, pod) for this store's unfinished pods that cannot start: in
        the reconcile loop from the pods it watches (listed once, when pods first start), else listed."""
        pods = self._list_pods() if self._pods is None or not self.controller else list(self._pods.values())
        out: dict[str, tuple[str, str, str]] = {}
        for pod in pods:
            problem = pod_problem(pod)
            job = (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
            if problem and job:
                out[job] = (*problem, pod["metadata"]["name"])
        return out

    def _stuck(
        self, job: dict[str, Any], state: Observed, problem: tuple[str, str, str], age: float
    ) -> Observed:
        reason, message, pod = problem
        grace = self.settings.pod_problem_grace_seconds
        detail = f"{reason}: {message}" if message else reason
        if not self.controller or grace is None or age < grace:
            acting = grace is not None and self.controller
            after = f"; the phase fails if this lasts {grace}s" if acting else ""
            return replace(state, reason=reason, message=f"pod {pod}: {detail}{after}")
        # Fail the Job for everyone (status, a restarted controller): a deadline that has passed makes
        # the Job controller fail it and stop the pod; the annotation keeps the real reason.
        note = f"{reason}: pod {pod} could not start for {age:.0f}s (podProblemGraceSeconds): {detail}"
        patched = self.api.patch(
            "jobs",
            job["metadata"]["name"],
            {"metadata": {"annotations": {FAILED_ANNOTATION: note}}, "spec": {"activeDeadlineSeconds": 1}},
        )
        if patched is not None:
            self._remember(patched)
            return job_state(patched)
        return replace(state, state=JobState.FAILED, reason=reason, message=note.partition(": ")[2])

    def poll(self, timeout: float) -> None:
        """Wait until a Job of this store changes state or a pod's problem appears or goes (then a
        little longer, to take the events that follow in the same pass), at most `timeout` seconds,
        and no longer than until a stuck pod's grace period ends."""
        deadline = self.clock() + timeout
        grace = self.settings.pod_problem_grace_seconds
        if grace is not None and self._problem_since:
            deadline = min(deadline, min(self._problem_since.values()) + grace + 0.1)
        if self._jobs is None:
            self.api.sleep(max(0.0, deadline - self.clock()))
            return
        self._start_watches()
        changed = False
        while True:
            left = deadline - self.clock()
            if left <= 0:
                return
            try:
                item = self._events.get(timeout=left)
            except queue.Empty:
                return
            if self._apply(item) and not changed:
                changed = True
                deadline = min(deadline, self.clock() + SETTLE_SECONDS)

    # ---- logs ----------------------------------------------------------------------------------
    def _newest_pod(self, name: str) -> dict[str, Any] | None:
        pods = self.api.list("pods", f"{JOB_NAME_LABEL}={name}")
        if not pods:
            return None

        return max(pods, key=_pod_rank)

    def logs(self, phase: Phase, follow: bool = False) -> Iterator[str] | None:
        """The log of the Job's newest pod while it exists; None otherwise (the CLI then reads the
        copy in the store). A pod still waiting to start has no log yet: None, or with `follow` wait."""
        name = job_name(phase.kind, phase.address, self.store_uri)
        pod = self._newest_pod(name)
        while pod is not None and (pod.get("status") or {}).get("phase") == "Pending":
            if not follow:
                return None
            time.sleep(2.0)
            pod = self._newest_pod(name)
        if pod is None:
            return None
        return self.api.log_lines(pod["metadata"]["name"], follow)

    # ---- cancel --------------------------------------------------------------------------------
    def _sweep_selector(self, sweep: str) -> str:
        return f"{SWEEP_LABEL}={label_value(sweep)},{STORE_LABEL}={self.store_id}"

    def cancel(
        self, sweep: str, addresses: Collection[str] = (), keep: Callable[[], Collection[str]] = tuple
    ) -> int:
        """Delete the sweep's unfinished Jobs of this store (the in-cluster controller's too, first, so
        that it does not resubmit them) and their Services. Finished Jobs stay for their logs; done
        phases stay done; phases shared with another sweep stay for it. The Jobs are found by their
        labels (`addresses` is not needed) and `keep` is never asked."""
        jobs = self.api.list("jobs", self._sweep_selector(sweep))
        jobs.sort(key=lambda j: ADDRESS_LABEL in (j["metadata"].get("labels") or {}))
        return self._delete(sweep, [j["metadata"]["name"] for j in jobs if not _finished(j)])

    retries_in_loop = False  # `retry_failed` deletes the failed Jobs up front

    def retry_failed(self, sweep: str, done: Callable[[str], bool]) -> int:
        return self.delete_failed(sweep, done=done)

    def delete_failed(self, sweep: str, done: Callable[[str], bool] | None = None) -> int:
        """Delete the sweep's failed phase Jobs of this store, so that the next pass submits those phases
        again (after the cause is fixed); with `done` (address -> whether the store has the phase's
        `_COMPLETE` marker), also the succeeded Jobs whose phase the store does not have. Their logs
        stay in the store. Returns how many were deleted."""
        jobs = self.api.list("jobs", f"{self._sweep_selector(sweep)},{ADDRESS_LABEL}")
        names = []
        for job in jobs:
            state = job_state(job).state
            address = (job["metadata"].get("labels") or {}).get(ADDRESS_LABEL, "")
            if state is JobState.FAILED or (
                state is JobState.SUCCEEDED and done is not None and not done(address)
            ):
                names.append(job["metadata"]["name"])
        return self._delete(sweep, names)

    def _delete(self, sweep: str, names: list[str]) -> int:
        deleted = {name for name in names if self.api.delete("jobs", name)}
        if deleted:
            for service in self.api.list("services", self._sweep_selector(sweep)):
                if service["metadata"]["name"] in deleted:
                    self.api.delete("services", service["metadata"]["name"])
            self._stop_watch("jobs")
            self._jobs = None  # the next pass lists again
        return len(deleted)

    def close(self) -> None:
        self._stop_watch()
        self.api.close()


def submit_controller(
    sweep_file_text: str,
    sweep_name: str,
    store_uri: str,
    settings: ClusterSettings,
    *,
    api: KubeApi | None = None,
) -> str:
    """Create (or refresh) the in-cluster controller of a sweep and store: its ConfigMap with the sweep
    file, and its Job. Idempotent: a running controller is left alone; a finished one is replaced, so
    submitting again after a failure starts a new pass. Returns the Job's name."""
    from xstilts.render.controller import render_controller

    own = api is None
    if api is None:
        configuration = cluster_configuration()
        if configuration is None:
            raise XstiltsError("no Kubernetes cluster configured: point KUBECONFIG at your cluster")
        api = KubeApi.from_configuration(configuration, settings.namespace)
    try:
        config_map, job = (
            to_dict(o) for o in render_controller(sweep_file_text, sweep_name, store_uri, settings)
        )
        if api.create("configmaps", config_map) is None:
            api.replace("configmaps", config_map)
        name = job["metadata"]["name"]
        for attempt in range(10):
            if api.create("jobs", job) is not None:
                return name
            existing = api.get("jobs", name)
            if existing is not None and not _finished(existing):
                return name
            if existing is not None:
                api.delete("jobs", name)
            if attempt:
                time.sleep(0.5)  # the deleted Job's object goes away asynchronously
        raise XstiltsError(
            f"could not replace the finished controller Job {name} in namespace {settings.namespace}"
        )
    finally:
        if own:
            api.close()
