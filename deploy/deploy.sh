#!/usr/bin/env bash
#
# Deploys the Agent Assist backend (ui-connector + cloud-pubsub-interceptor) to Cloud Run,
# with everything it needs: APIs, runtime service accounts and their roles, the JWT secret,
# Memorystore for Redis (a standalone instance, or with REDIS_MODE=cluster a Memorystore for
# Redis Cluster and the Private Service Connect policy it needs), a Serverless VPC Access
# connector, container images built by Cloud Build into Artifact Registry, and the Pub/Sub
# topics and push subscriptions that feed the interceptor (or, with INTERCEPTOR_MODE=pull,
# pull subscriptions it reads with no inbound traffic); optionally, what the interceptor's
# Dialogflow CX webhook needs (its secrets, the Dialogflow service agent's right to call it).
#
# Usage:
#   deploy/deploy.sh [--env-file FILE] [--dry-run]
#
#   --env-file FILE  settings to use (default: deploy/.env; see deploy/.env.sample)
#   --dry-run        print every gcloud command, existence checks included, and run none;
#                    every resource is treated as missing, so the full plan is shown
#
# Re-running (idempotency). Every piece of infrastructure is created only after a
# describe/list check says it is missing, and every IAM binding is added only after
# get-iam-policy says it is absent; a second run therefore creates, enables or grants
# nothing. Two steps deliberately run every time, because they are how a new version ships:
#   * the two `gcloud builds submit` (fresh images, tagged <git sha>-<UTC time>), and
#   * the two `gcloud run deploy` (a new revision of each service on those images; service
#     settings are declared in full on every deploy, so they cannot drift).
# Existing resources are never modified: changing e.g. MAX_DELIVERY_ATTEMPTS in .env after
# the subscriptions exist needs `gcloud pubsub subscriptions update` (or teardown + deploy).
# One exception keeps an upgrade from refusing pushes: an existing push subscription whose
# token account or audience is not the one the interceptor checks (PUSH_AUTH_AUDIENCE) gets
# them (`modify-push-config`) before the interceptor is deployed; once they match, nothing
# is changed.
#
# Prerequisites: the gcloud CLI, authenticated (`gcloud auth login`) as an account that may
# enable services and administer IAM, service accounts, Secret Manager, Memorystore,
# Serverless VPC Access, Artifact Registry, Cloud Build, Cloud Run and Pub/Sub in the project,
# and with REDIS_MODE=cluster service connection policies (Owner, or the matching admin roles;
# see deploy/README.md).
#
# The gcloud configuration is left alone: the project is passed through CLOUDSDK_CORE_PROJECT
# for this process only, and prompts are disabled so a run never hangs waiting for input.

set -euo pipefail

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$DEPLOY_DIR/.." && pwd)

# Script state (lower case, so no setting in an env file can collide with it).
dry_run=0
# What an existence check answers in --dry-run: deploy shows the full plan ("missing"),
# teardown shows every delete ("present").
dry_run_assumes=missing

# Command echoes go to the original stdout even from inside $(...).
exec 3>&1

# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------

# Application settings passed to the services only when set (unset: the binary's default).
# Secrets never go here: they belong in Secret Manager.
SHARED_APP_VARS=(
  CONVERSATION_HISTORY_LENGTH CONVERSATION_HISTORY_TTL_SECONDS
  DEDUP_WINDOW_SECONDS REDIS_TIMEOUT_MS INTEGRATION_KEY_TTL_SECONDS
)
CONNECTOR_APP_VARS=(
  AUTH_OPTION APP_AUTH_OPTION
  SALESFORCE_DOMAIN SALESFORCE_ORGANIZATION_ID
  GENESYS_CLOUD_ENVIRONMENT TWILIO_FLEX_ENVIRONMENT TWILIO_ACCOUNT_SID
  CORS_ALLOWED_ORIGINS JWT_TOKEN_LIFETIME
  DISCONNECT_ON_TOKEN_EXPIRY
)
# The interceptor's Dialogflow CX webhook: the service agent's ID token (account and
# audiences) and the deadline (its static secrets are Secret Manager secrets, below); and
# PYTHON_CONNECTOR_BRIDGE: while Python connectors still run on the same Redis (a switch-over
# from the Python services, see README.md), the interceptor also delivers to them.
# PUBSUB_PULL_*: pull mode's flow control and malformed-message delay (README.md, Pull mode).
INTERCEPTOR_APP_VARS=(
  CX_WEBHOOK_SERVICE_AGENT CX_WEBHOOK_ID_TOKEN_AUDIENCE CX_WEBHOOK_DEADLINE_MS
  PYTHON_CONNECTOR_BRIDGE
  PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES PUBSUB_PULL_MAX_OUTSTANDING_BYTES
  PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS
)
# Of the application settings, those that are switches: empty, true or false.
BOOLEAN_APP_VARS=(DISCONNECT_ON_TOKEN_EXPIRY PYTHON_CONNECTOR_BRIDGE)

# Every setting an env file may hold; each is documented in deploy/.env.sample.
CONFIG_VARS=(
  GCP_PROJECT_ID SERVICE_REGION
  ARTIFACT_REPOSITORY IMAGE_TAG
  CONNECTOR_SERVICE_NAME INTERCEPTOR_SERVICE_NAME
  CONNECTOR_SERVICE_ACCOUNT_NAME INTERCEPTOR_SERVICE_ACCOUNT_NAME
  PUBSUB_INVOKER_SERVICE_ACCOUNT_NAME PUSH_AUTH_AUDIENCE
  CONNECTOR_MIN_INSTANCES INTERCEPTOR_MIN_INSTANCES INTERCEPTOR_INGRESS
  INTERCEPTOR_MODE
  JWT_SECRET_NAME CX_WEBHOOK_HEADER_SECRET_NAME CX_WEBHOOK_BASIC_AUTH_SECRET_NAME
  REDIS_MODE REDIS_INSTANCE_ID REDIS_TIER REDIS_SIZE_GB REDIS_VERSION
  REDIS_CLUSTER_ID REDIS_CLUSTER_SHARD_COUNT REDIS_CLUSTER_REPLICA_COUNT REDIS_CLUSTER_NODE_TYPE
  REDIS_CLUSTER_SUBNET REDIS_CLUSTER_CONNECTION_POLICY
  VPC_NETWORK VPC_CONNECTOR_NAME VPC_CONNECTOR_RANGE
  HUMAN_AGENT_ASSISTANT_TOPIC_ID CONVERSATION_LIFECYCLE_TOPIC_ID
  NEW_MESSAGE_TOPIC_ID NEW_RECOGNITION_RESULT_TOPIC_ID
  HUMAN_AGENT_ASSISTANT_SUBSCRIPTION_ID CONVERSATION_LIFECYCLE_SUBSCRIPTION_ID
  NEW_MESSAGE_SUBSCRIPTION_ID NEW_RECOGNITION_RESULT_SUBSCRIPTION_ID
  DEAD_LETTER_TOPIC_ID DEAD_LETTER_SUBSCRIPTION_ID
  MAX_DELIVERY_ATTEMPTS ACK_DEADLINE_SECONDS
  "${CONNECTOR_APP_VARS[@]}" "${SHARED_APP_VARS[@]}" "${INTERCEPTOR_APP_VARS[@]}"
)

