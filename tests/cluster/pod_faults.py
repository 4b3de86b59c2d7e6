"""Pods that cannot start, on the loopback cluster, as a scheduler and a kubelet report them.

The stand-in kubelet (kubelet.py) ignores images and node selectors and runs every pod it binds, and it
resolves a missing Secret to empty values. `PodFaults` stands in front of it for one namespace (whose
kubelet.py runs with --no-bind) and plays the scheduler and the kubelet's pre-start checks:

- a pod whose nodeSelector the kubelet's Node does not match stays unbound, with the condition
  PodScheduled=False, reason Unschedulable (what kube-scheduler reports);
- a pod whose image's registry is under `.invalid` (RFC 2606: never resolves) is bound to a Node of its
  own and reported waiting with ErrImagePull, then ImagePullBackOff;
- a pod whose env refers to a Secret that does not exist: waiting, CreateContainerConfigError;
- a pod whose image tag is `crash-loop`: waiting, CrashLoopBackOff (as a kubelet reports a container
  that keeps exiting under restartPolicy Always or OnFailure);
- every other pod is bound to kubelet.py's Node, which runs it.

Pods it holds that are being deleted are removed at once (grace 0), as a kubelet confirms a deletion.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client

INVALID_REGISTRY = ".invalid"
CRASH_LOOP_TAG = "crash-loop"


def _registry(image: str) -> str:
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _tag(image: str) -> str:
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.partition(":")[2]


class PodFaults:
    def __init__(self, api: Any, namespace: str, run_node: str, interval: float = 0.3):
        self.core = client.CoreV1Api(api)
        self.namespace, self.run_node, self.interval = namespace, run_node, interval
        self.fault_node = f"{namespace}-faults"
        self.reported: dict[str, str] = {}  # pod -> the waiting reason reported last
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-faults", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> PodFaults:
        labels = {"kubernetes.io/hostname": self.fault_node, "xstilts.io/test": "pod-faults"}
        self.core.create_node({"metadata": {"name": self.fault_node, "labels": labels}})
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.core.delete_node(self.fault_node)
        except client.ApiException:
            pass

    # ---- one pass --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception as exc:  # noqa: BLE001 - kept for the test to report, the loop goes on
                self.errors.append(repr(exc))
            self._stop.wait(self.interval)

    def _pass(self) -> None:
        node_labels = self.core.read_node(self.run_node).metadata.labels or {}
        for pod in self.core.list_namespaced_pod(self.namespace).items:
            name = pod.metadata.name
            if pod.metadata.deletion_timestamp:
                if pod.spec.node_name in (self.fault_node, None):
                    self._delete(name)
                continue
            if pod.spec.node_name == self.fault_node:
                self._report(pod)
            elif not pod.spec.node_name:
                selector = pod.spec.node_selector or {}
                if any(node_labels.get(k) != v for k, v in selector.items()):
                    self._unschedulable(pod, selector)
                elif self._fault(pod):
                    self._bind(name, self.fault_node)
                else:
                    self._bind(name, self.run_node)

    def _fault(self, pod: Any) -> tuple[str, str] | None:
        container = pod.spec.containers[0]
        image = container.image or ""
        if _registry(image).endswith(INVALID_REGISTRY):
            backoff = self.reported.get(pod.metadata.name) is not None
            reason = "ImagePullBackOff" if backoff else "ErrImagePull"
            detail = (
                f'Back-off pulling image "{image}"'
                if backoff
                else (
                    f'failed to pull and unpack image "{image}": failed to resolve reference: '
                    f"dial tcp: lookup {_registry(image)}: no such host"
                )
            )
            return reason, detail
        if _tag(image) == CRASH_LOOP_TAG:
            return (
                "CrashLoopBackOff",
                f"back-off 10s restarting failed container={container.name} pod={pod.metadata.name}",
            )
        for secret in self._secrets(container):
            try:
                self.core.read_namespaced_secret(secret, self.namespace)
            except client.ApiException as exc:
                if exc.status == 404:
                    return "CreateContainerConfigError", f'secret "{secret}" not found'
                raise
        return None

    @staticmethod
    def _secrets(container: Any) -> list[str]:
        names = [
            s.secret_ref.name for s in container.env_from or [] if s.secret_ref and not s.secret_ref.optional
        ]
        for env in container.env or []:
            ref = env.value_from.secret_key_ref if env.value_from else None
            if ref is not None and not ref.optional:
                names.append(ref.name)
        return names

    # ---- what the scheduler and the kubelet write ----------------------------------------------------
    def _bind(self, pod: str, node: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod},
            "target": {"kind": "Node", "name": node},
        }
        try:
            self.core.create_namespaced_pod_binding(pod, self.namespace, body, _preload_content=False)
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _unschedulable(self, pod: Any, selector: dict[str, str]) -> None:
        if any(
            c.type == "PodScheduled" and c.reason == "Unschedulable" for c in (pod.status.conditions or [])
        ):
            return
        message = (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector "
            f"({', '.join(f'{k}={v}' for k, v in selector.items())}). preemption: 0/1 nodes are available: "
            "1 Preemption is not helpful for scheduling."
        )
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": _now(),
        }
        self._patch_status(pod.metadata.name, {"phase": "Pending", "conditions": [condition]})
        self.reported[pod.metadata.name] = "Unschedulable"

    def _report(self, pod: Any) -> None:
        fault = self._fault(pod)
        if fault is None or self.reported.get(pod.metadata.name) == fault[0]:
            return
        reason, message = fault
        container = pod.spec.containers[0]
        status = {
            "phase": "Pending" if reason != "CrashLoopBackOff" else "Running",
            "hostIP": "127.0.0.1",
            "startTime": _now(),
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()},
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "lastTransitionTime": _now(),
                },
            ],
            "containerStatuses": [
                {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 3 if reason == "CrashLoopBackOff" else 0,
                    "started": False,
                    "state": {"waiting": {"reason": reason, "message": message}},
                }
            ],
        }
        self._patch_status(pod.metadata.name, status)
        self.reported[pod.metadata.name] = reason

    def _patch_status(self, pod: str, status: dict[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(pod, self.namespace, {"status": status})
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def _delete(self, pod: str) -> None:
        try:
            self.core.delete_namespaced_pod(pod, self.namespace, grace_period_seconds=0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
