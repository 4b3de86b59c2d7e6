"""The Kubernetes backend: phase Jobs on a cluster, through the official `kubernetes` client.

Stateless like the reconcile loop above it: one label-selected list of the sweep's Jobs per pass
(`xstilts.io/sweep=<sweep>`), Job conditions as the state, deterministic names so that a create
answered 409 AlreadyExists means "already submitted".

A phase can be shared with another sweep (same content address), whose label its Job then carries.
The list does not find such a Job; its create answers 409, and the backend remembers the address
and reads that Job by name on later passes. A restarted controller learns the same from its first
pass's 409s. `cancel` leaves such Jobs alone: the other sweep still needs them.

Every call is retried with truncated exponential backoff on 5xx/429 and connection errors (as
Metaflow's `k8s_retry`); an unreachable or refusing API server becomes one `XstiltsError` line that
names the server and namespace.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from xstilts.backends.base import Backend, JobState, Observed
from xstilts.errors import XstiltsError
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict
from xstilts.render.job import CONTAINER, JOB_NAME_LABEL, KUEUE_QUEUE_LABEL
from xstilts.render.names import job_name, label_value
from xstilts.render.settings import ClusterSettings

SWEEP_LABEL = "xstilts.io/sweep"
ADDRESS_LABEL = "xstilts.io/address"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
PAGE = 500  # list page size: one call for sweeps up to this many Jobs
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RESOURCES = {
    # resource: (api attribute, method suffix)
    "jobs": ("batch", "namespaced_job"),
    "pods": ("core", "namespaced_pod"),
    "services": ("core", "namespaced_service"),
    "configmaps": ("core", "namespaced_config_map"),
}


class KubeApi:
    """The few API calls xstilts makes: JSON in and out (no model deserialisation, which is slow for
    thousands of Jobs), retries, and one-line errors."""

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
        sleep: Callable[[float], None] = time.sleep,
    ):
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.retries, self.connect_retries = retries, connect_retries
        self.backoff, self.max_backoff, self.timeout = backoff, max_backoff, timeout
        self.sleep = sleep

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
    def _failure(self, action: str, exc: Exception) -> XstiltsError:
        from kubernetes.client.exceptions import ApiException

        where = f"the Kubernetes API server at {self.host} (namespace {self.namespace})"
        if not isinstance(exc, ApiException):
            text = str(getattr(exc, "reason", None) or exc)
            errno = re.search(r"\[Errno -?\d+\][^\"')]*", text)
            reason = errno.group(0).strip() if errno else (text.splitlines() or [type(exc).__name__])[0][:200]
            return XstiltsError(
                f"cannot reach {where} to {action}: {reason}; check KUBECONFIG and the current context"
            )
        detail = _status_message(exc)
        if exc.status in (401, 403):
            return XstiltsError(
                f"{where} refused to {action}: {exc.status} {exc.reason}: {detail}; check your credentials, "
                "or the ServiceAccount and the chart's Role (rbac.create)"
            )
        return XstiltsError(f"{where} failed to {action}: {exc.status} {exc.reason}: {detail}")

    def call(
        self, action: str, fn: Callable[..., Any], *args: Any, ok: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """`fn(*args, **kwargs)` with retries. Statuses in `ok` come back as the ApiException itself."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", self.timeout)
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except ApiException as exc:
                if exc.status in ok:
                    return exc
                if exc.status not in RETRY_STATUSES or attempt >= self.retries:
                    raise self._failure(action, exc) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt >= self.connect_retries:
                    raise self._failure(action, exc) from None
            self.sleep(min(self.max_backoff, self.backoff * 2**attempt))
            attempt += 1

    # ---- resources -------------------------------------------------------------------------------
    def _method(self, verb: str, resource: str) -> Callable[..., Any]:
        api, suffix = _RESOURCES[resource]
        return getattr(getattr(self, api), f"{verb}_{suffix}")

    def list(self, resource: str, selector: str) -> list[dict[str, Any]]:
        """Every object of `resource` matching the label selector (pages of PAGE)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            response = self.call(
                f"list {resource} ({selector})",
                self._method("list", resource),
                self.namespace,
                label_selector=selector,
                limit=PAGE,
                _continue=token,
                _preload_content=False,
            )
            page = _json(response)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        response = self.call(
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
            f"replace {resource[:-1]} {name}",
            self._method("replace", resource),
            name,
            self.namespace,
            body,
            _preload_content=False,
        )
        return _json(response)

    def delete(self, resource: str, name: str) -> bool:
        """Delete with background propagation (the Job's pods go too). False when it was already gone."""
        from kubernetes.client import V1DeleteOptions

        body = V1DeleteOptions(propagation_policy="Background")
        response = self.call(
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

    def log_lines(self, pod: str, follow: bool) -> Iterator[str]:
        response = self.call(
            f"read the log of pod {pod}",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            container=CONTAINER,
            follow=follow,
            _preload_content=False,
            _request_timeout=None if follow else self.timeout,
        )
        return _lines(response)


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
    SuccessCriteriaMet / FailureTarget, which 1.31+ set before the pods have stopped), then suspension
    (Kueue has not admitted it), then pods."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    started = _timestamp(status.get("startTime"))
    failed, active = status.get("failed") or 0, status.get("active") or 0
    # Pods started: the failed ones, plus the running or succeeded one.
    attempts = failed + (1 if active or status.get("succeeded") else 0)
    name = (job.get("metadata") or {}).get("name")
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
        queued = KUEUE_QUEUE_LABEL in ((job.get("metadata") or {}).get("labels") or {})
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


class KubernetesBackend(Backend):
    name = "kubernetes"

    def __init__(
        self, settings: ClusterSettings, *, api: KubeApi | None = None, in_cluster: bool | None = None
    ):
        from xstilts.render.release import cluster_configuration

        self.settings = settings
        self.namespace = settings.namespace
        if api is None:
            configuration = cluster_configuration(in_cluster)
            if configuration is None:
                raise XstiltsError(
                    "no Kubernetes cluster configured: no kubeconfig (KUBECONFIG or ~/.kube/config) and not "
                    "running in a pod; point KUBECONFIG at your cluster or use --backend local"
                )
            api = KubeApi.from_configuration(configuration, self.namespace)
        self.api = api
        # Phases whose Job exists under another sweep's label (found through a 409): address -> Job name.
        self.adopted: dict[str, str] = {}

    # ---- submit --------------------------------------------------------------------------------
    def submit(self, phase: Phase, objects: list[Any]) -> bool:
        job, services = to_dict(objects[0]), [to_dict(o) for o in objects[1:]]
        created = self.api.create("jobs", job)
        if created is None:
            self.adopted[phase.address] = job["metadata"]["name"]
            if services:  # a controller stopped between the two creates would have left no Service
                existing = self.api.get("jobs", job["metadata"]["name"])
                if existing is not None:
                    self._create_services(services, existing)
            return False
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
        selector = f"{SWEEP_LABEL}={label_value(sweep)},{ADDRESS_LABEL}"
        observed: dict[str, Observed] = {}
        for job in self.api.list("jobs", selector):
            address = (job["metadata"].get("labels") or {}).get(ADDRESS_LABEL)
            if address:
                observed[address] = job_state(job)
        for address, name in list(self.adopted.items()):
            if address in observed:
                continue
            job = self.api.get("jobs", name)
            if job is None:  # deleted (TTL, cancel): forget it; the store says whether it finished
                del self.adopted[address]
            else:
                observed[address] = job_state(job)
        return observed

    # ---- logs ----------------------------------------------------------------------------------
    def _newest_pod(self, name: str) -> dict[str, Any] | None:
        pods = self.api.list("pods", f"{JOB_NAME_LABEL}={name}")
        if not pods:
            return None

        # Rank 0 of a multi-node phase holds the progress lines; otherwise the latest attempt.
        def key(pod: dict[str, Any]) -> tuple[int, str]:
            index = (pod["metadata"].get("labels") or {}).get(COMPLETION_INDEX_LABEL, "0")
            return (1 if index == "0" else 0, pod["metadata"].get("creationTimestamp") or "")

        return max(pods, key=key)

    def logs(self, phase: Phase, follow: bool = False) -> Iterator[str] | None:
        """The log of the Job's newest pod while it exists; None otherwise (the CLI then reads the
        copy in the store). A pod still waiting to start has no log yet: None, or with `follow` wait."""
        name = job_name(phase.kind, phase.address)
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
    def cancel(self, sweep: str) -> int:
        """Delete the sweep's unfinished Jobs (the in-cluster controller's too, first, so that it does
        not resubmit them) and their Services. Finished Jobs stay for their logs; done phases stay done."""
        jobs = self.api.list("jobs", f"{SWEEP_LABEL}={label_value(sweep)}")
        jobs.sort(key=lambda j: ADDRESS_LABEL in (j["metadata"].get("labels") or {}))
        return self._delete(sweep, [j["metadata"]["name"] for j in jobs if not _finished(j)])

    def delete_failed(self, sweep: str) -> int:
        """Delete the sweep's failed phase Jobs, so that the next pass submits those phases again
        (after the cause is fixed). Their logs stay in the store. Returns how many were deleted."""
        jobs = self.api.list("jobs", f"{SWEEP_LABEL}={label_value(sweep)},{ADDRESS_LABEL}")
        return self._delete(
            sweep, [j["metadata"]["name"] for j in jobs if job_state(j).state is JobState.FAILED]
        )

    def _delete(self, sweep: str, names: list[str]) -> int:
        deleted = {name for name in names if self.api.delete("jobs", name)}
        if deleted:
            for service in self.api.list("services", f"{SWEEP_LABEL}={label_value(sweep)}"):
                if service["metadata"]["name"] in deleted:
                    self.api.delete("services", service["metadata"]["name"])
        return len(deleted)

    def close(self) -> None:
        self.api.close()


def submit_controller(
    sweep_file_text: str,
    sweep_name: str,
    store_uri: str,
    settings: ClusterSettings,
    *,
    api: KubeApi | None = None,
) -> str:
    """Create (or refresh) the in-cluster controller of a sweep: its ConfigMap with the sweep file, and
    its Job. Idempotent: a running controller is left alone; a finished one is replaced, so submitting
    again after a failure starts a new pass. Returns the Job's name."""
    from xstilts.render.controller import render_controller
    from xstilts.render.release import cluster_configuration

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