REQUIRED_APIS=(
  run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com
  redis.googleapis.com vpcaccess.googleapis.com compute.googleapis.com
  secretmanager.googleapis.com pubsub.googleapis.com dialogflow.googleapis.com
  iam.googleapis.com
)
# Besides those, with REDIS_MODE=cluster: Memorystore for Redis Cluster connects to the network
# through Private Service Connect, which a service connection policy (Network Connectivity)
# automates through Service Consumer Management (Memorystore's provisioning prerequisites).
CLUSTER_APIS=(networkconnectivity.googleapis.com serviceconsumermanagement.googleapis.com)

# The service class Memorystore for Redis Cluster's connection policy is for.
REDIS_CLUSTER_SERVICE_CLASS=gcp-memorystore-redis
# Node types `gcloud redis clusters create --node-type` accepts.
REDIS_CLUSTER_NODE_TYPES=(
  redis-shared-core-nano redis-standard-small redis-highcpu-medium
  redis-highmem-medium redis-highmem-xlarge
)

# Project roles of the runtime service accounts: exactly these, nothing broader.
CONNECTOR_ROLES=(
  roles/redis.editor roles/vpcaccess.user roles/compute.viewer
  roles/secretmanager.secretAccessor roles/dialogflow.agentAssistClient
)
INTERCEPTOR_ROLES=(roles/redis.editor roles/vpcaccess.user roles/compute.viewer)

# Separates the --set-env-vars entries instead of gcloud's comma, which values may contain.
ENV_VARS_DELIMITER='|'

# Where the connector reads the JWT secret (its JWT_SECRET_KEY_PATH default).
JWT_SECRET_MOUNT_PATH=/secret/jwt_secret_key

# The CX webhook's secrets, one line each: the setting naming the secret, where the
# interceptor reads it (each in a directory of its own: Cloud Run mounts one secret per
# directory), the interceptor setting pointing there, and what precedes the generated value
# (the Authorization value CX sends, or the basic-auth user name; %20 stands for a space).
CX_WEBHOOK_SECRET_TABLE=(
  "CX_WEBHOOK_HEADER_SECRET_NAME /secret/cx-webhook-header/authorization CX_WEBHOOK_HEADER_SECRET_PATH Bearer%20"
  "CX_WEBHOOK_BASIC_AUTH_SECRET_NAME /secret/cx-webhook-basic-auth/credentials CX_WEBHOOK_BASIC_AUTH_PATH dialogflow-cx:"
)

# One line per Agent Assist notification: topic setting, subscription setting, and the
# interceptor endpoint its push subscription delivers to (its event type, in pull mode).
SUBSCRIPTION_TABLE=(
  "HUMAN_AGENT_ASSISTANT_TOPIC_ID HUMAN_AGENT_ASSISTANT_SUBSCRIPTION_ID /human-agent-assistant-event"
  "CONVERSATION_LIFECYCLE_TOPIC_ID CONVERSATION_LIFECYCLE_SUBSCRIPTION_ID /conversation-lifecycle-event"
  "NEW_MESSAGE_TOPIC_ID NEW_MESSAGE_SUBSCRIPTION_ID /new-message-event"
  "NEW_RECOGNITION_RESULT_TOPIC_ID NEW_RECOGNITION_RESULT_SUBSCRIPTION_ID /new-recognition-result-notification-event"
)

