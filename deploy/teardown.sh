#!/usr/bin/env bash
#
# Removes what deploy/deploy.sh created: the push and dead-letter subscriptions, the topics,
# both Cloud Run services, the VPC Access connector, the Redis instance (and every event in
# it; with REDIS_MODE=cluster the Redis cluster and its service connection policy), the JWT secret (every issued token becomes invalid) and the CX webhook's secrets when
# configured, the project role bindings and the three service accounts, and the Artifact
# Registry repository with its images.
#
# Usage:
#   deploy/teardown.sh [--env-file FILE] [--yes] [--dry-run] [--keep-topics]
#
#   --env-file FILE  the settings deploy.sh used (default: deploy/.env)
#   --yes            do not ask for confirmation
#   --dry-run        print every gcloud command, existence checks included, and run none;
#                    every resource is treated as present, so every delete is shown
#   --keep-topics    keep the four notification topics (e.g. when they existed before
#                    deploy.sh ran, or a conversation profile still publishes to them);
#                    the dead-letter topic, which only this backend uses, is still deleted
#
# Like deploy.sh, every delete is preceded by a describe and skipped when the resource is
# already gone, so running it twice is harmless. Enabled APIs are left enabled: other
# workloads in the project may use them.

set -euo pipefail

# Settings, defaults and helpers are shared with deploy.sh so both agree on every name.
# shellcheck source-path=SCRIPTDIR source=deploy.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy.sh"

assume_yes=0
keep_topics=0

# delete_if_exists LABEL DESCRIBE_COMMAND...: runs the matching delete command (the same
# command with `describe` replaced by `delete`, plus --quiet) when the resource exists.
delete_if_exists() {
  local label=$1 arg replaced=0
  shift
  local delete=()
  for arg in "$@"; do
    if ((!replaced)) && [[ $arg == describe ]]; then
      delete+=(delete)
      replaced=1
    else
      delete+=("$arg")
    fi
  done
  if exists "$@"; then
    run "${delete[@]}" --quiet
  else
    info "$label not found; nothing to delete"
  fi
}

delete_subscriptions() {
  step "Deleting Pub/Sub subscriptions"
  local row sub_var
  for row in "${SUBSCRIPTION_TABLE[@]}"; do
    read -r _ sub_var _ <<<"$row"
    delete_if_exists "subscription ${!sub_var}" gcloud pubsub subscriptions describe "${!sub_var}"
  done
  delete_if_exists "subscription $DEAD_LETTER_SUBSCRIPTION_ID" \
    gcloud pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION_ID"
}

delete_topics() {
  step "Deleting Pub/Sub topics"
  local row topic_var
  if ((keep_topics)); then
    info "--keep-topics: keeping the notification topics"
  else
    for row in "${SUBSCRIPTION_TABLE[@]}"; do
      read -r topic_var _ _ <<<"$row"
      delete_if_exists "topic ${!topic_var}" gcloud pubsub topics describe "${!topic_var}"
    done
  fi
  delete_if_exists "topic $DEAD_LETTER_TOPIC_ID" gcloud pubsub topics describe "$DEAD_LETTER_TOPIC_ID"
}

delete_services() {
  step "Deleting Cloud Run services"
  local service
  for service in "$CONNECTOR_SERVICE_NAME" "$INTERCEPTOR_SERVICE_NAME"; do
    delete_if_exists "service $service" \
      gcloud run services describe "$service" --region="$SERVICE_REGION"
  done
}

# After the services: a connector still used by a service cannot be deleted.
delete_vpc_connector() {
  step "Deleting the Serverless VPC Access connector"
  delete_if_exists "VPC connector $VPC_CONNECTOR_NAME" \
    gcloud compute networks vpc-access connectors describe "$VPC_CONNECTOR_NAME" \
    --region="$SERVICE_REGION"
}

# What REDIS_MODE created: the instance, or the cluster and then its service connection policy
# (a policy cannot go while the cluster's endpoints use it). There is one policy per network,
# region and service class: if it existed before deploy.sh because other Memorystore clusters
# of the network use it, delete the cluster alone instead (gcloud redis clusters delete).
delete_redis() {
  if [[ $REDIS_MODE == cluster ]]; then
    step "Deleting the Memorystore cluster and its service connection policy"
    delete_if_exists "Redis cluster $REDIS_CLUSTER_ID" \
      gcloud redis clusters describe "$REDIS_CLUSTER_ID" --region="$SERVICE_REGION"
    delete_if_exists "service connection policy $REDIS_CLUSTER_CONNECTION_POLICY" \
      gcloud network-connectivity service-connection-policies describe \
      "$REDIS_CLUSTER_CONNECTION_POLICY" --region="$SERVICE_REGION"
    return
  fi
  step "Deleting the Memorystore instance"
  delete_if_exists "Redis instance $REDIS_INSTANCE_ID" \
    gcloud redis instances describe "$REDIS_INSTANCE_ID" --region="$SERVICE_REGION"
}

