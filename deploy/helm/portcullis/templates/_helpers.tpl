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
{{- if eq .Values.store.backend "redis" -}}
{{- include "portcullis.validateRedis" .Values.store.redis -}}
{{- end -}}
{{- end -}}

{{/* store.redis.* against the gateway's [store] rules, so a mistake fails
the install instead of the pods. */}}
{{- define "portcullis.validateRedis" -}}
{{- $mode := .mode -}}
{{- range $key := list "password" "sentinelPassword" -}}
{{- if index $ $key -}}
{{- fail (printf "store.redis.%s is not a value of this chart: passwords come from a Secret (store.redis.existingSecret with passwordKey and sentinelPasswordKey), so they never land in the ConfigMap" $key) -}}
{{- end -}}
{{- end -}}
{{- if not (has $mode (list "standalone" "sentinel" "cluster")) -}}
{{- fail (printf "store.redis.mode is %q: it is \"standalone\", \"sentinel\" or \"cluster\"" (toString $mode)) -}}
{{- end -}}
{{- if and (eq $mode "sentinel") (not .sentinelMaster) -}}
{{- fail "store.redis.mode is \"sentinel\" but store.redis.sentinelMaster is empty: set it to the name the Sentinels watch the master under (e.g. mymaster)" -}}
{{- end -}}
{{- if and (ne $mode "standalone") (not .urls) -}}
{{- fail (printf "store.redis.mode is %q but store.redis.urls is empty: list the %s (redis://host:port or rediss://host:port)" $mode (ternary "Sentinels" "seed nodes" (eq $mode "sentinel"))) -}}
{{- end -}}
{{- if and (eq $mode "standalone") .urls -}}
{{- fail "store.redis.urls is set but store.redis.mode is \"standalone\": one server goes in store.redis.url; urls are for mode sentinel or cluster" -}}
{{- end -}}
{{- if ne $mode "sentinel" -}}
{{- range $key := list "sentinelMaster" "sentinelUsername" "sentinelPasswordKey" -}}
{{- if index $ $key -}}
{{- fail (printf "store.redis.%s is set but store.redis.mode is %q: it is only used with mode sentinel" $key $mode) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .sentinelPasswordKey (not .existingSecret) -}}
{{- fail "store.redis.sentinelPasswordKey is set but store.redis.existingSecret is empty: name the Secret that holds the key" -}}
{{- end -}}
{{- with .tls.existingSecret -}}
{{- range $u := (eq $mode "standalone" | ternary (list $.url) $.urls) -}}
{{- if not (hasPrefix "rediss://" $u) -}}
{{- fail (printf "store.redis.tls.existingSecret is set but %q is not a rediss:// URL: the TLS files are only used with rediss://" $u) -}}
{{- end -}}
{{- end -}}
{{- if ne (empty $.tls.certFilename) (empty $.tls.certKeyFilename) -}}
{{- fail "store.redis.tls.certFilename and store.redis.tls.certKeyFilename go together: a client certificate and its private key" -}}
{{- end -}}
{{- if and (not $.tls.certCAFilename) (not $.tls.certFilename) -}}
{{- fail "store.redis.tls.existingSecret is set but names no file: set store.redis.tls.certCAFilename, or certFilename and certKeyFilename" -}}
{{- end -}}
{{- end -}}
{{- if and (not (kindIs "invalid" .waitReplicas)) (not (regexMatch "^[0-9]+$" (toString .waitReplicas))) -}}
{{- fail (printf "store.redis.waitReplicas is %q: it is a whole number, 0 or more (or ~ for the gateway's default)" (toString .waitReplicas)) -}}
{{- end -}}
{{- end -}}

{{/* store.redis.tls.existingSecret when the store is Redis, else "". */}}
{{- define "portcullis.redisTlsSecret" -}}
{{- if eq .Values.store.backend "redis" -}}
{{- .Values.store.redis.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Where the pod mounts store.redis.tls.existingSecret. */}}
{{- define "portcullis.redisTlsDir" -}}
/etc/portcullis-redis-tls
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
{{- with .Values.store.redis }}
mode = {{ .mode | quote }}
{{- if eq .mode "standalone" }}
url = {{ .url | quote }}
{{- else }}
urls = [{{ range $i, $u := .urls }}{{ if $i }}, {{ end }}{{ $u | quote }}{{ end }}]
{{- end }}
{{- if eq .mode "sentinel" }}
sentinel_master = {{ .sentinelMaster | quote }}
{{- end }}
{{- with .username }}
username = {{ . | quote }}
{{- end }}
{{- if and .existingSecret .passwordKey }}
password_env = "REDIS_PASSWORD"
{{- end }}
{{- with .sentinelUsername }}
sentinel_username = {{ . | quote }}
{{- end }}
{{- if and .existingSecret .sentinelPasswordKey }}
sentinel_password_env = "REDIS_SENTINEL_PASSWORD"
{{- end }}
{{- if .tls.existingSecret }}
{{- with .tls.certCAFilename }}
tls_ca_file = {{ printf "%s/%s" (include "portcullis.redisTlsDir" $) . | quote }}
{{- end }}
{{- with .tls.certFilename }}
tls_cert_file = {{ printf "%s/%s" (include "portcullis.redisTlsDir" $) . | quote }}
{{- end }}
{{- with .tls.certKeyFilename }}
tls_key_file = {{ printf "%s/%s" (include "portcullis.redisTlsDir" $) . | quote }}
{{- end }}
{{- end }}
key_prefix = {{ .keyPrefix | quote }}
connect_timeout = {{ .connectTimeout | quote }}
response_timeout = {{ .responseTimeout | quote }}
{{- if not (kindIs "invalid" .waitReplicas) }}
wait_replicas = {{ int .waitReplicas }}
{{- end }}
{{- with .waitTimeout }}
wait_timeout = {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{ end -}}
