{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "portcullis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.secretName" -}}
{{- default (include "portcullis.fullname" .) .Values.config.existingSecret -}}
{{- end -}}

{{- define "portcullis.configMapName" -}}
{{- default (include "portcullis.fullname" .) .Values.config.existingConfigMap -}}
{{- end -}}

{{/* The checks every render passes first. */}}
{{- define "portcullis.validate" -}}
{{- if not (has .Values.store.backend (list "memory" "redis")) -}}
{{- fail (printf "store.backend is %q: it is \"memory\" or \"redis\"" .Values.store.backend) -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq .Values.store.backend "memory") -}}
{{- fail (printf "replicaCount is %d but store.backend is \"memory\": the memory store lives inside one pod, so a link asked for on one replica could not be completed on another. Set store.backend=redis and store.redis.url, or replicaCount=1" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (not .Values.config.existingConfigMap) (regexMatch "(?m)^\\s*\\[\\s*(store|admin)\\s*\\]" .Values.config.configFile) -}}
{{- fail "config.configFile has a [store] or [admin] table: the chart writes those from store.* and metrics.port (or give the whole file as config.existingConfigMap)" -}}
{{- end -}}
{{- end -}}

{{/* gateway.toml: config.configFile, then the chart's [admin] and [store]. */}}
{{- define "portcullis.gatewayToml" -}}
{{ .Values.config.configFile | trim }}

# Written by the chart (values metrics.port and store.*):
[admin]
listen = {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}

[store]
backend = {{ .Values.store.backend | quote }}
{{- if eq .Values.store.backend "redis" }}
url = {{ .Values.store.redis.url | quote }}
key_prefix = {{ .Values.store.redis.keyPrefix | quote }}
connect_timeout = {{ .Values.store.redis.connectTimeout | quote }}
response_timeout = {{ .Values.store.redis.responseTimeout | quote }}
{{- end }}
{{ end -}}
