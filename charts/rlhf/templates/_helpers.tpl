{{/* Names and labels shared by every template. */}}
{{- define "rlhf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rlhf.fullname" -}}
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

{{- define "rlhf.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rlhf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rlhf
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "reward-model") */}}
{{- define "rlhf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rlhf.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "rlhf.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Service of the bundled NATS (templates/nats.yaml): <release>-nats, or nats.fullnameOverride. */}}
{{- define "rlhf.natsHost" -}}
{{- if .Values.nats.fullnameOverride -}}
{{- .Values.nats.fullnameOverride -}}
{{- else if contains "nats" .Release.Name -}}
{{- .Release.Name -}}
{{- else -}}
{{- printf "%s-nats" .Release.Name -}}
{{- end -}}
{{- end -}}

{{/* NATS credential and TLS files (NATS_* variables) of every container, from the mounted Secrets. */}}
{{- define "rlhf.natsAuthEnv" -}}
{{- $a := .Values.nats.auth }}
{{- if $a.existingSecret }}
{{- if $a.user }}
- name: NATS_USER
  value: {{ $a.user | quote }}
{{- end }}
{{- range $key, $env := dict "passwordKey" "NATS_PASSWORD_FILE" "tokenKey" "NATS_TOKEN_FILE" "credsKey" "NATS_CREDS" "nkeyKey" "NATS_NKEY_SEED_FILE" }}
{{- with (get $a $key) }}
- name: {{ $env }}
  value: {{ printf "/etc/rlhf/nats-auth/%s" . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- $t := .Values.nats.tls }}
{{- if $t.existingSecret }}
{{- range $key, $env := dict "caKey" "NATS_TLS_CA" "certKey" "NATS_TLS_CERT" "keyKey" "NATS_TLS_KEY" }}
{{- with (get $t $key) }}
- name: {{ $env }}
  value: {{ printf "/etc/rlhf/nats-tls/%s" . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Mounts of the NATS credential and TLS Secrets (with rlhf.natsAuthVolumes). */}}
{{- define "rlhf.natsAuthMounts" -}}
{{- if .Values.nats.auth.existingSecret }}
- { name: nats-auth, mountPath: /etc/rlhf/nats-auth, readOnly: true }
{{- end }}
{{- if .Values.nats.tls.existingSecret }}
- { name: nats-tls, mountPath: /etc/rlhf/nats-tls, readOnly: true }
{{- end }}
{{- end -}}

{{- define "rlhf.natsAuthVolumes" -}}
{{- if .Values.nats.auth.existingSecret }}
- name: nats-auth
  secret: { secretName: {{ .Values.nats.auth.existingSecret }}, defaultMode: 0440 }
{{- end }}
{{- if .Values.nats.tls.existingSecret }}
- name: nats-tls
  secret: { secretName: {{ .Values.nats.tls.existingSecret }}, defaultMode: 0440 }
{{- end }}
{{- end -}}

{{/* NATS_URL for every container: the bundled server, a Secret, or a plain external URL. */}}
{{- define "rlhf.natsEnv" -}}
{{- if .Values.nats.enabled }}
- name: NATS_URL
  value: {{ printf "nats://%s.%s.svc:4222" (include "rlhf.natsHost" .) .Release.Namespace | quote }}
{{- else if .Values.nats.external.existingSecret }}
- name: NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.nats.external.existingSecret }}
      key: {{ .Values.nats.external.urlKey }}
{{- else }}
- name: NATS_URL
  value: {{ required "nats.enabled is false: set nats.external.url or nats.external.existingSecret" .Values.nats.external.url | quote }}
{{- end }}
{{- end -}}

{{/* The Secret holding the services' bearer token: the user's, or the one the chart makes. */}}
{{- define "rlhf.authSecretName" -}}
{{- default (printf "%s-auth" (include "rlhf.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The artifact volumes' mount paths, colon-separated (RLHF_ARTIFACT_ROOTS, the env of --artifact-root). */}}
{{- define "rlhf.artifactRoots" -}}
{{- $paths := list -}}
{{- range .Values.artifacts.volumes -}}
{{- $paths = append $paths .mountPath -}}
{{- end -}}
{{- join ":" $paths -}}
{{- end }}
