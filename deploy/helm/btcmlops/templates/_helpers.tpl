{{/* Names ----------------------------------------------------------------------------------- */}}

{{- define "btcmlops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; every object is "<fullname>-<component>". */}}
{{- define "btcmlops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "btcmlops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: call with (dict "root" $ "component" "api"). */}}
{{- define "btcmlops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "btcmlops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "btcmlops.labels" -}}
helm.sh/chart: {{ include "btcmlops.chart" .root }}
{{ include "btcmlops.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: btcmlops
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata for an object of a component: (dict "root" $ "component" "api"). */}}
{{- define "btcmlops.metadata" -}}
name: {{ include "btcmlops.fullname" .root }}-{{ .component }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "btcmlops.labels" . | nindent 2 }}
{{- end -}}

{{- define "btcmlops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "btcmlops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Images --------------------------------------------------------------------------------- */}}

{{- define "btcmlops.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The image of the containers that train or load models (trainer, api): the one with the xgboost
extra when the trainer trains XGBoost on a GPU. It has its own digest: a release that pins the default
image by digest and leaves this one to a tag would run its trainer and api on whatever the tag moved to,
so the chart refuses that. */}}
{{- define "btcmlops.modelImage" -}}
{{- if .Values.trainer.gpu.enabled -}}
{{- if .Values.image.xgboostDigest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.xgboostDigest -}}
{{- else if .Values.image.digest -}}
{{- fail "image.digest pins the default image only: with trainer.gpu.enabled, set image.xgboostDigest to the digest of the image built with the xgboost extra" -}}
{{- else -}}
{{- $tag := default (printf "%s-xgboost" (default .Chart.AppVersion .Values.image.tag)) .Values.image.xgboostTag -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- else -}}
{{- include "btcmlops.image" . -}}
{{- end -}}
{{- end -}}

{{/* Where things are ------------------------------------------------------------------------ */}}

{{- define "btcmlops.mysqlHost" -}}
{{- if .Values.demo.enabled -}}
{{- include "btcmlops.fullname" . }}-mariadb
{{- else -}}
{{- .Values.mysql.host -}}
{{- end -}}
{{- end -}}

{{- define "btcmlops.mysqlSecret" -}}
{{- if .Values.demo.enabled -}}
{{- include "btcmlops.fullname" . }}-demo
{{- else -}}
{{- required "mysql.auth.existingSecret: name the Secret with the MySQL user and password (or set demo.enabled)" .Values.mysql.auth.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "btcmlops.s3Secret" -}}
{{- if .Values.demo.enabled -}}
{{- include "btcmlops.fullname" . }}-demo
{{- else -}}
{{- required "s3.auth.existingSecret: name the Secret with the S3 access key (or set demo.enabled)" .Values.s3.auth.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "btcmlops.s3Endpoint" -}}
{{- if .Values.demo.enabled -}}
http://{{ include "btcmlops.fullname" . }}-minio:9000
{{- else -}}
{{- .Values.s3.endpointUrl -}}
{{- end -}}
{{- end -}}

{{- define "btcmlops.controlKeySecret" -}}
{{- if .Values.demo.enabled -}}
{{- include "btcmlops.fullname" . }}-demo
{{- else -}}
{{- .Values.api.controlKey.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "btcmlops.apiUrl" -}}
http://{{ include "btcmlops.fullname" . }}-api:{{ .Values.api.service.port }}
{{- end -}}

{{- define "btcmlops.trackingUri" -}}
{{- if .Values.mlflow.enabled -}}
http://{{ include "btcmlops.fullname" . }}-mlflow:{{ .Values.mlflow.service.port }}
{{- else -}}
{{- required "mlflow.trackingUri: the MLflow server to use when mlflow.enabled is false" .Values.mlflow.trackingUri -}}
{{- end -}}
{{- end -}}

{{/* Environment ----------------------------------------------------------------------------- */}}

{{/* MYSQL_USER and MYSQL_PASSWORD from the Secret, then a SQLAlchemy URL made of them
     ($(VAR) is expanded by the kubelet, so the password is in no manifest). Arg: database name. */}}
{{- define "btcmlops.env.mysqlCredentials" -}}
- name: MYSQL_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "btcmlops.mysqlSecret" . }}
      key: {{ .Values.mysql.auth.usernameKey }}