# Reads FILE: KEY=VALUE lines (optionally `export KEY=...`), blank lines and # comments.
# VALUE may be 'single quoted', "double quoted" (taken literally) or bare (up to a # comment).
# The file is parsed, not sourced: it cannot run commands, and a misspelt name is reported
# instead of silently ignored.
read_env_file() {
  local file=$1 line name value lineno=0
  [[ -f $file ]] || die "env file $file not found (copy deploy/.env.sample to deploy/.env and fill it in)"
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line#"${line%%[![:space:]]*}"}
    [[ -z $line || $line == \#* ]] && continue
    line=${line#export }
    if [[ ! $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      die "$file:$lineno: expected KEY=VALUE"
    fi
    name=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\'([^\']*)\'[[:space:]]*(#.*)?$ ]]; then
      value=${BASH_REMATCH[1]}
    elif [[ $value =~ ^\"([^\"]*)\"[[:space:]]*(#.*)?$ ]]; then
      value=${BASH_REMATCH[1]}
    elif [[ $value =~ ^([^[:space:]\'\"#]*)[[:space:]]*(#.*)?$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      die "$file:$lineno: cannot parse the value of $name (quote it with '...')"
    fi
    if [[ " ${CONFIG_VARS[*]} " != *" $name "* ]]; then
      warn "$file:$lineno: unknown setting $name ignored (see deploy/.env.sample)"
      continue
    fi
    printf -v "$name" '%s' "$value"
  done <"$file"
}

# Loads FILE, applies defaults and checks every value, stopping at the first problem with a
# message naming the setting. Values already in the environment count when FILE omits them.
load_config() {
  local file=$1
  read_env_file "$file"

  local name
  for name in GCP_PROJECT_ID SERVICE_REGION VPC_CONNECTOR_RANGE; do
    [[ -n ${!name:-} ]] || die "$name is required but not set in $file (see deploy/.env.sample)"
  done

  : "${ARTIFACT_REPOSITORY:=aa-integration}"
  : "${CONNECTOR_SERVICE_NAME:=ui-connector}"
  : "${INTERCEPTOR_SERVICE_NAME:=cloud-pubsub-interceptor}"
  : "${CONNECTOR_SERVICE_ACCOUNT_NAME:=ui-connector}"
  : "${INTERCEPTOR_SERVICE_ACCOUNT_NAME:=cloud-pubsub-interceptor}"
  : "${PUBSUB_INVOKER_SERVICE_ACCOUNT_NAME:=cloud-run-pubsub-invoker}"
  : "${CONNECTOR_MIN_INSTANCES:=1}"
  : "${INTERCEPTOR_MIN_INSTANCES:=1}"
  : "${INTERCEPTOR_INGRESS:=internal}"
  : "${INTERCEPTOR_MODE:=push}"
  : "${JWT_SECRET_NAME:=aa-integration-jwt-secret}"
  : "${REDIS_MODE:=standalone}"
  : "${REDIS_INSTANCE_ID:=aa-integration-redis}"
  : "${REDIS_TIER:=basic}"
  : "${REDIS_SIZE_GB:=1}"
  : "${REDIS_VERSION:=redis_7_2}"
  : "${REDIS_CLUSTER_ID:=aa-integration-redis-cluster}"
  : "${REDIS_CLUSTER_SHARD_COUNT:=3}"
  : "${REDIS_CLUSTER_REPLICA_COUNT:=1}"
  : "${REDIS_CLUSTER_NODE_TYPE:=redis-highmem-medium}"
  : "${REDIS_CLUSTER_SUBNET:=default}"
  : "${REDIS_CLUSTER_CONNECTION_POLICY:=aa-integration-redis-psc}"
  : "${VPC_NETWORK:=default}"
  : "${VPC_CONNECTOR_NAME:=aa-integration-vpc}"
  : "${HUMAN_AGENT_ASSISTANT_TOPIC_ID:=aa-human-agent-assistant-topic}"
  : "${CONVERSATION_LIFECYCLE_TOPIC_ID:=aa-conversation-lifecycle-topic}"
  : "${NEW_MESSAGE_TOPIC_ID:=aa-new-message-topic}"
  : "${NEW_RECOGNITION_RESULT_TOPIC_ID:=aa-new-recognition-result-notification-topic}"
  : "${HUMAN_AGENT_ASSISTANT_SUBSCRIPTION_ID:=aa-human-agent-assistant-sub}"
  : "${CONVERSATION_LIFECYCLE_SUBSCRIPTION_ID:=aa-conversation-lifecycle-sub}"
  : "${NEW_MESSAGE_SUBSCRIPTION_ID:=aa-new-message-sub}"
  : "${NEW_RECOGNITION_RESULT_SUBSCRIPTION_ID:=aa-new-recognition-result-notification-sub}"
  : "${DEAD_LETTER_TOPIC_ID:=aa-interceptor-dead-letter-topic}"
  : "${DEAD_LETTER_SUBSCRIPTION_ID:=aa-interceptor-dead-letter-sub}"
  : "${MAX_DELIVERY_ATTEMPTS:=10}"
  : "${ACK_DEADLINE_SECONDS:=60}"
  : "${IMAGE_TAG:=$(default_image_tag)}"

  # Pub/Sub accepts 5..100 delivery attempts and 10..600 s ack deadlines; checking here
  # stops before anything is created rather than half-way through.
  check_int MAX_DELIVERY_ATTEMPTS 5 100
  check_int ACK_DEADLINE_SECONDS 10 600
  check_int REDIS_SIZE_GB 1 300
  check_int CONNECTOR_MIN_INSTANCES 0 1000
  check_int INTERCEPTOR_MIN_INSTANCES 0 1000
  [[ $INTERCEPTOR_MODE == push || $INTERCEPTOR_MODE == pull ]] ||
    die "INTERCEPTOR_MODE must be push or pull, not '$INTERCEPTOR_MODE'"
  [[ $REDIS_TIER == basic || $REDIS_TIER == standard ]] ||
    die "REDIS_TIER must be basic or standard, not '$REDIS_TIER'"
  # The cluster's settings are checked in both modes, like every other setting: a mistake is
  # reported when it is made, not when the mode is switched later.
  [[ $REDIS_MODE == standalone || $REDIS_MODE == cluster ]] ||
    die "REDIS_MODE must be standalone or cluster, not '$REDIS_MODE'"
  # Memorystore's limits: 1 to 250 shards, 0 to 2 replicas per shard.
  check_int REDIS_CLUSTER_SHARD_COUNT 1 250
  check_int REDIS_CLUSTER_REPLICA_COUNT 0 2
  [[ " ${REDIS_CLUSTER_NODE_TYPES[*]} " == *" $REDIS_CLUSTER_NODE_TYPE "* ]] ||
    die "REDIS_CLUSTER_NODE_TYPE must be one of ${REDIS_CLUSTER_NODE_TYPES[*]}, not '$REDIS_CLUSTER_NODE_TYPE'"
  [[ $REDIS_CLUSTER_ID =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
    die "REDIS_CLUSTER_ID must be 1 to 63 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen, not '$REDIS_CLUSTER_ID'"
  # The bridge delivers to Python connectors on the same Redis; they are not cluster clients,
  # so with a cluster there is nobody to deliver to (README.md, Migrating from the Python
  # services): refused rather than deployed to do nothing.
  if [[ $REDIS_MODE == cluster && ${PYTHON_CONNECTOR_BRIDGE:-} == true ]]; then
    die "PYTHON_CONNECTOR_BRIDGE=true is not supported with REDIS_MODE=cluster (the Python connectors read a standalone Redis): switch over on a standalone instance first, or leave PYTHON_CONNECTOR_BRIDGE empty"
  fi
  case $INTERCEPTOR_INGRESS in
    internal | all | internal-and-cloud-load-balancing) ;;
    *) die "INTERCEPTOR_INGRESS must be internal, all or internal-and-cloud-load-balancing, not '$INTERCEPTOR_INGRESS'" ;;
  esac
  # The service agent's tokens are checked against both: one without the other is a mistake.
  if [[ -n ${CX_WEBHOOK_SERVICE_AGENT:-} && -z ${CX_WEBHOOK_ID_TOKEN_AUDIENCE:-} ]]; then
    die "CX_WEBHOOK_ID_TOKEN_AUDIENCE must be set with CX_WEBHOOK_SERVICE_AGENT (the webhook URLs)"
  fi
  if [[ -z ${CX_WEBHOOK_SERVICE_AGENT:-} && -n ${CX_WEBHOOK_ID_TOKEN_AUDIENCE:-} ]]; then
    die "CX_WEBHOOK_SERVICE_AGENT must be set with CX_WEBHOOK_ID_TOKEN_AUDIENCE (service-<project number>@gcp-sa-dialogflow.iam.gserviceaccount.com)"
  fi
  if [[ -n ${CX_WEBHOOK_SERVICE_AGENT:-}${CX_WEBHOOK_HEADER_SECRET_NAME:-}${CX_WEBHOOK_BASIC_AUTH_SECRET_NAME:-} &&
    $INTERCEPTOR_INGRESS == internal ]]; then
    warn "the CX webhook is configured but INTERCEPTOR_INGRESS is internal: Dialogflow CX reaches it only through a load balancer or Service Directory (deploy/README.md)"
  fi
  # Serverless VPC Access connectors need an unused /28 of the network.
  [[ $VPC_CONNECTOR_RANGE =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/28$ ]] ||
    die "VPC_CONNECTOR_RANGE must be an IPv4 /28 range such as 10.8.0.0/28, not '$VPC_CONNECTOR_RANGE'"

  for name in "${BOOLEAN_APP_VARS[@]}"; do
    [[ -z ${!name:-} || ${!name} == true || ${!name} == false ]] ||
      die "$name must be true or false (or empty for the service's default), not '${!name}'"
  done
  for name in "${CONNECTOR_APP_VARS[@]}" "${SHARED_APP_VARS[@]}" "${INTERCEPTOR_APP_VARS[@]}" \
    PUSH_AUTH_AUDIENCE; do
    [[ ${!name:-} != *"$ENV_VARS_DELIMITER"* ]] ||
      die "$name must not contain '$ENV_VARS_DELIMITER' (it separates the services' settings)"
  done

  CONNECTOR_SA_EMAIL=$(service_account_email "$CONNECTOR_SERVICE_ACCOUNT_NAME")
  INTERCEPTOR_SA_EMAIL=$(service_account_email "$INTERCEPTOR_SERVICE_ACCOUNT_NAME")
  INVOKER_SA_EMAIL=$(service_account_email "$PUBSUB_INVOKER_SERVICE_ACCOUNT_NAME")
  local registry="$SERVICE_REGION-docker.pkg.dev/$GCP_PROJECT_ID/$ARTIFACT_REPOSITORY"
  CONNECTOR_IMAGE="$registry/ui-connector:$IMAGE_TAG"
  INTERCEPTOR_IMAGE="$registry/cloud-pubsub-interceptor:$IMAGE_TAG"

  export CLOUDSDK_CORE_PROJECT=$GCP_PROJECT_ID
  export CLOUDSDK_CORE_DISABLE_PROMPTS=1
}

# NAME must be a whole number in [MIN, MAX].
check_int() {
  local name=$1 min=$2 max=$3 value=${!1}
  if [[ ! $value =~ ^[0-9]+$ ]] || ((10#$value < min || 10#$value > max)); then
    die "$name must be a whole number from $min to $max, not '$value'"
  fi
}

service_account_email() {
  printf '%s@%s.iam.gserviceaccount.com' "$1" "$GCP_PROJECT_ID"
}

# <git commit>-<UTC time>: traceable to the source, and unique so every deploy is a new image.
default_image_tag() {
  local stamp sha
  stamp=$(date -u +%Y%m%dt%H%M%S)
  if sha=$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
    printf '%s-%s' "$sha" "$stamp"
  else
    printf '%s' "$stamp"
  fi
}

# ----------------------------------------------------------------------------------------
# Output and command helpers
# ----------------------------------------------------------------------------------------

step() { printf '\n==> %s\n' "$*" >&3; }
info() { printf '    %s\n' "$*" >&3; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Prints a command exactly as it is (or would be) run, single-quoting the arguments that
# need it, so a printed line can be pasted into a shell.
show() {
  local out='+' arg plain='^[A-Za-z0-9_./:=@,+%-]+$' escaped_quote="'\\''"
  for arg in "$@"; do
    if [[ $arg =~ $plain ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/$escaped_quote}'"
    fi
  done
  printf '%s\n' "$out" >&3
}

# Runs a command that changes something; with --dry-run only prints it.
run() {
  show "$@"
  ((dry_run)) && return 0
  "$@"
}

# Runs an IAM change, retrying for a while: a service account created a moment ago can take
# some seconds to become visible to IAM.
run_iam() {
  show "$@"
  ((dry_run)) && return 0
  local attempt
  for attempt in 1 2 3 4 5; do
    if "$@"; then return 0; fi
    ((attempt < 5)) || break
    warn "IAM change failed; retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
  die "IAM change failed: $*"
}

# Existence check: succeeds when the described resource exists, fails when gcloud reports it
# missing, and stops the script on any other error (a permission problem must not be mistaken
# for "missing" and lead to a create or a skipped delete).
exists() {
  show "$@"
  if ((dry_run)); then [[ $dry_run_assumes == present ]]; return; fi
  local err
  if err=$("$@" 2>&1 >/dev/null); then return 0; fi
  # (Permission errors often add "or it may not exist": look for them first.)
  if ! grep -qE 'PERMISSION_DENIED|UNAUTHENTICATED' <<<"$err" &&
    grep -qiE 'NOT_FOUND|not found|cannot find|does not exist' <<<"$err"; then
    return 1
  fi
  die "could not check whether the resource exists: $* failed: $err"
}

# Prints the output of a read-only gcloud query; with --dry-run prints PLACEHOLDER instead.
query() {
  local placeholder=$1
  shift
  show "$@"
  if ((dry_run)); then
    printf '%s\n' "$placeholder"
    return 0
  fi
  "$@"
}

# binding_exists ROLE MEMBER GET_IAM_POLICY_COMMAND...: whether the policy printed by the
# command grants ROLE to MEMBER.
binding_exists() {
  local role=$1 member=$2 found placeholder=''
  shift 2
  [[ $dry_run_assumes == present ]] && placeholder=$role
  # (Callers use this as a condition, where `set -e` is off: check failure explicitly.)
  if ! found=$(query "$placeholder" "$@" \
    --flatten='bindings[].members' \
    --filter="bindings.role=\"$role\" AND bindings.members=\"$member\"" \
    --format='value(bindings.role)'); then
    die "could not read the IAM policy: $*"
  fi
  [[ -n $found ]]
}

# ----------------------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------------------

check_tools() {
  ((dry_run)) && return 0
  command -v gcloud >/dev/null || die "gcloud not found on PATH (https://cloud.google.com/sdk/docs/install)"
}

enable_apis() {
  step "Enabling APIs"
  local enabled api missing=() apis=("${REQUIRED_APIS[@]}")
  [[ $REDIS_MODE == cluster ]] && apis+=("${CLUSTER_APIS[@]}")
  enabled=$(query '' gcloud services list --enabled --format='value(config.name)')
  for api in "${apis[@]}"; do
    grep -qxF "$api" <<<"$enabled" || missing+=("$api")
  done
  if ((${#missing[@]} == 0)); then
    info "all ${#apis[@]} APIs already enabled"
  else
    run gcloud services enable "${missing[@]}"
  fi
}

# ensure_service_account NAME DESCRIPTION
ensure_service_account() {
  local name=$1 description=$2 email
  email=$(service_account_email "$name")
  if exists gcloud iam service-accounts describe "$email"; then
    info "service account $email exists"
  else
    run gcloud iam service-accounts create "$name" \
      --display-name="$description" --description="Agent Assist backend: $description"
  fi
}

# grant_project_roles EMAIL ROLE...
grant_project_roles() {
  local email=$1 role member
  member="serviceAccount:$email"
  shift
  for role in "$@"; do
    if binding_exists "$role" "$member" gcloud projects get-iam-policy "$GCP_PROJECT_ID"; then
      info "$email already has $role"
    else
      # --condition=None: add an unconditional binding without prompting, even when the
      # project policy already holds conditional ones.
      run_iam gcloud projects add-iam-policy-binding "$GCP_PROJECT_ID" \
        --member="$member" --role="$role" --condition=None --format=none
    fi
  done
}

create_runtime_service_accounts() {
  step "Runtime service accounts and their project roles"
  ensure_service_account "$CONNECTOR_SERVICE_ACCOUNT_NAME" "UI connector runtime"
  grant_project_roles "$CONNECTOR_SA_EMAIL" "${CONNECTOR_ROLES[@]}"
  ensure_service_account "$INTERCEPTOR_SERVICE_ACCOUNT_NAME" "Pub/Sub interceptor runtime"
  grant_project_roles "$INTERCEPTOR_SA_EMAIL" "${INTERCEPTOR_ROLES[@]}"
}

# 48 bytes from the kernel CSPRNG, base64-encoded (64 characters, 384 bits), no newline.
generate_secret() {
  head -c 48 /dev/urandom | base64 | tr -d '\n'
}

create_jwt_secret() {
  step "JWT signing secret"
  if exists gcloud secrets describe "$JWT_SECRET_NAME"; then
    info "secret $JWT_SECRET_NAME exists; keeping it (issued tokens stay valid)"
    return 0
  fi
  # The value only ever travels through the pipe: never an argument, never printed.
  local create=(gcloud secrets create "$JWT_SECRET_NAME"
    --replication-policy=user-managed --locations="$SERVICE_REGION" --data-file=-)
  show "${create[@]}"
  info "(stdin: a freshly generated random secret, not shown)"
  ((dry_run)) && return 0
  generate_secret | "${create[@]}"
}

# The CX webhook's secrets that are configured: each created with a generated value when
# missing (kept when it exists), and readable by the interceptor's account, on that secret
# only. Read a value with `gcloud secrets versions access latest --secret=NAME` to enter it in
# the CX console.
create_cx_webhook_secrets() {
  local row name_var prefix name create member
  member="serviceAccount:$INTERCEPTOR_SA_EMAIL"
  for row in "${CX_WEBHOOK_SECRET_TABLE[@]}"; do
    read -r name_var _ _ prefix <<<"$row"
    name=${!name_var:-}
    [[ -n $name ]] || continue
    step "Dialogflow CX webhook secret $name"
    prefix=${prefix//%20/ }
    if exists gcloud secrets describe "$name"; then
      info "secret $name exists; keeping it (CX keeps sending the value it has)"
    else
      create=(gcloud secrets create "$name"
        --replication-policy=user-managed --locations="$SERVICE_REGION" --data-file=-)
      show "${create[@]}"
      info "(stdin: '$prefix' and a freshly generated random secret, not shown)"
      if ((!dry_run)); then
        { printf '%s' "$prefix"; generate_secret; } | "${create[@]}"
      fi
    fi
    if binding_exists roles/secretmanager.secretAccessor "$member" \
      gcloud secrets get-iam-policy "$name"; then
      info "$INTERCEPTOR_SA_EMAIL may already read $name"
    else
      run_iam gcloud secrets add-iam-policy-binding "$name" \
        --member="$member" --role=roles/secretmanager.secretAccessor --format=none
    fi
  done
}

create_redis() {
  if [[ $REDIS_MODE == cluster ]]; then
    create_redis_cluster
  else
    create_redis_instance
  fi
}

create_redis_instance() {
  step "Memorystore for Redis"
  if exists gcloud redis instances describe "$REDIS_INSTANCE_ID" --region="$SERVICE_REGION"; then
    info "Redis instance $REDIS_INSTANCE_ID exists"
  else
    info "creating Redis instance $REDIS_INSTANCE_ID (this takes several minutes)"
    run gcloud redis instances create "$REDIS_INSTANCE_ID" \
      --region="$SERVICE_REGION" --tier="$REDIS_TIER" --size="$REDIS_SIZE_GB" \
      --redis-version="$REDIS_VERSION" \
      --network="projects/$GCP_PROJECT_ID/global/networks/$VPC_NETWORK"
  fi
}

# Memorystore for Redis Cluster is reached through Private Service Connect endpoints in
# REDIS_CLUSTER_SUBNET, which Memorystore creates itself once a service connection policy for
# its service class allows it on the network in the region. There is one such policy per
# network, region and class: an existing one named REDIS_CLUSTER_CONNECTION_POLICY is used as it
# is. The cluster is created like the standalone instance: no AUTH, no in-transit encryption
# (the network is the boundary), so the services' seed URLs are plain redis://.
create_redis_cluster() {
  step "Memorystore for Redis Cluster"
  local network="projects/$GCP_PROJECT_ID/global/networks/$VPC_NETWORK"
  local policies name policy_network
  if exists gcloud network-connectivity service-connection-policies describe \
    "$REDIS_CLUSTER_CONNECTION_POLICY" --region="$SERVICE_REGION"; then
    info "service connection policy $REDIS_CLUSTER_CONNECTION_POLICY exists"
  else
    # A second policy for the same network, region and class would be refused half-way:
    # name the one that exists instead. (Networks are compared by name: the API may spell the
    # project by number.)
    policies=$(query '' gcloud network-connectivity service-connection-policies list \
      --region="$SERVICE_REGION" --filter="serviceClass=$REDIS_CLUSTER_SERVICE_CLASS" \
      --format='value(name.basename(),network.basename())')
    while read -r name policy_network; do
      [[ -n $name && $policy_network == "$VPC_NETWORK" ]] || continue
      die "network $VPC_NETWORK already has the service connection policy $name for $REDIS_CLUSTER_SERVICE_CLASS in $SERVICE_REGION (there is one per network, region and class): set REDIS_CLUSTER_CONNECTION_POLICY='$name' to use it"
    done <<<"$policies"
    run gcloud network-connectivity service-connection-policies create \
      "$REDIS_CLUSTER_CONNECTION_POLICY" \
      --region="$SERVICE_REGION" --network="$network" \
      --service-class="$REDIS_CLUSTER_SERVICE_CLASS" \
      --subnets="projects/$GCP_PROJECT_ID/regions/$SERVICE_REGION/subnetworks/$REDIS_CLUSTER_SUBNET" \
      --description="Agent Assist backend: Memorystore for Redis Cluster endpoints"
  fi
  if exists gcloud redis clusters describe "$REDIS_CLUSTER_ID" --region="$SERVICE_REGION"; then
    info "Redis cluster $REDIS_CLUSTER_ID exists"
  else
    info "creating Redis cluster $REDIS_CLUSTER_ID (this takes several minutes)"
    run gcloud redis clusters create "$REDIS_CLUSTER_ID" \
      --region="$SERVICE_REGION" --network="$network" \
      --shard-count="$REDIS_CLUSTER_SHARD_COUNT" \
      --replica-count="$REDIS_CLUSTER_REPLICA_COUNT" \
      --node-type="$REDIS_CLUSTER_NODE_TYPE" \
      --transit-encryption-mode=disabled --auth-mode=disabled
  fi
}

create_vpc_connector() {
  step "Serverless VPC Access connector"
  if exists gcloud compute networks vpc-access connectors describe "$VPC_CONNECTOR_NAME" \
    --region="$SERVICE_REGION"; then
    info "VPC connector $VPC_CONNECTOR_NAME exists"
  else
    run gcloud compute networks vpc-access connectors create "$VPC_CONNECTOR_NAME" \
      --region="$SERVICE_REGION" --network="$VPC_NETWORK" --range="$VPC_CONNECTOR_RANGE"
  fi
}

read_redis_address() {
  if [[ $REDIS_MODE == cluster ]]; then
    read_redis_cluster_address
    return
  fi
  step "Reading the Redis address"
  REDIS_HOST=$(query '<redis-host>' gcloud redis instances describe "$REDIS_INSTANCE_ID" \
    --region="$SERVICE_REGION" --format='value(host)')
  REDIS_PORT=$(query '<redis-port>' gcloud redis instances describe "$REDIS_INSTANCE_ID" \
    --region="$SERVICE_REGION" --format='value(port)')
  [[ -n $REDIS_HOST && -n $REDIS_PORT ]] || die "Redis instance $REDIS_INSTANCE_ID has no host/port yet"
  info "Redis at $REDIS_HOST:$REDIS_PORT"
}

# The cluster's discovery endpoint: one address that answers CLUSTER SLOTS for every shard, so
# it is the services' only seed node; they learn the shards from it.
read_redis_cluster_address() {
  step "Reading the Redis cluster's discovery endpoint"
  local address port
  address=$(query '<redis-cluster-address>' gcloud redis clusters describe "$REDIS_CLUSTER_ID" \
    --region="$SERVICE_REGION" --format='value(discoveryEndpoints[0].address)')
  port=$(query '<redis-cluster-port>' gcloud redis clusters describe "$REDIS_CLUSTER_ID" \
    --region="$SERVICE_REGION" --format='value(discoveryEndpoints[0].port)')
  [[ -n $address && -n $port ]] ||
    die "Redis cluster $REDIS_CLUSTER_ID has no discovery endpoint yet (is it still being created? check with gcloud redis clusters describe $REDIS_CLUSTER_ID --region=$SERVICE_REGION)"
  REDIS_CLUSTER_NODES="redis://$address:$port"
  info "Redis cluster at $REDIS_CLUSTER_NODES"
}

# The Redis settings of both services: REDISHOST/REDISPORT of the instance, or
# REDIS_CLUSTER_NODES, the cluster's seed nodes.
redis_env_pairs() {
  if [[ $REDIS_MODE == cluster ]]; then
    printf '%s\n' "REDIS_CLUSTER_NODES=$REDIS_CLUSTER_NODES"
  else
    printf '%s\n' "REDISHOST=$REDIS_HOST" "REDISPORT=$REDIS_PORT"
  fi
}

create_image_repository() {
  step "Artifact Registry repository"
  if exists gcloud artifacts repositories describe "$ARTIFACT_REPOSITORY" \
    --location="$SERVICE_REGION"; then
    info "repository $ARTIFACT_REPOSITORY exists"
  else
    run gcloud artifacts repositories create "$ARTIFACT_REPOSITORY" \
      --repository-format=docker --location="$SERVICE_REGION" \
      --description="Agent Assist backend images"
  fi
}

# build_image DOCKERFILE IMAGE: Cloud Build runs deploy/cloudbuild.yaml on the whole workspace
# (the Dockerfiles need every member crate). The upload skips what .gitignore lists (gcloud's
# default ignore rules), so target/ and deploy/.env never leave the machine.
build_image() {
  local dockerfile=$1 image=$2
  run gcloud builds submit "$REPO_ROOT" \
    --config="$DEPLOY_DIR/cloudbuild.yaml" \
    --substitutions="_DOCKERFILE=$dockerfile,_IMAGE=$image"
}

build_images() {
  step "Building images with Cloud Build (tag $IMAGE_TAG)"
  build_image Dockerfile.connector "$CONNECTOR_IMAGE"
  build_image Dockerfile.interceptor "$INTERCEPTOR_IMAGE"
}

# Formats NAME=VALUE pairs for --set-env-vars. Values may contain commas (CORS origin lists),
# so gcloud's alternate-delimiter syntax is always used (see `gcloud topic escaping`).
env_vars_flag() {
  local pair joined=''
  for pair in "$@"; do
    [[ $pair != *"$ENV_VARS_DELIMITER"* ]] ||
      die "setting ${pair%%=*} must not contain '$ENV_VARS_DELIMITER'"
    joined+="${joined:+$ENV_VARS_DELIMITER}$pair"
  done
  printf -- '--set-env-vars=^%s^%s' "$ENV_VARS_DELIMITER" "$joined"
}

# NAME=VALUE for each named setting that is set.
optional_env_pairs() {
  local name
  for name in "$@"; do
    [[ -z ${!name:-} ]] || printf '%s=%s\n' "$name" "${!name}"
  done
}

deploy_connector() {
  step "Deploying $CONNECTOR_SERVICE_NAME"
  local pairs=() extra env_flag
  while IFS= read -r extra; do pairs+=("$extra"); done < <(redis_env_pairs)
  pairs+=("GCP_PROJECT_ID=$GCP_PROJECT_ID")
  while IFS= read -r extra; do pairs+=("$extra"); done \
    < <(optional_env_pairs "${CONNECTOR_APP_VARS[@]}" "${SHARED_APP_VARS[@]}")
  # (Assigned first: a failure inside "$(...)" used as an argument would not stop the script.)
  env_flag=$(env_vars_flag "${pairs[@]}")
  # Public (desktops connect directly; every request carries a token), one-hour timeout for
  # long-lived Socket.IO connections, session affinity so polling fallbacks stay on one
  # instance, and the JWT secret mounted as a file where the binary looks for it.
  run gcloud run deploy "$CONNECTOR_SERVICE_NAME" \
    --image="$CONNECTOR_IMAGE" \
    --region="$SERVICE_REGION" \
    --service-account="$CONNECTOR_SA_EMAIL" \
    --allow-unauthenticated \
    --timeout=3600 \
    --session-affinity \
    --vpc-connector="$VPC_CONNECTOR_NAME" \
    --min-instances="$CONNECTOR_MIN_INSTANCES" \
    "$env_flag" \
    --set-secrets="$JWT_SECRET_MOUNT_PATH=$JWT_SECRET_NAME:latest"
}

read_project_number() {
  PROJECT_NUMBER=$(query '<project-number>' gcloud projects describe "$GCP_PROJECT_ID" \
    --format='value(projectNumber)')
  [[ -n $PROJECT_NUMBER ]] || die "could not read the number of project $GCP_PROJECT_ID"
}

# The audience of Pub/Sub's push tokens, which the interceptor checks (PUSH_AUTH_AUDIENCE;
# the subscriptions ask for it with --push-auth-token-audience). One audience for the four
# subscriptions: by default the interceptor's deterministic URL,
# https://SERVICE-PROJECT_NUMBER.REGION.run.app, which is known before the service exists (no
# second deploy to learn it) and, as a URL Cloud Run generated for the service, is also
# accepted by Cloud Run's own IAM check.
resolve_push_auth_audience() {
  read_project_number
  if [[ -z ${PUSH_AUTH_AUDIENCE:-} ]]; then
    local host="$INTERCEPTOR_SERVICE_NAME-$PROJECT_NUMBER"
    # Cloud Run only gives a service that URL when this DNS label fits in 63 characters.
    ((${#host} <= 63)) ||
      die "INTERCEPTOR_SERVICE_NAME is too long for the deterministic URL https://$host.$SERVICE_REGION.run.app; shorten it or set PUSH_AUTH_AUDIENCE (see deploy/.env.sample)"
    PUSH_AUTH_AUDIENCE="https://$host.$SERVICE_REGION.run.app"
  fi
  info "pushes carry ID tokens of $INVOKER_SA_EMAIL for $PUSH_AUTH_AUDIENCE; the interceptor checks both"
}

# Existing push subscriptions, before the interceptor is deployed. One of the same name that
# feeds another service (the Python interceptor's aa-new-message-sub, say) stops the run before
# anything is deployed: keeping it would leave this interceptor without that topic's events
# while the script reported success. Ours that were created before push authentication carry
# Pub/Sub's default audience (their endpoint URL), which the interceptor would refuse with 403:
# they get the interceptor's account and audience before it starts checking them, so no push is
# refused in between; their endpoint is kept. Subscriptions that already match are left alone.
align_push_subscriptions() {
  # In pull mode the subscriptions are pull subscriptions (checked when they are created).
  [[ $INTERCEPTOR_MODE == push ]] || return 0
  step "Existing push subscriptions"
  local row sub_var path subscription config endpoint account audience interceptor_url=''
  local aligned=()
  if exists gcloud run services describe "$INTERCEPTOR_SERVICE_NAME" --region="$SERVICE_REGION"; then
    interceptor_url=$(service_url "$INTERCEPTOR_SERVICE_NAME")
  fi
  # Every subscription is checked before any is changed.
  for row in "${SUBSCRIPTION_TABLE[@]}"; do
    read -r _ sub_var path <<<"$row"
    subscription=${!sub_var}
    exists gcloud pubsub subscriptions describe "$subscription" || continue
    config=$(query "$interceptor_url$path\t$INVOKER_SA_EMAIL\t$PUSH_AUTH_AUDIENCE" \
      gcloud pubsub subscriptions describe "$subscription" \
      --format='value(pushConfig.pushEndpoint,pushConfig.oidcToken.serviceAccountEmail,pushConfig.oidcToken.audience)')
    IFS=$'\t' read -r endpoint account audience <<<"$(printf '%b' "$config")"
    if [[ -z $interceptor_url || $endpoint != "$interceptor_url$path" ]]; then
      die "subscription $subscription ($sub_var) exists but delivers to '${endpoint:-nothing: a pull subscription}', not to this deployment's interceptor. It belongs to another deployment (the Python interceptor's?): set $sub_var to a new name to add a second subscription to the topic (README.md, Migrating from the Python services), or move it on purpose with gcloud pubsub subscriptions modify-push-config"
    elif [[ $account == "$INVOKER_SA_EMAIL" && $audience == "$PUSH_AUTH_AUDIENCE" ]]; then
      info "subscription $subscription delivers to $endpoint with tokens for $PUSH_AUTH_AUDIENCE"
    else
      aligned+=("$subscription $endpoint")
    fi
  done
  for row in "${aligned[@]}"; do
    read -r subscription endpoint <<<"$row"
    run gcloud pubsub subscriptions modify-push-config "$subscription" \
      --push-endpoint="$endpoint" \
      --push-auth-service-account="$INVOKER_SA_EMAIL" \
      --push-auth-token-audience="$PUSH_AUTH_AUDIENCE"
  done
}

# PUBSUB_PULL_SUBSCRIPTIONS for pull mode: <event type>=<full subscription name>, one per row
# of SUBSCRIPTION_TABLE (the event type is the push endpoint's path without its slash).
pull_subscriptions_setting() {
  local row sub_var path list=''
  for row in "${SUBSCRIPTION_TABLE[@]}"; do
    read -r _ sub_var path <<<"$row"
    list+="${list:+,}${path#/}=projects/$GCP_PROJECT_ID/subscriptions/${!sub_var}"
  done
  printf '%s' "$list"
}

deploy_interceptor() {
  step "Deploying $INTERCEPTOR_SERVICE_NAME ($INTERCEPTOR_MODE mode)"
  local pairs=() extra env_flag row name_var mount setting mounts=() secrets_flag=()
  while IFS= read -r extra; do pairs+=("$extra"); done < <(redis_env_pairs)
  pairs+=("PUSH_AUTH_SERVICE_ACCOUNT=$INVOKER_SA_EMAIL" "PUSH_AUTH_AUDIENCE=$PUSH_AUTH_AUDIENCE")
  local mode_flags=() min_instances=$INTERCEPTOR_MIN_INSTANCES
  while IFS= read -r extra; do pairs+=("$extra"); done \
    < <(optional_env_pairs "${SHARED_APP_VARS[@]}" "${INTERCEPTOR_APP_VARS[@]}")
  # The CX webhook's secrets, mounted as files the interceptor is told about.
  for row in "${CX_WEBHOOK_SECRET_TABLE[@]}"; do
    read -r name_var mount setting _ <<<"$row"
    [[ -n ${!name_var:-} ]] || continue
    pairs+=("$setting=$mount")
    mounts+=("$mount=${!name_var}:latest")
  done
  if [[ $INTERCEPTOR_MODE == pull ]]; then
    # Pulling is work outside any request: the CPU stays allocated, and at least one instance
    # runs, since with none nothing would pull (Cloud Run starts instances for requests only).
    pairs+=("PUBSUB_PULL_SUBSCRIPTIONS=$(pull_subscriptions_setting)")
    mode_flags=(--no-cpu-throttling)
    if ((10#$min_instances < 1)); then
      info "pull mode: at least one instance (INTERCEPTOR_MIN_INSTANCES=$min_instances raised to 1)"
      min_instances=1
    fi
  fi
  env_flag=$(env_vars_flag "${pairs[@]}")
  if ((${#mounts[@]})); then
    local mount_list='' one
    for one in "${mounts[@]}"; do mount_list+="${mount_list:+,}$one"; done
    secrets_flag=("--set-secrets=$mount_list")
  fi
  # Only with an identity token of an account holding run.invoker (the Pub/Sub invoker, and
  # the Dialogflow service agent when the CX webhook is on); and the service itself checks that
  # every push carries a token of the invoker for PUSH_AUTH_AUDIENCE, so it does not depend on
  # the ingress and IAM settings alone. Ingress internal by default (Pub/Sub push counts as
  # internal); Dialogflow CX calls from outside the VPC, so a webhook needs
  # INTERCEPTOR_INGRESS=all or a load balancer (see deploy/README.md). In pull mode nothing
  # needs to reach it for events (it calls out to Pub/Sub).
  run gcloud run deploy "$INTERCEPTOR_SERVICE_NAME" \
    --image="$INTERCEPTOR_IMAGE" \
    --region="$SERVICE_REGION" \
    --service-account="$INTERCEPTOR_SA_EMAIL" \
    --ingress="$INTERCEPTOR_INGRESS" \
    --no-allow-unauthenticated \
    --vpc-connector="$VPC_CONNECTOR_NAME" \
    --min-instances="$min_instances" \
    "${mode_flags[@]}" \
    "$env_flag" \
    "${secrets_flag[@]}"
}

# grant_interceptor_invoker EMAIL: run.invoker on the interceptor for that account.
grant_interceptor_invoker() {
  local member="serviceAccount:$1"
  if binding_exists roles/run.invoker "$member" \
    gcloud run services get-iam-policy "$INTERCEPTOR_SERVICE_NAME" --region="$SERVICE_REGION"; then
    info "$1 may already invoke $INTERCEPTOR_SERVICE_NAME"
  else
    run_iam gcloud run services add-iam-policy-binding "$INTERCEPTOR_SERVICE_NAME" \
      --region="$SERVICE_REGION" --member="$member" --role=roles/run.invoker --format=none
  fi
}

# The Dialogflow service agent may call the interceptor (Cloud Run checks its ID token
# before the interceptor checks audience and account again).
allow_dialogflow_service_agent() {
  [[ -n ${CX_WEBHOOK_SERVICE_AGENT:-} ]] || return 0
  step "Dialogflow CX webhook: the service agent may call the interceptor"
  grant_interceptor_invoker "$CX_WEBHOOK_SERVICE_AGENT"
}

# service_url NAME
service_url() {
  query "https://<$1-url>" gcloud run services describe "$1" \
    --region="$SERVICE_REGION" --format='value(status.url)'
}

ensure_topic() {
  local topic=$1
  if exists gcloud pubsub topics describe "$topic"; then
    info "topic $topic exists"
  else
    run gcloud pubsub topics create "$topic"
  fi
}

# The dead-letter topic gets a pull subscription that keeps messages for 7 days: without a
# subscription, Pub/Sub would drop what it dead-letters.
create_dead_letter_topic() {
  ensure_topic "$DEAD_LETTER_TOPIC_ID"
  if exists gcloud pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION_ID"; then
    info "subscription $DEAD_LETTER_SUBSCRIPTION_ID exists"
  else
    run gcloud pubsub subscriptions create "$DEAD_LETTER_SUBSCRIPTION_ID" \
      --topic="$DEAD_LETTER_TOPIC_ID" --message-retention-duration=7d --expiration-period=never
  fi
}

# create_push_subscription SUBSCRIPTION TOPIC ENDPOINT
create_push_subscription() {
  local subscription=$1 topic=$2 endpoint=$3
  # An existing one was checked (and aligned) before the interceptor was deployed.
  if exists gcloud pubsub subscriptions describe "$subscription"; then
    info "subscription $subscription exists and delivers to $endpoint"
    return 0
  fi
  # Pushes carry an OIDC token of the invoker account for the interceptor's audience;
  # undeliverable messages are retried with backoff and, after MAX_DELIVERY_ATTEMPTS, moved
  # to the dead-letter topic.
  run gcloud pubsub subscriptions create "$subscription" \
    --topic="$topic" \
    --push-endpoint="$endpoint" \
    --push-auth-service-account="$INVOKER_SA_EMAIL" \
    --push-auth-token-audience="$PUSH_AUTH_AUDIENCE" \
    --ack-deadline="$ACK_DEADLINE_SECONDS" \
    --dead-letter-topic="$DEAD_LETTER_TOPIC_ID" \
    --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
    --min-retry-delay=10s --max-retry-delay=600s \
    --expiration-period=never
}

# create_pull_subscription SUBSCRIPTION TOPIC SETTING: as create_push_subscription, for the
# interceptor's pull mode. An existing subscription is kept only if it is a pull subscription.
create_pull_subscription() {
  local subscription=$1 topic=$2 setting=$3 current
  if exists gcloud pubsub subscriptions describe "$subscription"; then
    current=$(query '' gcloud pubsub subscriptions describe "$subscription" \
      --format='value(pushConfig.pushEndpoint,pushConfig.oidcToken.serviceAccountEmail,pushConfig.oidcToken.audience)')
    current=${current%%$'\t'*}
    [[ -z $current ]] ||
      die "subscription $subscription ($setting) exists but pushes to $current, and INTERCEPTOR_MODE=pull needs a pull subscription. Switching this deployment from push to pull: convert it with gcloud pubsub subscriptions modify-push-config $subscription --push-endpoint='' (its backlog is kept), then deploy again. If it belongs to another deployment, set $setting to a new name"
    info "subscription $subscription exists and is a pull subscription (not modified)"
    return 0
  fi
  # Nacked and expired messages come back with backoff (so an outage does not spend the
  # delivery attempts in seconds) and, after MAX_DELIVERY_ATTEMPTS, go to the dead-letter topic.
  run gcloud pubsub subscriptions create "$subscription" \
    --topic="$topic" \
    --ack-deadline="$ACK_DEADLINE_SECONDS" \
    --dead-letter-topic="$DEAD_LETTER_TOPIC_ID" \
    --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
    --min-retry-delay=10s --max-retry-delay=600s \
    --expiration-period=never
}

# grant_resource_role KIND NAME ROLE MEMBER: KIND is "topics" or "subscriptions".
grant_pubsub_role() {
  local kind=$1 name=$2 role=$3 member=$4
  if binding_exists "$role" "$member" gcloud pubsub "$kind" get-iam-policy "$name"; then
    info "$member already has $role on $name"
  else
    run_iam gcloud pubsub "$kind" add-iam-policy-binding "$name" \
      --member="$member" --role="$role" --format=none
  fi
}

setup_pubsub() {
  step "Pub/Sub topics, dead-lettering and $INTERCEPTOR_MODE subscriptions"
  local row topic_var sub_var path
  for row in "${SUBSCRIPTION_TABLE[@]}"; do
    read -r topic_var _ _ <<<"$row"
    ensure_topic "${!topic_var}"
  done
  create_dead_letter_topic

  ensure_service_account "$PUBSUB_INVOKER_SERVICE_ACCOUNT_NAME" "Pub/Sub push to the interceptor"
  grant_interceptor_invoker "$INVOKER_SA_EMAIL"

  if [[ $INTERCEPTOR_MODE == pull ]]; then
    # The interceptor (started already: it retries until its subscriptions exist and it may
    # read them) pulls each subscription as its own account.
    for row in "${SUBSCRIPTION_TABLE[@]}"; do
      read -r topic_var sub_var _ <<<"$row"
      create_pull_subscription "${!sub_var}" "${!topic_var}" "$sub_var"
      grant_pubsub_role subscriptions "${!sub_var}" roles/pubsub.subscriber \
        "serviceAccount:$INTERCEPTOR_SA_EMAIL"
    done
  else
    local interceptor_url
    interceptor_url=$(service_url "$INTERCEPTOR_SERVICE_NAME")
    [[ -n $interceptor_url ]] || die "service $INTERCEPTOR_SERVICE_NAME has no URL"
    for row in "${SUBSCRIPTION_TABLE[@]}"; do
      read -r topic_var sub_var path <<<"$row"
      create_push_subscription "${!sub_var}" "${!topic_var}" "$interceptor_url$path"
    done
  fi

  # Dead-lettering runs as the Pub/Sub service agent: it must be able to publish to the
  # dead-letter topic and to acknowledge (subscribe to) each source subscription.
  local agent="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
  grant_pubsub_role topics "$DEAD_LETTER_TOPIC_ID" roles/pubsub.publisher "$agent"
  for row in "${SUBSCRIPTION_TABLE[@]}"; do
    read -r _ sub_var _ <<<"$row"
    grant_pubsub_role subscriptions "${!sub_var}" roles/pubsub.subscriber "$agent"
  done
}

print_summary() {
  step "Done"
  local url
  url=$(service_url "$CONNECTOR_SERVICE_NAME")
  info "UI connector: $url"
  info "Point the conversation profile's Pub/Sub notifications at the topics:"
  local row topic_var
  for row in "${SUBSCRIPTION_TABLE[@]}"; do
    read -r topic_var _ _ <<<"$row"
    info "  projects/$GCP_PROJECT_ID/topics/${!topic_var}"
  done
  if [[ -n ${CX_WEBHOOK_SERVICE_AGENT:-}${CX_WEBHOOK_HEADER_SECRET_NAME:-}${CX_WEBHOOK_BASIC_AUTH_SECRET_NAME:-} ]]; then
    url=$(service_url "$INTERCEPTOR_SERVICE_NAME")
    info "Dialogflow CX webhook (register it in the agent; see deploy/README.md):"
    info "  standard  $url/dialogflow-cx-webhook"
    info "  flexible  $url/dialogflow-cx-webhook/flexible"
  fi
}

usage() {
  sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

main() {
  local env_file="$DEPLOY_DIR/.env"
  while (($#)); do
    case $1 in
      --env-file) [[ $# -ge 2 ]] || die "--env-file needs a file"; env_file=$2; shift 2 ;;
      --env-file=*) env_file=${1#--env-file=}; shift ;;
      --dry-run) dry_run=1; shift ;;
      -h | --help) usage; return 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
  done

  load_config "$env_file"
  check_tools
  ((dry_run)) && info "dry run: printing commands, running none"
  info "project $GCP_PROJECT_ID, region $SERVICE_REGION, settings from $env_file"
  resolve_push_auth_audience

  enable_apis
  create_runtime_service_accounts
  create_jwt_secret
  create_cx_webhook_secrets
  create_redis
  create_vpc_connector
  read_redis_address
  create_image_repository
  build_images
  align_push_subscriptions
  deploy_interceptor
  allow_dialogflow_service_agent
  deploy_connector
  setup_pubsub
  print_summary
}

# Run only when executed: teardown.sh sources this file for its settings and helpers.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
