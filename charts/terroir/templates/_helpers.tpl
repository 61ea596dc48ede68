{{/* Name of the chart, or nameOverride. */}}
{{- define "terroir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: the release name when it already holds the chart's name. */}}
{{- define "terroir.fullname" -}}
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

{{- define "terroir.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "terroir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "terroir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "terroir.labels" -}}
helm.sh/chart: {{ include "terroir.chart" . }}
{{ include "terroir.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: terroir
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "terroir.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "terroir.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* registry/repository:tag, or registry/repository@digest when a digest is given. */}}
{{- define "terroir.image" -}}
{{- $ref := printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $ref .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $ref (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespace whose Platforms are reconciled; empty means every namespace (cluster scope only). */}}
{{- define "terroir.watchNamespace" -}}
{{- if .Values.watchNamespace }}
{{- .Values.watchNamespace }}
{{- else if eq .Values.rbac.scope "namespace" }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{- define "terroir.leaseName" -}}
{{- default (include "terroir.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Checks across values that the schema cannot express. */}}
{{- define "terroir.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled=true: two operators without a leader would fight over every Platform" }}
{{- end }}
{{- if and (eq .Values.rbac.scope "cluster") .Values.platformNamespaces }}
{{- fail "platformNamespaces is for rbac.scope=namespace; with rbac.scope=cluster the operator has rights in every namespace and creates the namespaces itself (--manage-namespaces)" }}
{{- end }}
{{- end }}

{{/*
Rules on Platform resources and the Events the operator records about them.
*/}}
{{- define "terroir.platformRules" -}}
- apiGroups: ["terroir.eu"]
  resources: ["platforms"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["terroir.eu"]
  resources: ["platforms/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["terroir.eu"]
  resources: ["platforms/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Rules on the kinds the engagement-platform blueprint renders into a Platform's namespaces
(blueprints/engagement-platform/templates/kubernetes/): ServiceAccounts, ConfigMaps, Services,
PersistentVolumeClaims, Deployments, StatefulSets, a DaemonSet, a CronJob (and the Jobs it
starts), NetworkPolicies and a PodDisruptionBudget. Secrets: the operator reads the ones the
platform needs and creates those it generates (database passwords, Grafana admin, DKIM key);
it never deletes one. Namespaces are added to the ClusterRole with rbac.scope=cluster.
*/}}
{{- define "terroir.workloadRules" -}}
- apiGroups: [""]
  resources: ["configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["batch"]
  resources: ["cronjobs", "jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
{{- end }}

{{/*
In the Platforms' own namespace: list the kinds the blueprint renders (never Secrets), to find
an ApplySet's members there when pruning.
*/}}
{{- define "terroir.parentNamespaceRules" -}}
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts", "persistentvolumeclaims"]
  verbs: ["list"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["list"]
- apiGroups: ["batch"]
  resources: ["cronjobs", "jobs"]
  verbs: ["list"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list"]
{{- end }}
