{{/*
Names, labels and the pieces every tunegate pod shares (image, env, config volume, security).
*/}}

{{- define "tunegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tunegate.fullname" -}}
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

{{/* "<fullname>-<component>", e.g. tunegate-proxy. Call with (dict "root" $ "component" "proxy"). */}}
{{- define "tunegate.componentName" -}}
{{- printf "%s-%s" (include "tunegate.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tunegate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tunegate.labels" -}}
helm.sh/chart: {{ include "tunegate.chart" . }}
{{ include "tunegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tunegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tunegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component. Call with (dict "root" $ "component" "proxy"). */}}
{{- define "tunegate.componentLabels" -}}
{{ include "tunegate.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tunegate.componentSelectorLabels" -}}
{{ include "tunegate.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tunegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tunegate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tunegate.configMapName" -}}
{{- printf "%s-config" (include "tunegate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The component's image, falling back to the chart-wide one. (dict "root" $ "values" .Values.judge) */}}
{{- define "tunegate.image" -}}
{{- $image := .root.Values.image }}
{{- $own := .values.image | default dict }}
{{- $repository := $own.repository | default $image.repository }}
{{- $tag := $own.tag | default $image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* Stop the render when no Redis is configured, or when the standalone one is half-configured. */}}
{{- define "tunegate.requireRedis" -}}
{{- $standalone := .Values.redis.standalone }}
{{- if $standalone.enabled }}
{{- if .Values.redis.url }}
{{- fail "redis: set either redis.url or redis.standalone.enabled, not both" }}
{{- end }}
{{- if and $standalone.auth.enabled (not .Values.existingSecret) }}
{{- fail "redis.standalone.auth.enabled needs existingSecret with a REDIS_PASSWORD key" }}
{{- end }}
{{- else if and (not .Values.redis.url) (not .Values.existingSecret) }}
{{- fail "redis: set redis.url, or existingSecret with a TUNEGATE_REDIS__URL key, or redis.standalone.enabled to try tunegate out (an external Redis is required otherwise)" }}
{{- end }}
{{- end }}

{{/* The standalone Redis' Service name and the URL the components use to reach it. */}}
{{- define "tunegate.redisName" -}}
{{- include "tunegate.componentName" (dict "root" . "component" "redis") }}
{{- end }}

{{- define "tunegate.redisUrl" -}}
{{- $auth := ternary ":$(REDIS_PASSWORD)@" "" .Values.redis.standalone.auth.enabled }}
{{- printf "redis://%s%s:6379/0" $auth (include "tunegate.redisName" .) }}
{{- end }}

{{/* Environment shared by every container: Redis URL, then component extras. */}}
{{- define "tunegate.env" -}}
- name: HF_HUB_OFFLINE
  value: "1"
{{- if .root.Values.redis.url }}
- name: TUNEGATE_REDIS__URL
  value: {{ .root.Values.redis.url | quote }}
{{- else if .root.Values.redis.standalone.enabled }}
- name: TUNEGATE_REDIS__URL
  value: {{ include "tunegate.redisUrl" .root | quote }}
{{- end }}
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tunegate.envFrom" -}}
{{- with .Values.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}

{{- define "tunegate.volumeMounts" -}}
- name: config
  mountPath: /etc/tunegate
  readOnly: true
- name: work
  mountPath: /var/lib/tunegate
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "tunegate.volumes" -}}
- name: config
  configMap:
    name: {{ include "tunegate.configMapName" . }}
- name: work
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end }}

{{/* Pod-level fields every component shares. (dict "root" $ "values" .Values.proxy) */}}
{{- define "tunegate.podSpecCommon" -}}
serviceAccountName: {{ include "tunegate.serviceAccountName" .root }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "tunegate.volumes" .root | nindent 2 }}
{{- end }}

{{/* Pod annotations: a config checksum so pods restart when config.yaml changes. */}}
{{- define "tunegate.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}