- name: MYSQL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "btcmlops.mysqlSecret" . }}
      key: {{ .Values.mysql.auth.passwordKey }}
{{- end -}}

{{- define "btcmlops.mysqlUrl" -}}
mysql+pymysql://$(MYSQL_USER):$(MYSQL_PASSWORD)@{{ include "btcmlops.mysqlHost" .root }}:{{ .root.Values.mysql.port }}/{{ .database }}?charset=utf8mb4
{{- end -}}

{{/* The price store and the registry: every btcmlops service but the client and the dashboard. */}}
{{- define "btcmlops.env.stores" -}}
{{ include "btcmlops.env.mysqlCredentials" . }}
- name: BTCMLOPS_STORE__URL
  value: {{ include "btcmlops.mysqlUrl" (dict "root" . "database" .Values.mysql.pricesDatabase) | quote }}
- name: BTCMLOPS_MLFLOW__TRACKING_URI
  value: {{ include "btcmlops.trackingUri" . | quote }}
{{- end -}}

{{- define "btcmlops.env.clock" -}}
- name: BTCMLOPS_CLOCK__START
  value: {{ .Values.clock.start | quote }}
- name: BTCMLOPS_CLOCK__SPEED
  value: {{ .Values.clock.speed | quote }}
{{- end -}}

{{- define "btcmlops.env.controlKey" -}}
{{- $secret := include "btcmlops.controlKeySecret" . -}}
{{- if $secret }}
- name: BTCMLOPS_SERVE__CONTROL_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.api.controlKey.secretKey }}
{{- end }}
{{- end -}}

{{/* The contest, model and serve settings of values.yaml (contest:, model:, serve:, by the settings'
     own names), each as BTCMLOPS_<GROUP>__<NAME>; those in .except (variable names) are left to the
     template that includes this. Arg: (dict "root" $ "except" (list ...)). */}}
{{- define "btcmlops.env.settings" -}}
{{- $except := .except | default list -}}
{{- range $group := list "contest" "model" "serve" }}
{{- range $name, $value := index $.root.Values $group }}
{{- $variable := printf "BTCMLOPS_%s__%s" (upper $group) (upper $name) }}
{{- if not (has $variable $except) }}
- name: {{ $variable }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "btcmlops.env.heartbeat" -}}
- name: BTCMLOPS_HEARTBEAT_FILE
  value: /tmp/btcmlops-heartbeat
{{- end -}}

{{/* Every btcmlops container: the read-only root file system leaves /tmp and the home directory
     (emptyDirs) as the places to write; matplotlib's cache goes to /tmp. Arg: the component's values. */}}
{{- define "btcmlops.env.common" -}}
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pods ------------------------------------------------------------------------------------ */}}

{{- define "btcmlops.podSpecCommon" -}}
serviceAccountName: {{ include "btcmlops.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "btcmlops.container.common" -}}
image: {{ include "btcmlops.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{- define "btcmlops.container.models" -}}
image: {{ include "btcmlops.modelImage" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{- define "btcmlops.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/btcmlops
{{- end -}}

{{- define "btcmlops.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: home
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{/* nodeSelector, tolerations and affinity of a component: (dict "values" .Values.feed). */}}
{{- define "btcmlops.placement" -}}
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
{{- end -}}

{{/* A liveness/readiness probe that runs `btcmlops health --heartbeat` (feed, trainer, client). */}}
{{- define "btcmlops.heartbeatProbe" -}}
exec:
  command: ["btcmlops", "health", "--heartbeat", "/tmp/btcmlops-heartbeat", "--max-age", {{ .maxAge | quote }}]
periodSeconds: {{ .period | default 30 }}
timeoutSeconds: 10
failureThreshold: {{ .failures | default 3 }}
{{- end -}}

{{- define "btcmlops.podAnnotations" -}}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