delete_secret() {
  step "Deleting the JWT secret"
  delete_if_exists "secret $JWT_SECRET_NAME" gcloud secrets describe "$JWT_SECRET_NAME"
  local row name_var
  for row in "${CX_WEBHOOK_SECRET_TABLE[@]}"; do
    read -r name_var _ <<<"$row"
    [[ -n ${!name_var:-} ]] || continue
    delete_if_exists "secret ${!name_var}" gcloud secrets describe "${!name_var}"
  done
}

# revoke_project_roles EMAIL ROLE...: removes the bindings deploy.sh added, so the project
# policy is not left with bindings of deleted accounts.
revoke_project_roles() {
  local email=$1 role member
  member="serviceAccount:$email"
  shift
  for role in "$@"; do
    if binding_exists "$role" "$member" gcloud projects get-iam-policy "$GCP_PROJECT_ID"; then
      run gcloud projects remove-iam-policy-binding "$GCP_PROJECT_ID" \
        --member="$member" --role="$role" --condition=None --format=none
    fi
  done
}

delete_service_accounts() {
  step "Deleting service accounts and their project roles"
  if exists gcloud iam service-accounts describe "$CONNECTOR_SA_EMAIL"; then
    revoke_project_roles "$CONNECTOR_SA_EMAIL" "${CONNECTOR_ROLES[@]}"
    run gcloud iam service-accounts delete "$CONNECTOR_SA_EMAIL" --quiet
  else
    info "service account $CONNECTOR_SA_EMAIL not found; nothing to delete"
  fi
  if exists gcloud iam service-accounts describe "$INTERCEPTOR_SA_EMAIL"; then
    revoke_project_roles "$INTERCEPTOR_SA_EMAIL" "${INTERCEPTOR_ROLES[@]}"
    run gcloud iam service-accounts delete "$INTERCEPTOR_SA_EMAIL" --quiet
  else
    info "service account $INTERCEPTOR_SA_EMAIL not found; nothing to delete"
  fi
  # The invoker's only binding (run.invoker) went away with the interceptor service.
  delete_if_exists "service account $INVOKER_SA_EMAIL" \
    gcloud iam service-accounts describe "$INVOKER_SA_EMAIL"
}

delete_image_repository() {
  step "Deleting the Artifact Registry repository and its images"
  delete_if_exists "repository $ARTIFACT_REPOSITORY" \
    gcloud artifacts repositories describe "$ARTIFACT_REPOSITORY" --location="$SERVICE_REGION"
}

# Asks the operator to type the project id. Reads stdin even when it is not a terminal, so
# an answer can be piped in; no answer (e.g. stdin closed) means no.
confirm() {
  ((assume_yes || dry_run)) && return 0
  printf '\nThis deletes the Agent Assist backend from project %s (region %s):\n' \
    "$GCP_PROJECT_ID" "$SERVICE_REGION" >&2
  printf '  services, Redis %s and its data, JWT secret, VPC connector, subscriptions,\n' \
    "$([[ $REDIS_MODE == cluster ]] && echo 'cluster, its connection policy' || echo 'instance')" >&2
  printf '  %s, service accounts, image repository.\n' \
    "$( ((keep_topics)) && echo 'the dead-letter topic' || echo 'topics')" >&2
  printf 'Type the project id to continue: ' >&2
  local answer=''
  read -r answer || true
  [[ $answer == "$GCP_PROJECT_ID" ]] || die "not confirmed; nothing deleted (use --yes to skip this question)"
}

teardown_main() {
  local env_file="$DEPLOY_DIR/.env"
  while (($#)); do
    case $1 in
      --env-file) [[ $# -ge 2 ]] || die "--env-file needs a file"; env_file=$2; shift 2 ;;
      --env-file=*) env_file=${1#--env-file=}; shift ;;
      --dry-run) dry_run=1; shift ;;
      --yes | -y) assume_yes=1; shift ;;
      --keep-topics) keep_topics=1; shift ;;
      -h | --help) sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; return 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done

  dry_run_assumes=present
  load_config "$env_file"
  check_tools
  confirm
  ((dry_run)) && info "dry run: printing commands, running none"
  info "project $GCP_PROJECT_ID, region $SERVICE_REGION, settings from $env_file"

  # Consumers before what they consume: subscriptions before topics, services before the
  # connector, secret and accounts they use.
  delete_subscriptions
  delete_topics
  delete_services
  delete_vpc_connector
  delete_redis
  delete_secret
  delete_service_accounts
  delete_image_repository
  step "Done"
}

teardown_main "$@"
