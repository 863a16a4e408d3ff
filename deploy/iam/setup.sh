#!/usr/bin/env bash
# gke-bot's Google identity, with least privilege (README "Deploy on GKE", "The bot's own permissions").
#
#   deploy/iam/setup.sh --host-project HOST --projects P1,P2 [--fix-projects P1] [options]
#
# Creates (idempotently, safe to run again after an upgrade):
#  1. the Google service account gke-bot@HOST.iam.gserviceaccount.com, and the Workload Identity
#     binding that lets the Kubernetes service account gke-bot/gke-bot act as it;
#  2. the custom role gkeBotReader (roles/gkeBotReader.yaml: exactly the bot's read permissions),
#     granted on every project of --projects;
#  3. for --fix-projects only (the projects whose binding allows fix buttons):
#     gkeBotServiceAgentFixer (getIamPolicy + setIamPolicy) granted with the IAM condition of
#     conditions/only-container-service-agent.yaml, so the bot can grant no role but
#     roles/container.serviceAgent; and gkeBotClusterFixer (container.clusters.update and the
#     operation reads) granted without condition;
#  4. with --apply-rbac: the ClusterRole/ClusterRoleBinding of deploy/cluster-rbac in every cluster
#     of --projects (needs kubectl and network access to their control planes).
#
# Options:
#   --host-project P     project of the bot's Google service account (required)
#   --cluster-project P  project of the GKE cluster the bot runs on (default: --host-project)
#   --projects P1,P2     projects the bot diagnoses (required)
#   --fix-projects P1    projects where fix buttons may change things (a subset of --projects)
#   --read-only          no fix permissions anywhere (the variant for teams that want no fix buttons)
#   --organization ORG   create the custom roles once in organization ORG (numeric id) instead of
#                        in every project
#   --account NAME       service account id (default gke-bot)
#   --namespace NS       Kubernetes namespace of the bot (default gke-bot)
#   --ksa NAME           Kubernetes service account of the bot (default gke-bot)
#   --apply-rbac         also apply deploy/cluster-rbac to every cluster of --projects
#   --dry-run            print the commands instead of running them
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
roles_dir="$here/roles"
condition_file="$here/conditions/only-container-service-agent.yaml"
rbac_dir="$(cd "$here/../cluster-rbac" && pwd)"

host="" cluster_project="" projects="" fix_projects="" read_only=0 org="" account="gke-bot"
namespace="gke-bot" ksa="gke-bot" apply_rbac=0 dry=0

die() { echo "setup.sh: $*" >&2; exit 2; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --host-project) need_value "$@"; host="$2"; shift 2 ;;
    --cluster-project) need_value "$@"; cluster_project="$2"; shift 2 ;;
    --projects) need_value "$@"; projects="$2"; shift 2 ;;
    --fix-projects) need_value "$@"; fix_projects="$2"; shift 2 ;;
    --read-only) read_only=1; shift ;;
    --organization) need_value "$@"; org="$2"; shift 2 ;;
    --account) need_value "$@"; account="$2"; shift 2 ;;
    --namespace) need_value "$@"; namespace="$2"; shift 2 ;;
    --ksa) need_value "$@"; ksa="$2"; shift 2 ;;
    --apply-rbac) apply_rbac=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -n "$host" ] || die "--host-project is required"
[ -n "$projects" ] || die "--projects is required"
cluster_project="${cluster_project:-$host}"
if [ "$read_only" = 1 ] && [ -n "$fix_projects" ]; then
  die "--read-only and --fix-projects exclude each other"
fi
project_re='^[a-z][a-z0-9-]{4,28}[a-z0-9]$'
IFS=, read -r -a project_list <<<"$projects"
IFS=, read -r -a fix_list <<<"$fix_projects"
for p in "$host" "$cluster_project" "${project_list[@]}" "${fix_list[@]}"; do
  [[ "$p" =~ $project_re ]] || die "not a project id: '$p'"
done
for p in "${fix_list[@]}"; do
  [[ ",$projects," == *",$p,"* ]] || die "fix project $p is not one of --projects"
done
[ -z "$org" ] || [[ "$org" =~ ^[0-9]+$ ]] || die "--organization takes the numeric organization id"

email="$account@$host.iam.gserviceaccount.com"

run() {  # print, then run unless --dry-run
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$dry" = 1 ] || "$@"
}
exists() {  # true when the describe-like command succeeds (never in --dry-run: everything is created)
  [ "$dry" = 0 ] && "$@" >/dev/null 2>&1
}

# Role ids and the files that define them.
reader=gkeBotReader
fixers=(gkeBotServiceAgentFixer gkeBotClusterFixer)

