{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "hfserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name, plus the chart name unless the release already has it. */}}
{{- define "hfserve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hfserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hfserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hfserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hfserve.labels" -}}
helm.sh/chart: {{ include "hfserve.chart" . }}
{{ include "hfserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hfserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hfserve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hfserve.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "hfserve.claimName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-cache" (include "hfserve.fullname" .)) }}
{{- end }}

{{/* Resources with the GPU limit merged in. */}}
{{- define "hfserve.resources" -}}
{{- $resources := deepCopy (.Values.resources | default dict) }}
{{- if .Values.gpu.enabled }}
{{- $limits := get $resources "limits" | default dict }}
{{- $_ := set $limits .Values.gpu.resourceName (.Values.gpu.count | int) }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
{{- toYaml $resources }}
{{- end }}

{{/* Settings the chart owns, and the checks that span several values. */}}
{{- define "hfserve.validate" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled are exclusive: KEDA creates its own HorizontalPodAutoscaler" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.drainGraceSeconds) }}
{{- fail "terminationGracePeriodSeconds must exceed drainGraceSeconds: the pod is killed before its in-flight requests can finish" }}
{{- end }}
{{- if and .Values.keda.enabled (not .Values.keda.prometheus.serverAddress) }}
{{- fail "keda.enabled needs keda.prometheus.serverAddress (the Prometheus URL KEDA queries)" }}
{{- end }}
{{- end }}

{{/* The llm-d.ai/model label value: modelLabel, else the pinned model with what a label cannot hold as "-". */}}
{{- define "hfserve.modelLabel" -}}
{{- if .Values.modelLabel }}
{{- .Values.modelLabel }}
{{- else if .Values.model }}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" .Values.model "-" | trunc 63 | trimAll "-_." | default "any" }}
{{- else }}
{{- "any" }}
{{- end }}
{{- end }}

{{- define "hfserve.inferencePoolName" -}}
{{- .Values.inferencePool.name | default (include "hfserve.fullname" .) }}
{{- end }}

{{/* The endpoint picker's name (its Deployment, Service, ServiceAccount and Role share it). */}}
{{- define "hfserve.endpointPickerName" -}}
{{- printf "%s-epp" (include "hfserve.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{- define "hfserve.endpointPickerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "hfserve.name" . }}-epp
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hfserve.endpointPickerLabels" -}}
helm.sh/chart: {{ include "hfserve.chart" . }}
{{ include "hfserve.endpointPickerSelectorLabels" . }}
app.kubernetes.io/component: endpoint-picker
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hfserve.valkeyName" -}}
{{- printf "%s-valkey" (include "hfserve.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "hfserve.valkeySelectorLabels" -}}
app.kubernetes.io/name: {{ include "hfserve.name" . }}-valkey
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hfserve.valkeyLabels" -}}
helm.sh/chart: {{ include "hfserve.chart" . }}
{{ include "hfserve.valkeySelectorLabels" . }}
app.kubernetes.io/component: responses-store
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The HFSERVE_RESPONSES_STORE entry of the container's env. */}}
{{- define "hfserve.responsesStoreEnv" -}}
{{- $store := .Values.responsesStore }}
- name: HFSERVE_RESPONSES_STORE
{{- if eq $store.backend "redis" }}
  valueFrom:
    secretKeyRef:
      {{- if $store.valkey.enabled }}
      name: {{ include "hfserve.valkeyName" . }}
      key: url
      {{- else }}
      name: {{ $store.redis.existingSecret }}
      key: {{ $store.redis.key }}
      {{- end }}
{{- else if eq $store.backend "memory" }}
  value: "memory://"
{{- else }}
  value: "sqlite:////data/hfserve/responses.sqlite3"
{{- end }}
{{- end }}
