{{- define "sidecar.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sidecar.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sidecar.labels" -}}
{{ include "sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sidecar.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sidecar.sharded" -}}
{{- if gt (int .Values.sharding.replicas) 1 }}true{{ end -}}
{{- end -}}

{{/* Environment shared by the workload and the setup job. */}}
{{- define "sidecar.env" -}}
{{- range $key, $value := .Values.config }}
- name: SIDECAR_{{ upper $key }}
  value: {{ $value | quote }}
{{- end }}
- name: SIDECAR_MODEL_DIR
  value: /models
{{- /* Training spills the events it reads here: /tmp is an emptyDir (the root is read-only). */}}
- name: SIDECAR_TRAINING_SPILL_DIR
  value: /tmp/training
{{- with .Values.auth.existingSecret }}
{{- if $.Values.auth.apiKeyKey }}
- name: SIDECAR_API_KEY
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.auth.apiKeyKey }}}}
{{- else }}
- name: SIDECAR_USERNAME
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.auth.usernameKey }}}}
- name: SIDECAR_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.auth.passwordKey }}}}
{{- end }}
{{- end }}
{{- with .Values.notify.existingSecret }}
- name: SIDECAR_NOTIFY_AUTHORIZATION
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.notify.authorizationKey }}}}
{{- end }}
{{- if or .Values.tls.caSecret .Values.tls.caConfigMap }}
- name: SIDECAR_CA_BUNDLE
  value: /etc/sidecar/ca/{{ .Values.tls.caKey }}
{{- end }}
{{- end -}}

{{- define "sidecar.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "sidecar.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "sidecar.caVolume" -}}
{{- if .Values.tls.caSecret }}
- name: ca
  secret:
    secretName: {{ .Values.tls.caSecret }}
{{- else if .Values.tls.caConfigMap }}
- name: ca
  configMap:
    name: {{ .Values.tls.caConfigMap }}
{{- end }}
{{- end -}}