role_name() {  # role id, project -> the name to grant
  if [ -n "$org" ]; then echo "organizations/$org/roles/$1"; else echo "projects/$2/roles/$1"; fi
}
ensure_role() {  # role id, parent flag, parent value
  local id="$1" flag="$2" parent="$3"
  if exists gcloud iam roles describe "$id" "$flag=$parent"; then
    # a role deleted less than 7 days ago still exists (deleted: true) and must be undeleted
    if gcloud iam roles describe "$id" "$flag=$parent" --format='value(deleted)' | grep -qi true; then
      run gcloud iam roles undelete "$id" "$flag=$parent"
    fi
    run gcloud iam roles update "$id" "$flag=$parent" --file="$roles_dir/$id.yaml" --quiet
  else
    run gcloud iam roles create "$id" "$flag=$parent" --file="$roles_dir/$id.yaml" --quiet
  fi
}
roles_for() {  # project -> the role ids it needs
  echo "$reader"
  if [[ ",$fix_projects," == *",$1,"* ]]; then echo "${fixers[@]}"; fi
}

echo "== APIs the bot calls, in its own project ($host)"
run gcloud services enable container.googleapis.com cloudresourcemanager.googleapis.com \
  serviceusage.googleapis.com iam.googleapis.com compute.googleapis.com \
  policytroubleshooter.googleapis.com --project="$host"

echo "== Google service account $email and its Workload Identity binding"
if ! exists gcloud iam service-accounts describe "$email" --project="$host"; then
  run gcloud iam service-accounts create "$account" --project="$host" \
    --display-name="gke-bot" --description="gke-bot: diagnoses GKE clusters from Slack"
fi
run gcloud iam service-accounts add-iam-policy-binding "$email" --project="$host" \
  --role=roles/iam.workloadIdentityUser \
  --member="serviceAccount:$cluster_project.svc.id.goog[$namespace/$ksa]" --condition=None

echo "== Custom roles"
if [ -n "$org" ]; then
  ensure_role "$reader" --organization "$org"
  if [ -n "$fix_projects" ]; then
    for id in "${fixers[@]}"; do ensure_role "$id" --organization "$org"; done
  fi
else
  for p in "${project_list[@]}"; do
    for id in $(roles_for "$p"); do ensure_role "$id" --project "$p"; done
  done
fi

echo "== Grants"
for p in "${project_list[@]}"; do
  run gcloud projects add-iam-policy-binding "$p" --member="serviceAccount:$email" \
    --role="$(role_name "$reader" "$p")" --condition=None
  if [[ ",$fix_projects," == *",$p,"* ]]; then
    run gcloud projects add-iam-policy-binding "$p" --member="serviceAccount:$email" \
      --role="$(role_name gkeBotServiceAgentFixer "$p")" --condition-from-file="$condition_file"
    run gcloud projects add-iam-policy-binding "$p" --member="serviceAccount:$email" \
      --role="$(role_name gkeBotClusterFixer "$p")" --condition=None
  fi
done

if [ "$apply_rbac" = 1 ]; then
  echo "== Kubernetes RBAC (deploy/cluster-rbac) in every cluster of the projects"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # An overlay of deploy/cluster-rbac naming this service account, whatever its values.env says.
  cat >"$tmp/kustomization.yaml" <<KUSTOMIZATION
resources:
  - $(realpath --relative-to="$tmp" "$rbac_dir")
patches:
  - target: {kind: ClusterRoleBinding, name: gke-bot-reader}
    patch: '[{"op": "replace", "path": "/subjects/0/name", "value": "$email"}]'
KUSTOMIZATION
  if [ "$dry" = 1 ]; then
    echo "+ (rendered by kubectl kustomize $tmp)"
    kubectl kustomize "$tmp"
  fi
  failed=()
  for p in "${project_list[@]}"; do
    if [ "$dry" = 1 ]; then
      run gcloud container clusters list --project="$p" --format="value(name,location)"
      echo "+ (for each cluster) gcloud container clusters get-credentials NAME --location=LOCATION --project=$p"
      echo "+ (for each cluster) kubectl apply -k $tmp"
      continue
    fi
    while read -r name location; do
      [ -n "$name" ] || continue
      export KUBECONFIG="$tmp/kubeconfig"
      if run gcloud container clusters get-credentials "$name" --location="$location" --project="$p" \
        && run kubectl apply -k "$tmp"; then :; else failed+=("$p/$location/$name"); fi
    done < <(gcloud container clusters list --project="$p" --format="value(name,location)")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "RBAC not applied to: ${failed[*]} (unreachable control plane? apply deploy/cluster-rbac there by hand)" >&2
  fi
fi

echo
echo "Done. In your overlay's values.env (and deploy/cluster-rbac/values.env):"
echo "GOOGLE_SERVICE_ACCOUNT=$email"
if [ "$read_only" = 1 ] || [ -z "$fix_projects" ]; then
  echo "No fix permissions were granted: fix buttons will answer that the bot lacks the permission."
fi
