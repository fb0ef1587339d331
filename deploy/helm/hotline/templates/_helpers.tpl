{{/* Names: <fullname>-<role> for each role's objects. */}}
{{- define "hotline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hotline.fullname" -}}
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

{{/* (dict "ctx" $ "role" "rasa") -> the role's object name */}}
{{- define "hotline.roleName" -}}
{{- printf "%s-%s" (include "hotline.fullname" .ctx) .role | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hotline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "hotline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* (dict "ctx" $ "role" "rasa"): what a role's Service, PDB and Deployment select */}}
{{- define "hotline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hotline.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "hotline.roleLabels" -}}
{{ include "hotline.labels" .ctx }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "hotline.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "hotline.secretName" -}}
{{- default (printf "%s-secrets" (include "hotline.fullname" .)) .Values.existingSecret }}
{{- end }}

{{/* (dict "ctx" $ "keys" (list ...) "optional" (list ...)): env entries read from the Secret */}}
{{- define "hotline.secretEnv" -}}
{{- $secret := include "hotline.secretName" .ctx }}
{{- range .keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
{{- range .optional }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end }}

{{/* Settings every role reads: listen on the pod's address, and the ports of the others. */}}
{{- define "hotline.commonEnv" -}}
- name: HOST
  value: "0.0.0.0"
- name: RASA_PORT
  value: {{ .Values.rasa.port | quote }}
- name: ACTION_PORT
  value: {{ .Values.actions.port | quote }}
- name: GATEWAY_PORT
  value: {{ .Values.gateway.port | quote }}
- name: AUDIOSOCKET_PORT
  value: {{ .Values.gateway.audiosocketPort | quote }}
{{- end }}

{{/* A role's extra settings (values <role>.env) */}}
{{- define "hotline.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* (dict "ctx" $ "role" "rasa"): the parts of a pod spec every role shares */}}
{{- define "hotline.podCommon" -}}
{{- $values := index .ctx.Values .role }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
