{{/*
The chart name. Fixed (no nameOverride): `xstilts` finds its settings and Jobs by
app.kubernetes.io/name=xstilts.
*/}}
{{- define "xstilts.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name prefix; truncated to 52 characters so that suffixes such as "-settings" and
"-hf-cache" keep names within the 63-character DNS label limit.
*/}}
{{- define "xstilts.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else if contains (include "xstilts.name" .) .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "xstilts.name" .) | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "xstilts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xstilts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xstilts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "xstilts.labels" -}}
helm.sh/chart: {{ include "xstilts.chart" . }}
{{ include "xstilts.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: xstilts
{{- end }}

{{- define "xstilts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "xstilts.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference from {repository, tag, digest}: repo:tag, or repo@digest / repo:tag@digest.
Usage: include "xstilts.image" (dict "image" .Values.image "root" $)
*/}}
{{- define "xstilts.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{- define "xstilts.imagePullPolicy" -}}
{{- default "IfNotPresent" .pullPolicy }}
{{- end }}

{{/* Bucket of the store URI (s3://bucket/prefix -> bucket). */}}
{{- define "xstilts.storeBucket" -}}
{{- regexReplaceAll "^s3://([^/]+).*$" .Values.store "${1}" }}
{{- end }}

{{/* Key prefix of the store URI (s3://bucket/a/b -> a/b; empty for the bucket root). */}}
{{- define "xstilts.storePrefix" -}}
{{- regexReplaceAll "^s3://[^/]+/?" .Values.store "" | trimSuffix "/" }}
{{- end }}

{{/* "true" when this chart renders the S3 credentials Secret. */}}
{{- define "xstilts.createS3Secret" -}}
{{- $s3 := .Values.s3 }}
{{- if and $s3.accessKeyId (not $s3.secretAccessKey) }}
{{- fail "s3.accessKeyId is set but s3.secretAccessKey is empty: set both, or set s3.existingSecret" }}
{{- end }}
{{- if and $s3.secretAccessKey (not $s3.accessKeyId) }}
{{- fail "s3.secretAccessKey is set but s3.accessKeyId is empty: set both, or set s3.existingSecret" }}
{{- end }}
{{- if and .Values.s3TestServer.enabled (not $s3.existingSecret) (not $s3.accessKeyId) }}
{{- fail "s3TestServer.enabled needs credentials: set s3.accessKeyId and s3.secretAccessKey (any test values), or s3.existingSecret" }}
{{- end }}
{{- if and (not $s3.existingSecret) $s3.accessKeyId }}true{{ end }}
{{- end }}

{{/* Name of the Secret phase pods get S3 credentials from; empty when there is none. */}}
{{- define "xstilts.s3SecretName" -}}
{{- if .Values.s3.existingSecret }}
{{- .Values.s3.existingSecret }}
{{- else if eq (include "xstilts.createS3Secret" .) "true" }}
{{- printf "%s-s3" (include "xstilts.fullname" .) }}
{{- end }}
{{- end }}

{{- define "xstilts.s3TestServerName" -}}
{{- printf "%s-s3" (include "xstilts.fullname" .) }}
{{- end }}

{{/* The S3 endpoint: s3.endpointUrl, else the test server's in-cluster address when it is enabled. */}}
{{- define "xstilts.s3EndpointUrl" -}}
{{- if .Values.s3.endpointUrl }}
{{- .Values.s3.endpointUrl }}
{{- else if .Values.s3TestServer.enabled }}
{{- printf "http://%s.%s.svc:%d" (include "xstilts.s3TestServerName" .) .Release.Namespace (int .Values.s3TestServer.port) }}
{{- end }}
{{- end }}

{{- define "xstilts.hfCacheClaim" -}}
{{- if .Values.hfCache.enabled }}
{{- default (printf "%s-hf-cache" (include "xstilts.fullname" .)) .Values.hfCache.existingClaim }}
{{- end }}
{{- end }}

{{/*
dataVolumes as the settings carry them (YAML list; empty when none). Names are unique: each becomes the
pod volume data-<name>.
*/}}
{{- define "xstilts.dataVolumes" -}}
{{- $volumes := list }}
{{- $seen := dict }}
{{- range .Values.dataVolumes }}
{{- if hasKey $seen .name }}
{{- fail (printf "dataVolumes: the name %q is given twice; give each volume its own name" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- $volume := dict "name" .name "mountPath" .mountPath }}
{{- with .claimName }}{{ $_ := set $volume "claimName" . }}{{ end }}
{{- with .hostPath }}{{ $_ := set $volume "hostPath" . }}{{ end }}
{{- $volumes = append $volumes $volume }}
{{- end }}
{{- toYaml $volumes }}
{{- end }}

{{/* Pod Security Standard "restricted", for every pod the chart runs. */}}
{{- define "xstilts.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "xstilts.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 1000
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The cluster settings (settings.yaml of the settings ConfigMap). The Python model
xstilts.spec.cluster.ClusterSettings reads it (camelCase aliases, unknown keys rejected).
*/}}
{{- define "xstilts.settings" -}}
{{- $v := .Values }}
{{- $pullSecrets := list }}
{{- range $v.imagePullSecrets }}
{{- $pullSecrets = append $pullSecrets .name }}
{{- end }}
{{- $s3 := dict }}
{{- with include "xstilts.s3EndpointUrl" . }}{{ $_ := set $s3 "endpointUrl" . }}{{ end }}
{{- with include "xstilts.s3SecretName" . }}{{ $_ := set $s3 "secretName" . }}{{ end }}
{{- with $v.s3.region }}{{ $_ := set $s3 "region" . }}{{ end }}
{{- $presets := dict }}
{{- range $kind, $p := $v.presets }}
{{- $preset := dict "cpu" (toString $p.cpu) "memory" $p.memory "gpu" (int $p.gpu) "nodes" (int $p.nodes) "shmSize" $p.shmSize }}
{{- with $p.ephemeralStorage }}{{ $_ := set $preset "ephemeralStorage" . }}{{ end }}
{{- $_ := set $presets $kind $preset }}
{{- end }}
{{- $kueue := dict }}
{{- with $v.kueue.queueName }}{{ $_ := set $kueue "queueName" . }}{{ end }}
{{- $settings := dict
    "namespace" .Release.Namespace
    "image" (include "xstilts.image" (dict "image" $v.image "root" .))
    "controllerImage" (include "xstilts.image" (dict "image" $v.controllerImage "root" .))
    "imagePullPolicy" (include "xstilts.imagePullPolicy" $v.image)
    "imagePullSecrets" $pullSecrets
    "serviceAccountName" (include "xstilts.serviceAccountName" .)
    "store" $v.store
    "s3" $s3
    "nodeSelector" (default (dict) $v.nodeSelector)
    "tolerations" (default (list) $v.tolerations)
    "kueue" $kueue
    "presets" $presets
    "backoffLimit" (int64 $v.backoffLimit)
    "activeDeadlineSeconds" (int64 $v.activeDeadlineSeconds)
    "ttlSecondsAfterFinished" (ternary nil (int64 $v.ttlSecondsAfterFinished) (kindIs "invalid" $v.ttlSecondsAfterFinished))
    "apiOutageSeconds" (int64 $v.apiOutageSeconds)
    "podProblemGraceSeconds" (ternary nil (int64 $v.podProblemGraceSeconds) (kindIs "invalid" $v.podProblemGraceSeconds))
}}
{{- with include "xstilts.hfCacheClaim" . }}{{ $_ := set $settings "hfCacheClaim" . }}{{ end }}
{{- with include "xstilts.dataVolumes" . | fromYamlArray }}{{ $_ := set $settings "dataVolumes" . }}{{ end }}
{{- toYaml $settings }}
{{- end }}
