//! `deploy/terraform` must create what `deploy/deploy.sh` creates: the same resources, names,
//! roles and settings, so an operator can pick either and get the same system.
//!
//! deploy.sh runs against the fake gcloud (`support`) and records every change it makes; the
//! Terraform configuration is evaluated for the same settings without its providers
//! (`terraform_eval`). Then every recorded change is matched to the Terraform resource that
//! makes it, flag by flag, and every setting Terraform declares must have been matched to a
//! flag (or be one of the few gcloud defaults Terraform has to spell out, listed below). A new
//! flag, command or resource on either side fails these tests until the other side has it too.

#[allow(dead_code)] // Shared with deploy_script.rs; this file uses part of it.
mod support;
mod terraform_eval;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hcl::eval::Evaluate;
use hcl::Value;
use support::{parse_env_vars, repo_root, Call, Cloud, Outcome, Sandbox};
use terraform_eval::provider::{self, CloudFacts, GENERATED_PASSWORD};
use terraform_eval::{text, Instance, Module, Plan};

/// Every deploy.sh setting, each different from its default, so that a setting either side
/// ignores shows as a difference. `drift_env_changes_every_setting` keeps it complete. It
/// deploys a Redis cluster (so PYTHON_CONNECTOR_BRIDGE, which a cluster refuses as true, is
/// 'false', still passed to the service); [`STANDALONE_DRIFT`] switches back to a standalone
/// instance, so that each Redis setting is compared in one of the two.
const DRIFT_ENV: &str = r#"
GCP_PROJECT_ID='drift-project'
SERVICE_REGION='europe-west4'
VPC_CONNECTOR_RANGE='10.9.0.16/28'
ARTIFACT_REPOSITORY='d-images'
IMAGE_TAG='d1'
CONNECTOR_SERVICE_NAME='d-connector'
INTERCEPTOR_SERVICE_NAME='d-interceptor'
CONNECTOR_MIN_INSTANCES='2'
INTERCEPTOR_MIN_INSTANCES='0'
INTERCEPTOR_MODE='pull'
CONNECTOR_SERVICE_ACCOUNT_NAME='d-connector-sa'
INTERCEPTOR_SERVICE_ACCOUNT_NAME='d-interceptor-sa'
PUBSUB_INVOKER_SERVICE_ACCOUNT_NAME='d-invoker-sa'
JWT_SECRET_NAME='d-jwt'
REDIS_MODE='cluster'
REDIS_CLUSTER_ID='d-redis-cluster'
REDIS_CLUSTER_SHARD_COUNT='6'
REDIS_CLUSTER_REPLICA_COUNT='2'
REDIS_CLUSTER_NODE_TYPE='redis-standard-small'
REDIS_CLUSTER_SUBNET='d-subnet'
REDIS_CLUSTER_CONNECTION_POLICY='d-redis-psc'
REDIS_INSTANCE_ID='d-redis'
REDIS_TIER='standard'
REDIS_SIZE_GB='5'
REDIS_VERSION='redis_7_0'
VPC_NETWORK='d-net'
VPC_CONNECTOR_NAME='d-vpc'
HUMAN_AGENT_ASSISTANT_TOPIC_ID='d-haa-topic'
CONVERSATION_LIFECYCLE_TOPIC_ID='d-lifecycle-topic'
NEW_MESSAGE_TOPIC_ID='d-message-topic'
NEW_RECOGNITION_RESULT_TOPIC_ID='d-recognition-topic'
HUMAN_AGENT_ASSISTANT_SUBSCRIPTION_ID='d-haa-sub'
CONVERSATION_LIFECYCLE_SUBSCRIPTION_ID='d-lifecycle-sub'
NEW_MESSAGE_SUBSCRIPTION_ID='d-message-sub'
NEW_RECOGNITION_RESULT_SUBSCRIPTION_ID='d-recognition-sub'
DEAD_LETTER_TOPIC_ID='d-dead-letters'
DEAD_LETTER_SUBSCRIPTION_ID='d-dead-letters-sub'
PUSH_AUTH_AUDIENCE='https://d-push.example'
MAX_DELIVERY_ATTEMPTS='7'
ACK_DEADLINE_SECONDS='45'
AUTH_OPTION='SalesforceLWC'
APP_AUTH_OPTION='Twilio'
SALESFORCE_DOMAIN='example.my.salesforce.com'
SALESFORCE_ORGANIZATION_ID='00D000000000001'
GENESYS_CLOUD_ENVIRONMENT='mypurecloud.ie'
TWILIO_FLEX_ENVIRONMENT='flex.example.com'
TWILIO_ACCOUNT_SID='AC0123456789abcdef'
CORS_ALLOWED_ORIGINS='https://a.example,https://b.example'
JWT_TOKEN_LIFETIME='30'
INTEGRATION_KEY_TTL_SECONDS='7200'
DISCONNECT_ON_TOKEN_EXPIRY='true'
PYTHON_CONNECTOR_BRIDGE='false'
PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES='500'
PUBSUB_PULL_MAX_OUTSTANDING_BYTES='20971520'
PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS='30'
CONVERSATION_HISTORY_LENGTH='50'
CONVERSATION_HISTORY_TTL_SECONDS='1800'
DEDUP_WINDOW_SECONDS='300'
REDIS_TIMEOUT_MS='1500'
INTERCEPTOR_INGRESS='all'
CX_WEBHOOK_SERVICE_AGENT='service-555555555555@gcp-sa-dialogflow.iam.gserviceaccount.com'
CX_WEBHOOK_ID_TOKEN_AUDIENCE='https://d-interceptor.example/dialogflow-cx-webhook,https://d-interceptor.example/dialogflow-cx-webhook/flexible'
CX_WEBHOOK_HEADER_SECRET_NAME='d-cx-header'
CX_WEBHOOK_BASIC_AUTH_SECRET_NAME='d-cx-basic'
CX_WEBHOOK_DEADLINE_MS='2500'
"#;

/// Appended to DRIFT_ENV (later lines win): a standalone instance, whose settings DRIFT_ENV
/// changes too, and the Python bridge on, which only a standalone instance allows.
const STANDALONE_DRIFT: &str = "
REDIS_MODE='standalone'
PYTHON_CONNECTOR_BRIDGE='true'
";

/// Only what deploy.sh requires: everything else at its default on both sides.
const MINIMAL_ENV: &str = r#"
GCP_PROJECT_ID='minimal-project'
SERVICE_REGION='us-central1'
VPC_CONNECTOR_RANGE='10.8.0.0/28'
"#;

/// Terraform variables with no deploy/.env counterpart, and why.
const TERRAFORM_ONLY_VARIABLES: [(&str, &str); 2] = [
    (
        "connector_image",
        "deploy.sh always builds its own image; Terraform can run one built elsewhere",
    ),
    ("interceptor_image", "as connector_image"),
];

/// Settings Terraform declares that no deploy.sh flag sets: gcloud's or Cloud's defaults that
/// deploy.sh relies on, which Terraform has to state. (resource type, path, value, why)
const SPELLED_OUT_DEFAULTS: [(&str, &str, &str, &str); 7] = [
    (
        "google_project_service",
        "disable_on_destroy",
        "false",
        "teardown.sh leaves APIs enabled",
    ),
    (
        "google_cloud_run_v2_service",
        "deletion_protection",
        "false",
        "teardown.sh deletes the services",
    ),
    (
        "google_cloud_run_v2_service",
        "template.scaling.max_instance_count",
        "100",
        "Cloud Run's default maximum; the v2 API rejects a minimum without it",
    ),
    (
        "google_redis_cluster",
        "deletion_protection_enabled",
        "false",
        "gcloud creates clusters unprotected; teardown.sh deletes the cluster",
    ),
    (
        "google_vpc_access_connector",
        "machine_type",
        "e2-micro",
        "gcloud's default",
    ),
    (
        "google_vpc_access_connector",
        "min_instances",
        "2",
        "gcloud's default",
    ),
    (
        "google_vpc_access_connector",
        "max_instances",
        "10",
        "gcloud's default; current providers require a size",
    ),
];

fn terraform_dir() -> PathBuf {
    repo_root().join("deploy/terraform")
}

fn module() -> Module {
    Module::load(&terraform_dir()).unwrap_or_else(|e| panic!("deploy/terraform: {e}"))
}

/// The cloud the fake gcloud reports, for the Terraform side.
fn cloud_facts() -> CloudFacts {
    CloudFacts {
        project_number: support::PROJECT_NUMBER.to_owned(),
        redis_host: support::REDIS_HOST.to_owned(),
        redis_port: support::REDIS_PORT.parse().expect("port"),
        redis_cluster_address: support::REDIS_CLUSTER_ADDRESS.to_owned(),
        redis_cluster_port: support::REDIS_CLUSTER_PORT.parse().expect("port"),
        service_url: support::service_url,
    }
}

/// The `KEY='value'` lines of an env text written in this file.
fn env_pairs(env: &str) -> Vec<(String, String)> {
    env.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l.split_once('=').expect("KEY=VALUE");
            let value = value.trim_matches(|c| c == '\'' || c == '"');
            (
                key.trim_start_matches("export ").to_owned(),
                value.to_owned(),
            )
        })
        .collect()
}

/// The settings of deploy/.env.sample (the documented ones), with their sample values.
fn sample_settings() -> Vec<(String, String)> {
    let text = fs::read_to_string(repo_root().join("deploy/.env.sample")).expect(".env.sample");
    env_pairs(&text)
}

/// Terraform inputs for deploy.sh settings: each KEY is the variable `key`, its value
/// converted to the variable's type; an empty value means the default, as in deploy.sh.
fn inputs_for(module: &Module, env: &[(String, String)]) -> BTreeMap<String, Value> {
    let mut inputs = BTreeMap::new();
    for (key, value) in env {
        let name = key.to_lowercase();
        let variable = module.variables.get(&name).unwrap_or_else(|| {
            panic!("deploy.sh setting {key} has no Terraform variable `{name}` in deploy/terraform")
        });
        if value.is_empty() {
            continue;
        }
        let converted = variable
            .convert(&name, value)
            .unwrap_or_else(|e| panic!("{e}"));
        inputs.insert(name, converted);
    }
    inputs
}

fn deploy(sandbox: &Sandbox, env: &str) -> Outcome {
    let env_file = sandbox.env_file(env);
    let run = sandbox.run(
        "deploy.sh",
        &["--env-file", env_file.to_str().expect("utf-8 path")],
        Cloud::Empty,
        "",
    );
    assert!(run.success, "deploy.sh failed:\n{}", run.transcript());
    run
}

/// deploy.sh with `env` against an empty project, and Terraform evaluated for the same
/// settings (plus `extra` Terraform-only inputs). Terraform cannot compute deploy.sh's default
/// image tag (<git commit>-<UTC time>): when `env` leaves it to deploy.sh, the tag deploy.sh
/// deployed is passed as image_tag, as an operator would.
fn both_sides(env: &str, extra: &[(&str, Value)]) -> (Outcome, Plan) {
    let sandbox = Sandbox::new("terraform-drift");
    let run = deploy(&sandbox, env);
    let module = module();
    let mut inputs = inputs_for(&module, &env_pairs(env));
    if !inputs.contains_key("image_tag") {
        let image = run
            .calls_of(&["run", "deploy"])
            .first()
            .and_then(|c| c.flag("--image"))
            .expect("deploy.sh deploys an image")
            .to_owned();
        let tag = image.rsplit_once(':').expect("tagged image").1;
        inputs.insert("image_tag".into(), Value::from(tag));
    }
    for (name, value) in extra {
        inputs.insert((*name).to_owned(), value.clone());
    }
    let plan = module
        .evaluate(&inputs, &cloud_facts())
        .unwrap_or_else(|e| panic!("deploy/terraform does not evaluate: {e}"));
    (run, plan)
}

// ----------------------------------------------------------------------------------------
// Matching recorded gcloud changes to Terraform resources
// ----------------------------------------------------------------------------------------

/// The values at a dotted `path` of `value`, descending into every element of nested-block
/// lists; nulls (unset) are left out.
fn values_at<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![value];
    for step in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            let child = match v {
                Value::Object(map) => map.get(step),
                _ => None,
            };
            match child {
                Some(Value::Array(items)) if items.iter().all(Value::is_object) => {
                    next.extend(items.iter())
                }
                Some(Value::Null) | None => {}
                Some(other) => next.push(other),
            }
        }
        current = next;
    }
    current
}

/// Every scalar leaf of `config`, as (dotted path, value).
fn leaves(config: &hcl::Map<String, Value>) -> Vec<(String, Value)> {
    fn walk(value: &Value, path: String, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Null => {}
            Value::Object(map) => {
                for (k, v) in map {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, child, out);
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                for item in items {
                    walk(item, path.clone(), out);
                }
            }
            other => out.push((path, other.clone())),
        }
    }
    let mut out = Vec::new();
    walk(&Value::Object(config.clone()), String::new(), &mut out);
    out
}

/// The flags of a recorded call: `--name=value` as (name, Some(value)), `--switch` as
/// (name, None). deploy.sh always writes flags with `=`.
fn flags(call: &Call) -> Vec<(String, Option<String>)> {
    call.args
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| match a.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (a.clone(), None),
        })
        .collect()
}

/// gcloud durations (`10s`, `7d`, `1h`) as the API's seconds (`604800s`).
fn seconds(duration: &str) -> String {
    let (number, unit) = duration.split_at(duration.len() - 1);
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => panic!("unexpected duration {duration}"),
    };
    let n: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("duration {duration}"));
    format!("{}s", n * factor)
}

/// Compares one deploy.sh run with one Terraform plan.
struct Comparison<'a> {
    plan: &'a Plan,
    project: String,
    /// Paths of each matched instance that a recorded flag accounts for.
    consumed: BTreeMap<String, BTreeSet<String>>,
    /// Secrets deploy.sh created with a generated value (one random_password each).
    generated_secrets: usize,
    problems: Vec<String>,
}

impl<'a> Comparison<'a> {
    fn new(plan: &'a Plan) -> Self {
        Comparison {
            plan,
            project: plan.settings.project.clone(),
            consumed: BTreeMap::new(),
            generated_secrets: 0,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// The instances of `kind` for which every (path, value) holds.
    fn find(&self, kind: &str, wanted: &[(&str, &str)]) -> Vec<&'a Instance> {
        self.plan
            .resources
            .iter()
            .filter(|r| r.kind == kind)
            .filter(|r| {
                wanted.iter().all(|(path, value)| {
                    values_at(&Value::Object(r.attrs.clone()), path)
                        .iter()
                        .any(|v| text(v).as_deref() == Some(*value))
                })
            })
            .collect()
    }

    /// The one instance of `kind` matching `wanted`, marked as matched with those paths
    /// accounted for; a problem naming `what` when there is none or several.
    fn matching(
        &mut self,
        what: &str,
        kind: &str,
        wanted: &[(&str, &str)],
    ) -> Option<&'a Instance> {
        let found = self.find(kind, wanted);
        match found.as_slice() {
            [one] => {
                let one = *one;
                for (path, _) in wanted {
                    self.consume(one, path);
                }
                Some(one)
            }
            [] => {
                self.problem(format!(
                    "{what}: no {kind} in deploy/terraform with {wanted:?}"
                ));
                None
            }
            many => {
                let addresses: Vec<String> = many.iter().map(|r| r.address()).collect();
                self.problem(format!(
                    "{what}: several {kind} match {wanted:?}: {addresses:?}"
                ));
                None
            }
        }
    }

    fn consume(&mut self, instance: &Instance, path: &str) {
        self.consumed
            .entry(instance.address())
            .or_default()
            .insert(path.to_owned());
    }

    /// The configured value at `path` must be `expected` (one value; text comparison).
    fn expect(&mut self, what: &str, instance: &Instance, path: &str, expected: &str) {
        self.consume(instance, path);
        let values: Vec<String> = values_at(&Value::Object(instance.config.clone()), path)
            .into_iter()
            .map(|v| text(v).unwrap_or_else(|| v.to_string()))
            .collect();
        if values != [expected] {
            self.problem(format!(
                "{what}: deploy.sh has {expected:?}, Terraform's {}.{path} is {values:?}",
                instance.address()
            ));
        }
    }

    /// The configured list at `path` must hold exactly `expected`, in order.
    fn expect_list(&mut self, what: &str, instance: &Instance, path: &str, expected: &[&str]) {
        self.consume(instance, path);
        let values: Vec<String> = values_at(&Value::Object(instance.config.clone()), path)
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().filter_map(text).collect(),
                other => text(other).into_iter().collect::<Vec<_>>(),
            })
            .collect();
        if values != expected {
            self.problem(format!(
                "{what}: deploy.sh has {expected:?}, Terraform's {}.{path} is {values:?}",
                instance.address()
            ));
        }
    }

    /// The configured value at `path` must be absent or `default`.
    fn expect_default(&mut self, what: &str, instance: &Instance, path: &str, default: &str) {
        self.consume(instance, path);
        let values: Vec<String> = values_at(&Value::Object(instance.config.clone()), path)
            .into_iter()
            .filter_map(text)
            .collect();
        if !(values.is_empty() || values == [default]) {
            self.problem(format!(
                "{what}: deploy.sh leaves it at the default {default:?}, Terraform's {}.{path} is {values:?}",
                instance.address()
            ));
        }
    }

    fn unmapped_flag(&mut self, call: &Call, flag: &str) {
        self.problem(format!(
            "`gcloud {}` passes {flag}, which has no Terraform counterpart here: \
             add it to deploy/terraform and to tests/terraform.rs",
            call.args
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }

    fn topic_id(&self, name: &str) -> String {
        format!("projects/{}/topics/{name}", self.project)
    }

    fn compare(&mut self, call: &Call) {
        let args: Vec<&str> = call.args.iter().map(String::as_str).collect();
        let line = call.line();
        match args.as_slice() {
            ["services", "enable", apis @ ..] => {
                let apis: Vec<&str> = apis
                    .iter()
                    .copied()
                    .filter(|a| !a.starts_with("--"))
                    .collect();
                for api in &apis {
                    self.matching(&line, "google_project_service", &[("service", api)]);
                }
                let declared = self.plan.of_kind("google_project_service").len();
                if declared != apis.len() {
                    self.problem(format!(
                        "deploy.sh enables {} APIs, Terraform {declared}",
                        apis.len()
                    ));
                }
            }
            ["iam", "service-accounts", "create", id, ..] => {
                let Some(account) =
                    self.matching(&line, "google_service_account", &[("account_id", id)])
                else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--display-name" => self.expect(&line, account, "display_name", &value),
                        "--description" => self.expect(&line, account, "description", &value),
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["projects", "add-iam-policy-binding", project, ..] => {
                let (member, role) = (call.flag("--member"), call.flag("--role"));
                let (Some(member), Some(role)) = (member, role) else {
                    return self.problem(format!("{line}: no --member or --role"));
                };
                let Some(grant) = self.matching(
                    &line,
                    "google_project_iam_member",
                    &[("role", role), ("member", member)],
                ) else {
                    return;
                };
                self.expect(&line, grant, "project", project);
                for (flag, value) in flags(call) {
                    match (flag.as_str(), value.as_deref()) {
                        ("--member" | "--role", _) | ("--format", Some("none")) => {}
                        // An unconditional binding: Terraform's has no condition block.
                        ("--condition", Some("None")) => {
                            if grant.config.contains_key("condition") {
                                self.problem(format!("{}: has a condition", grant.address()));
                            }
                        }
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["secrets", "create", name, ..] => {
                let Some(secret) = self.matching(
                    &line,
                    "google_secret_manager_secret",
                    &[("secret_id", name)],
                ) else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--replication-policy" if value == "user-managed" => {
                            self.consume(secret, "replication.user_managed");
                            if values_at(
                                &Value::Object(secret.config.clone()),
                                "replication.user_managed",
                            )
                            .is_empty()
                            {
                                self.problem(format!(
                                    "{}: replication is not user_managed",
                                    secret.address()
                                ));
                            }
                        }
                        "--locations" => self.expect(
                            &line,
                            secret,
                            "replication.user_managed.replicas.location",
                            &value,
                        ),
                        // The value is generated and piped in: Terraform generates it with
                        // random_password and stores it as the first version.
                        "--data-file" if value == "-" => self.generated_version(secret),
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["secrets", "add-iam-policy-binding", name, ..] => {
                let (Some(member), Some(role)) = (call.flag("--member"), call.flag("--role"))
                else {
                    return self.problem(format!("{line}: no --member or --role"));
                };
                // Terraform may name the secret by id or by full name.
                let full = format!("projects/{}/secrets/{name}", self.project);
                let by_id = !self
                    .find(
                        "google_secret_manager_secret_iam_member",
                        &[("secret_id", name), ("role", role), ("member", member)],
                    )
                    .is_empty();
                let value = if by_id { *name } else { full.as_str() };
                self.matching(
                    &line,
                    "google_secret_manager_secret_iam_member",
                    &[("secret_id", value), ("role", role), ("member", member)],
                );
                for (flag, value) in flags(call) {
                    match (flag.as_str(), value.as_deref()) {
                        ("--member" | "--role", _) | ("--format", Some("none")) => {}
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["redis", "instances", "create", id, ..] => {
                let Some(redis) = self.matching(&line, "google_redis_instance", &[("name", id)])
                else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--region" => self.expect(&line, redis, "region", &value),
                        "--tier" => {
                            let api = match value.as_str() {
                                "basic" => "BASIC",
                                "standard" => "STANDARD_HA",
                                other => panic!("unexpected tier {other}"),
                            };
                            self.expect(&line, redis, "tier", api)
                        }
                        "--size" => self.expect(&line, redis, "memory_size_gb", &value),
                        "--redis-version" => {
                            self.expect(&line, redis, "redis_version", &value.to_uppercase())
                        }
                        "--network" => self.expect(&line, redis, "authorized_network", &value),
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["network-connectivity", "service-connection-policies", "create", name, ..] => {
                let Some(policy) = self.matching(
                    &line,
                    "google_network_connectivity_service_connection_policy",
                    &[("name", name)],
                ) else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--region" => self.expect(&line, policy, "location", &value),
                        "--network" => self.expect(&line, policy, "network", &value),
                        "--service-class" => self.expect(&line, policy, "service_class", &value),
                        "--description" => self.expect(&line, policy, "description", &value),
                        "--subnets" => {
                            let subnets: Vec<&str> = value.split(',').collect();
                            self.expect_list(&line, policy, "psc_config.subnetworks", &subnets)
                        }
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["redis", "clusters", "create", id, ..] => {
                let Some(cluster) = self.matching(&line, "google_redis_cluster", &[("name", id)])
                else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--region" => self.expect(&line, cluster, "region", &value),
                        "--network" => self.expect(&line, cluster, "psc_configs.network", &value),
                        "--shard-count" => self.expect(&line, cluster, "shard_count", &value),
                        "--replica-count" => self.expect(&line, cluster, "replica_count", &value),
                        "--node-type" => self.expect(
                            &line,
                            cluster,
                            "node_type",
                            &value.to_uppercase().replace('-', "_"),
                        ),
                        "--transit-encryption-mode" => {
                            let api = match value.as_str() {
                                "disabled" => "TRANSIT_ENCRYPTION_MODE_DISABLED",
                                "server-authentication" => {
                                    "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"
                                }
                                other => panic!("unexpected transit encryption mode {other}"),
                            };
                            self.expect(&line, cluster, "transit_encryption_mode", api)
                        }
                        "--auth-mode" => {
                            let api = match value.as_str() {
                                "disabled" => "AUTH_MODE_DISABLED",
                                "iam-auth" => "AUTH_MODE_IAM_AUTH",
                                other => panic!("unexpected auth mode {other}"),
                            };
                            self.expect(&line, cluster, "authorization_mode", api)
                        }
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["compute", "networks", "vpc-access", "connectors", "create", name, ..] => {
                let Some(connector) =
                    self.matching(&line, "google_vpc_access_connector", &[("name", name)])
                else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--region" => self.expect(&line, connector, "region", &value),
                        "--network" => self.expect(&line, connector, "network", &value),
                        "--range" => self.expect(&line, connector, "ip_cidr_range", &value),
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["artifacts", "repositories", "create", name, ..] => {
                let Some(repository) = self.matching(
                    &line,
                    "google_artifact_registry_repository",
                    &[("repository_id", name)],
                ) else {
                    return;
                };
                for (flag, value) in flags(call) {
                    let value = value.unwrap_or_default();
                    match flag.as_str() {
                        "--repository-format" => {
                            self.expect(&line, repository, "format", &value.to_uppercase())
                        }
                        "--location" => self.expect(&line, repository, "location", &value),
                        "--description" => self.expect(&line, repository, "description", &value),
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            // Terraform does not build: each service runs the image deploy.sh pushes.
            ["builds", "submit", ..] => {
                let image = call
                    .flag("--substitutions")
                    .and_then(|s| s.split(',').find_map(|i| i.strip_prefix("_IMAGE=")))
                    .unwrap_or_default();
                if self
                    .find(
                        "google_cloud_run_v2_service",
                        &[("template.containers.image", image)],
                    )
                    .is_empty()
                {
                    self.problem(format!("no Cloud Run service in Terraform runs {image}"));
                }
            }
            ["run", "deploy", name, ..] => self.compare_run_deploy(call, name),
            ["run", "services", "add-iam-policy-binding", name, ..] => {
                let (Some(member), Some(role)) = (call.flag("--member"), call.flag("--role"))
                else {
                    return self.problem(format!("{line}: no --member or --role"));
                };
                let Some(grant) = self.matching(
                    &line,
                    "google_cloud_run_v2_service_iam_member",
                    &[("name", name), ("role", role), ("member", member)],
                ) else {
                    return;
                };
                for (flag, value) in flags(call) {
                    match (flag.as_str(), value) {
                        ("--member" | "--role", _) => {}
                        ("--format", Some(v)) if v == "none" => {}
                        ("--region", Some(region)) => {
                            self.expect(&line, grant, "location", &region)
                        }
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            ["pubsub", "topics", "create", name] => {
                self.matching(&line, "google_pubsub_topic", &[("name", name)]);
            }
            ["pubsub", "subscriptions", "create", name, ..] => {
                self.compare_subscription(call, name)
            }
            ["pubsub", kind @ ("topics" | "subscriptions"), "add-iam-policy-binding", name, ..] => {
                let (Some(member), Some(role)) = (call.flag("--member"), call.flag("--role"))
                else {
                    return self.problem(format!("{line}: no --member or --role"));
                };
                let (resource, attribute) = if *kind == "topics" {
                    ("google_pubsub_topic_iam_member", "topic")
                } else {
                    ("google_pubsub_subscription_iam_member", "subscription")
                };
                // Terraform may name the topic or subscription by name or by full id.
                let full = format!("projects/{}/{kind}/{name}", self.project);
                let by_name = !self
                    .find(
                        resource,
                        &[(attribute, name), ("role", role), ("member", member)],
                    )
                    .is_empty();
                let value = if by_name { *name } else { full.as_str() };
                self.matching(
                    &line,
                    resource,
                    &[(attribute, value), ("role", role), ("member", member)],
                );
                for (flag, value) in flags(call) {
                    match (flag.as_str(), value.as_deref()) {
                        ("--member" | "--role", _) | ("--format", Some("none")) => {}
                        _ => self.unmapped_flag(call, &flag),
                    }
                }
            }
            _ => self.problem(format!(
                "deploy.sh runs `gcloud {line}`, which has no Terraform counterpart here: \
                 add it to deploy/terraform and to tests/terraform.rs"
            )),
        }
    }

    /// The secret's value: a google_secret_manager_secret_version of that secret holding what
    /// random_password generates (after a fixed prefix, as deploy.sh pipes the CX webhook's
    /// `Bearer <random>`), at least as strong as deploy.sh's 48 random bytes.
    fn generated_version(&mut self, secret: &'a Instance) {
        let secret_id = secret.text("id").unwrap_or_default();
        let versions = self.find(
            "google_secret_manager_secret_version",
            &[("secret", &secret_id)],
        );
        let [version] = versions.as_slice() else {
            return self.problem(format!(
                "the generated secret {secret_id}: {} versions in deploy/terraform, expected one",
                versions.len()
            ));
        };
        for path in ["secret", "secret_data"] {
            self.consume(version, path);
        }
        if !version
            .text("secret_data")
            .is_some_and(|data| data.ends_with(GENERATED_PASSWORD))
        {
            self.problem(format!(
                "{}: the value is not generated by random_password",
                version.address()
            ));
        }
        self.generated_secrets += 1;
        // Every generator makes the same marker here, so each is checked (once per secret is
        // harmless); `finish` checks there is one per generated secret.
        for password in self.plan.of_kind("random_password") {
            self.check_generator(password);
        }
    }

    fn check_generator(&mut self, password: &'a Instance) {
        for path in ["length", "special", "override_special"] {
            self.consume(password, path);
        }
        let length: f64 = password
            .text("length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0.0);
        let special = password.text("special").as_deref() != Some("false");
        let extra = if special {
            password
                .text("override_special")
                .map(|s| s.chars().collect::<BTreeSet<_>>().len())
                .unwrap_or(28) // random_password's default special characters
        } else {
            0
        };
        for flag in [
            "upper",
            "lower",
            "numeric",
            "min_upper",
            "min_lower",
            "min_numeric",
            "min_special",
        ] {
            if password.config.contains_key(flag) {
                let problem = format!(
                    "{}: {flag} changes the alphabet this test assumes",
                    password.address()
                );
                if !self.problems.contains(&problem) {
                    self.problem(problem);
                }
            }
        }
        let bits = length * ((62 + extra) as f64).log2();
        if bits < 384.0 {
            let problem = format!(
                "{}: {bits:.0} bits of randomness, fewer than deploy.sh's 384 (48 bytes)",
                password.address()
            );
            if !self.problems.contains(&problem) {
                self.problem(problem);
            }
        }
    }

    fn compare_run_deploy(&mut self, call: &Call, name: &str) {
        let line = format!("gcloud run deploy {name}");
        let Some(service) = self.matching(&line, "google_cloud_run_v2_service", &[("name", name)])
        else {
            return;
        };
        let given: BTreeMap<String, Option<String>> = flags(call).into_iter().collect();
        for (flag, value) in &given {
            let value = value.clone().unwrap_or_default();
            match flag.as_str() {
                "--image" => self.expect(&line, service, "template.containers.image", &value),
                "--region" => self.expect(&line, service, "location", &value),
                "--service-account" => {
                    self.expect(&line, service, "template.service_account", &value)
                }
                "--allow-unauthenticated" => {
                    self.matching(
                        &format!("{line} --allow-unauthenticated"),
                        "google_cloud_run_v2_service_iam_member",
                        &[
                            ("name", name),
                            ("location", &service.text("location").unwrap_or_default()),
                            ("role", "roles/run.invoker"),
                            ("member", "allUsers"),
                        ],
                    );
                }
                "--no-allow-unauthenticated" => {
                    for public in ["allUsers", "allAuthenticatedUsers"] {
                        let grants = self.find(
                            "google_cloud_run_v2_service_iam_member",
                            &[("name", name), ("member", public)],
                        );
                        if !grants.is_empty() {
                            self.problem(format!(
                                "{line} --no-allow-unauthenticated, but Terraform grants {public}"
                            ));
                        }
                    }
                }
                "--timeout" => {
                    let expected = if value.ends_with('s') {
                        value.clone()
                    } else {
                        format!("{value}s")
                    };
                    self.expect(&line, service, "template.timeout", &expected)
                }
                "--session-affinity" => {
                    self.expect(&line, service, "template.session_affinity", "true")
                }
                "--vpc-connector" => {
                    let connector = self
                        .find("google_vpc_access_connector", &[("name", &value)])
                        .first()
                        .and_then(|c| c.text("id"))
                        .unwrap_or_else(|| format!("<no connector named {value}>"));
                    self.expect(&line, service, "template.vpc_access.connector", &connector)
                }
                "--vpc-egress" => {
                    let api = value.to_uppercase().replace('-', "_");
                    self.expect(&line, service, "template.vpc_access.egress", &api)
                }
                // Pull mode: CPU allocated outside requests.
                "--no-cpu-throttling" => self.expect(
                    &line,
                    service,
                    "template.containers.resources.cpu_idle",
                    "false",
                ),
                "--min-instances" => self.expect(
                    &line,
                    service,
                    "template.scaling.min_instance_count",
                    &value,
                ),
                "--max-instances" => self.expect(
                    &line,
                    service,
                    "template.scaling.max_instance_count",
                    &value,
                ),
                "--ingress" => {
                    let api = match value.as_str() {
                        "all" => "INGRESS_TRAFFIC_ALL",
                        "internal" => "INGRESS_TRAFFIC_INTERNAL_ONLY",
                        "internal-and-cloud-load-balancing" => {
                            "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
                        }
                        other => panic!("unexpected ingress {other}"),
                    };
                    self.expect(&line, service, "ingress", api)
                }
                "--set-env-vars" => self.compare_env(&line, service, &value),
                "--set-secrets" => self.compare_secret_mounts(&line, service, &value),
                _ => self.unmapped_flag(call, flag),
            }
        }
        // What gcloud does when a flag is left out.
        if !given.contains_key("--ingress") {
            self.expect_default(&line, service, "ingress", "INGRESS_TRAFFIC_ALL");
        }
        if given.contains_key("--vpc-connector") && !given.contains_key("--vpc-egress") {
            self.expect_default(
                &line,
                service,
                "template.vpc_access.egress",
                "PRIVATE_RANGES_ONLY",
            );
        }
    }

    fn compare_env(&mut self, line: &str, service: &Instance, value: &str) {
        self.consume(service, "template.containers.env");
        let recorded: BTreeMap<String, String> = parse_env_vars(value).into_iter().collect();
        let declared: BTreeMap<String, String> = values_at(
            &Value::Object(service.config.clone()),
            "template.containers.env",
        )
        .into_iter()
        .map(|env| {
            let field = |f: &str| {
                values_at(env, f)
                    .first()
                    .and_then(|v| text(v))
                    .unwrap_or_default()
            };
            (field("name"), field("value"))
        })
        .collect();
        if recorded != declared {
            self.problem(format!(
                "{line}: environment differs\n    deploy.sh: {recorded:?}\n    Terraform: {declared:?}"
            ));
        }
    }

    /// `--set-secrets=/dir/file=SECRET:VERSION,...`: a volume of that secret version mounted
    /// so that the file appears at that path.
    fn compare_secret_mounts(&mut self, line: &str, service: &Instance, value: &str) {
        for path in ["template.volumes", "template.containers.volume_mounts"] {
            self.consume(service, path);
        }
        let config = Value::Object(service.config.clone());
        for mount in value.split(',') {
            let (path, reference) = mount.split_once('=').expect("PATH=SECRET:VERSION");
            let (secret, version) = reference.split_once(':').expect("SECRET:VERSION");
            let Some((dir, file)) = path.rsplit_once('/').filter(|_| path.starts_with('/')) else {
                return self.problem(format!(
                    "{line}: secret as environment variable {path} is not mapped"
                ));
            };
            let secret_id = format!("projects/{}/secrets/{secret}", self.project);
            let found = values_at(&config, "template.volumes")
                .into_iter()
                .any(|volume| {
                    let first = |p: &str| values_at(volume, p).first().and_then(|v| text(v));
                    let name = first("name").unwrap_or_default();
                    let secret_matches =
                        first("secret.secret").is_some_and(|s| s == secret || s == secret_id);
                    let item_matches = values_at(volume, "secret.items").iter().any(|item| {
                        let field = |f: &str| values_at(item, f).first().and_then(|v| text(v));
                        field("path").as_deref() == Some(file)
                            && field("version").as_deref() == Some(version)
                    });
                    let mounted = values_at(&config, "template.containers.volume_mounts")
                        .iter()
                        .any(|m| {
                            let field = |f: &str| values_at(m, f).first().and_then(|v| text(v));
                            field("name") == Some(name.clone())
                                && field("mount_path").as_deref() == Some(dir)
                        });
                    secret_matches && item_matches && mounted
                });
            if !found {
                self.problem(format!(
                    "{line}: no volume of secret {secret} version {version} mounted at {path} in {}",
                    service.address()
                ));
            }
        }
    }

    fn compare_subscription(&mut self, call: &Call, name: &str) {
        let line = format!("gcloud pubsub subscriptions create {name}");
        let Some(sub) = self.matching(&line, "google_pubsub_subscription", &[("name", name)])
        else {
            return;
        };
        for (flag, value) in flags(call) {
            let value = value.unwrap_or_default();
            match flag.as_str() {
                "--topic" => {
                    let id = self.topic_id(&value);
                    self.expect(&line, sub, "topic", &id)
                }
                "--push-endpoint" => self.expect(&line, sub, "push_config.push_endpoint", &value),
                "--push-auth-service-account" => self.expect(
                    &line,
                    sub,
                    "push_config.oidc_token.service_account_email",
                    &value,
                ),
                "--push-auth-token-audience" => {
                    self.expect(&line, sub, "push_config.oidc_token.audience", &value)
                }
                "--ack-deadline" => self.expect(&line, sub, "ack_deadline_seconds", &value),
                "--dead-letter-topic" => {
                    let id = self.topic_id(&value);
                    self.expect(&line, sub, "dead_letter_policy.dead_letter_topic", &id)
                }
                "--max-delivery-attempts" => self.expect(
                    &line,
                    sub,
                    "dead_letter_policy.max_delivery_attempts",
                    &value,
                ),
                "--min-retry-delay" => {
                    self.expect(&line, sub, "retry_policy.minimum_backoff", &seconds(&value))
                }
                "--max-retry-delay" => {
                    self.expect(&line, sub, "retry_policy.maximum_backoff", &seconds(&value))
                }
                "--expiration-period" => {
                    let ttl = if value == "never" {
                        String::new()
                    } else {
                        seconds(&value)
                    };
                    self.expect(&line, sub, "expiration_policy.ttl", &ttl)
                }
                "--message-retention-duration" => {
                    self.expect(&line, sub, "message_retention_duration", &seconds(&value))
                }
                _ => self.unmapped_flag(call, &flag),
            }
        }
    }

    /// Every Terraform resource must have been matched, and every setting it declares
    /// accounted for by a flag or listed in SPELLED_OUT_DEFAULTS.
    fn finish(mut self) -> Vec<String> {
        let generators = self.plan.of_kind("random_password").len();
        if generators != self.generated_secrets {
            self.problems.push(format!(
                "deploy.sh generates {} secrets, Terraform has {generators} random_password",
                self.generated_secrets
            ));
        }
        for resource in &self.plan.resources {
            let address = resource.address();
            let Some(consumed) = self.consumed.get(&address).cloned() else {
                self.problems.push(format!(
                    "Terraform creates {address}, which deploy.sh does not"
                ));
                continue;
            };
            for (path, value) in leaves(&resource.config) {
                let covered = consumed
                    .iter()
                    .any(|c| path == *c || path.starts_with(&format!("{c}.")));
                if covered {
                    continue;
                }
                let value = text(&value).unwrap_or_else(|| value.to_string());
                let spelled_out = SPELLED_OUT_DEFAULTS
                    .iter()
                    .find(|(kind, p, _, _)| *kind == resource.kind && *p == path);
                match spelled_out {
                    Some((_, _, default, _)) if *default == value => {}
                    Some((_, _, default, why)) => self.problems.push(format!(
                        "{address}.{path} = {value:?}, but deploy.sh relies on {default:?} ({why})"
                    )),
                    None => self.problems.push(format!(
                        "Terraform sets {address}.{path} = {value:?}, which deploy.sh does not"
                    )),
                }
            }
        }
        self.problems
    }
}

/// Runs both sides for `env` and asserts they create the same things.
fn assert_same_deployment(env: &str, extra: &[(&str, Value)]) -> (Outcome, Plan) {
    let (run, plan) = both_sides(env, extra);
    let mut comparison = Comparison::new(&plan);
    for call in run.changes() {
        comparison.compare(call);
    }
    let problems = comparison.finish();
    assert!(
        problems.is_empty(),
        "deploy/terraform and deploy.sh differ:\n  {}\n\ndeploy.sh's calls:\n{}",
        problems.join("\n  "),
        run.transcript()
    );
    (run, plan)
}

/// The URL and topics deploy.sh prints at the end are Terraform's outputs.
fn assert_outputs_match_summary(run: &Outcome, plan: &Plan) {
    let printed_url = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("UI connector: "))
        .expect("deploy.sh prints the connector URL");
    assert_eq!(
        plan.outputs.get("connector_url").and_then(text).as_deref(),
        Some(printed_url)
    );
    let printed_topics: BTreeSet<String> = run
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("projects/") && l.contains("/topics/"))
        .map(str::to_owned)
        .collect();
    assert_eq!(printed_topics.len(), 4, "{}", run.stdout);
    let output_topics: BTreeSet<String> = match plan.outputs.get("notification_topics") {
        Some(Value::Object(map)) => map.values().filter_map(text).collect(),
        other => panic!("notification_topics is {other:?}"),
    };
    assert_eq!(output_topics, printed_topics);
    // The push endpoints deploy.sh used start with the interceptor URL Terraform outputs
    // (pull mode has none).
    let interceptor_url = plan
        .outputs
        .get("interceptor_url")
        .and_then(text)
        .expect("interceptor_url output");
    let endpoints: Vec<&Call> = run
        .calls_of(&["pubsub", "subscriptions", "create"])
        .into_iter()
        .filter(|c| c.flag("--push-endpoint").is_some())
        .collect();
    let pulls = run.stdout.contains("(pull mode)");
    assert_eq!(endpoints.len(), if pulls { 0 } else { 4 }, "{}", run.stdout);
    for call in endpoints {
        let endpoint = call.flag("--push-endpoint").unwrap();
        assert!(
            endpoint.starts_with(&format!("{interceptor_url}/")),
            "{endpoint} is not under {interceptor_url}"
        );
    }
}

/// Both services' Redis settings, on each side: what deploy.sh passed, what Terraform sets.
fn redis_settings(run: &Outcome, plan: &Plan) -> Vec<BTreeMap<String, String>> {
    const NAMES: [&str; 3] = ["REDISHOST", "REDISPORT", "REDIS_CLUSTER_NODES"];
    let mut settings = Vec::new();
    for call in run.calls_of(&["run", "deploy"]) {
        let env = parse_env_vars(call.flag("--set-env-vars").expect("env vars"));
        settings.push(
            env.into_iter()
                .filter(|(k, _)| NAMES.contains(&k.as_str()))
                .collect(),
        );
    }
    for service in plan.of_kind("google_cloud_run_v2_service") {
        let mut env = env_of(service);
        env.retain(|k, _| NAMES.contains(&k.as_str()));
        settings.push(env);
    }
    settings
}

#[test]
fn terraform_creates_what_deploy_sh_creates_with_every_setting_changed() {
    let (run, plan) = assert_same_deployment(DRIFT_ENV, &[]);
    assert_outputs_match_summary(&run, &plan);
    // DRIFT_ENV deploys a Redis cluster: its policy and the cluster instead of an instance, and
    // both services on both sides get the discovery endpoint as their seed node, nothing else.
    assert_eq!(plan.of_kind("google_redis_instance").len(), 0);
    assert_eq!(plan.of_kind("google_redis_cluster").len(), 1);
    assert_eq!(
        plan.of_kind("google_network_connectivity_service_connection_policy")
            .len(),
        1
    );
    let seed = format!(
        "redis://{}:{}",
        support::REDIS_CLUSTER_ADDRESS,
        support::REDIS_CLUSTER_PORT
    );
    let settings = redis_settings(&run, &plan);
    assert_eq!(settings.len(), 4);
    for env in settings {
        assert_eq!(
            env,
            BTreeMap::from([("REDIS_CLUSTER_NODES".to_owned(), seed.clone())])
        );
    }
    // The comparison covered the whole deployment, not a part of it.
    assert!(
        plan.resources.len() >= 40,
        "{} resources",
        plan.resources.len()
    );
    assert!(run.changes().len() >= 35, "{}", run.transcript());
}

#[test]
fn terraform_creates_what_deploy_sh_creates_in_push_mode_with_every_setting_changed() {
    // DRIFT_ENV pulls; the same settings in push mode (INTERCEPTOR_MODE later in the file wins).
    // And with a standalone Redis instance, whose settings DRIFT_ENV changes too.
    let env = format!("{DRIFT_ENV}\nINTERCEPTOR_MODE='push'\n{STANDALONE_DRIFT}");
    let (run, plan) = assert_same_deployment(&env, &[]);
    assert_outputs_match_summary(&run, &plan);
    assert_eq!(plan.of_kind("google_redis_instance").len(), 1);
    assert!(plan.of_kind("google_redis_cluster").is_empty());
    assert!(plan
        .of_kind("google_network_connectivity_service_connection_policy")
        .is_empty());
    for env in redis_settings(&run, &plan) {
        assert_eq!(
            env,
            BTreeMap::from([
                ("REDISHOST".to_owned(), support::REDIS_HOST.to_owned()),
                ("REDISPORT".to_owned(), support::REDIS_PORT.to_owned()),
            ])
        );
    }
    assert!(plan
        .of_kind("google_pubsub_subscription_iam_member")
        .iter()
        .all(|grant| !grant.address().contains("interceptor_subscriber")));
}

#[test]
fn pull_mode_is_the_same_on_both_sides() {
    let (run, plan) = both_sides(DRIFT_ENV, &[]);
    // The pieces pull mode changes, checked directly besides the full comparison above.
    let interceptor = plan
        .of_kind("google_cloud_run_v2_service")
        .into_iter()
        .find(|s| s.text("name").as_deref() == Some("d-interceptor"))
        .expect("interceptor");
    assert_eq!(
        env_of(interceptor)
            .get("PUBSUB_PULL_SUBSCRIPTIONS")
            .map(String::as_str),
        Some(
            "human-agent-assistant-event=projects/drift-project/subscriptions/d-haa-sub,\
             conversation-lifecycle-event=projects/drift-project/subscriptions/d-lifecycle-sub,\
             new-message-event=projects/drift-project/subscriptions/d-message-sub,\
             new-recognition-result-notification-event=projects/drift-project/subscriptions/d-recognition-sub"
        )
    );
    // INTERCEPTOR_MIN_INSTANCES='0' is raised to 1: with none, nothing would pull.
    let scaling: Vec<String> = values_at(
        &Value::Object(interceptor.config.clone()),
        "template.scaling.min_instance_count",
    )
    .into_iter()
    .filter_map(text)
    .collect();
    assert_eq!(scaling, ["1"]);
    let deployed = run.one(&["run", "deploy"], "d-interceptor");
    assert_eq!(deployed.flag("--min-instances"), Some("1"));
    assert!(deployed.has("--no-cpu-throttling"));
    let readers: BTreeSet<String> = plan
        .of_kind("google_pubsub_subscription_iam_member")
        .into_iter()
        .filter(|g| {
            g.text("member").as_deref()
                == Some("serviceAccount:d-interceptor-sa@drift-project.iam.gserviceaccount.com")
        })
        .filter_map(|g| g.text("subscription"))
        .collect();
    assert_eq!(readers.len(), 4, "{readers:?}");
    assert!(plan
        .of_kind("google_pubsub_subscription")
        .iter()
        .all(|s| !s.config.contains_key("push_config")));
}

#[test]
fn terraform_defaults_are_deploy_sh_defaults() {
    let (run, plan) = assert_same_deployment(MINIMAL_ENV, &[]);
    assert_outputs_match_summary(&run, &plan);
    // Spot checks that the defaults really were compared.
    assert!(run.stdout.contains("aa-human-agent-assistant-topic"));
    assert!(plan
        .of_kind("google_redis_instance")
        .iter()
        .any(|r| r.text("name").as_deref() == Some("aa-integration-redis")));
}

#[test]
fn terraform_cluster_defaults_are_deploy_sh_defaults() {
    let env = format!("{MINIMAL_ENV}REDIS_MODE='cluster'\n");
    let (run, plan) = assert_same_deployment(&env, &[]);
    assert_outputs_match_summary(&run, &plan);
    let cluster = run.one(
        &["redis", "clusters", "create"],
        "aa-integration-redis-cluster",
    );
    assert_eq!(cluster.flag("--shard-count"), Some("3"));
    assert_eq!(cluster.flag("--node-type"), Some("redis-highmem-medium"));
    assert!(plan
        .of_kind("google_network_connectivity_service_connection_policy")
        .iter()
        .any(|p| p.text("name").as_deref() == Some("aa-integration-redis-psc")));
}

#[test]
fn the_comparison_catches_a_difference() {
    // The same comparison as above, with a Terraform that differs from deploy.sh in one
    // setting and one extra resource: both must be reported.
    let sandbox = Sandbox::new("terraform-negative");
    let run = deploy(&sandbox, MINIMAL_ENV);
    let module = module();
    let mut inputs = inputs_for(&module, &env_pairs(MINIMAL_ENV));
    let tag = run.calls_of(&["run", "deploy"])[0]
        .flag("--image")
        .and_then(|i| i.rsplit_once(':'))
        .map(|(_, t)| t.to_owned())
        .expect("tag");
    inputs.insert("image_tag".into(), Value::from(tag));
    // A setting changed on the Terraform side only: the interceptor gets an environment
    // deploy.sh does not give it, the subscriptions another audience.
    inputs.insert(
        "push_auth_audience".into(),
        Value::from("https://aud.example"),
    );
    let mut plan = module.evaluate(&inputs, &cloud_facts()).expect("evaluates");
    let mut extra = plan.of_kind("google_pubsub_topic")[0].clone();
    extra.name = "stray".into();
    extra.key = None;
    for map in [&mut extra.config, &mut extra.attrs] {
        map.insert("name".into(), Value::from("stray-topic"));
    }
    plan.resources.push(extra);

    let mut comparison = Comparison::new(&plan);
    for call in run.changes() {
        comparison.compare(call);
    }
    let problems = comparison.finish();
    let all = problems.join("\n");
    assert!(all.contains("environment differs"), "{all}");
    assert!(all.contains("PUSH_AUTH_AUDIENCE"), "{all}");
    assert!(all.contains("oidc_token.audience"), "{all}");
    assert!(all.contains("google_pubsub_topic.stray"), "{all}");

    // And a gcloud command with no counterpart is reported, not skipped.
    let mut comparison = Comparison::new(&plan);
    comparison.compare(&Call {
        project: "p".into(),
        args: vec![
            "sql".into(),
            "instances".into(),
            "create".into(),
            "db".into(),
        ],
    });
    let mut with_flag = run.calls_of(&["run", "deploy"])[0].clone();
    with_flag.args.push("--execution-environment=gen2".into());
    comparison.compare(&with_flag);
    let problems = comparison.problems.join("\n");
    assert!(
        problems.contains("gcloud sql instances create db"),
        "{problems}"
    );
    assert!(problems.contains("--execution-environment"), "{problems}");
}

// ----------------------------------------------------------------------------------------
// Settings and variables
// ----------------------------------------------------------------------------------------

#[test]
fn every_env_setting_is_a_terraform_variable_with_a_description() {
    let module = module();
    let sample: BTreeSet<String> = sample_settings().into_iter().map(|(k, _)| k).collect();
    assert!(sample.len() > 30, "{sample:?}");
    let mut expected: BTreeSet<String> = sample.iter().map(|k| k.to_lowercase()).collect();
    for (name, why) in TERRAFORM_ONLY_VARIABLES {
        assert!(
            !sample.contains(&name.to_uppercase()),
            "{} is now a deploy.sh setting: remove {name} from TERRAFORM_ONLY_VARIABLES \
             ({why}) and add it to DRIFT_ENV",
            name.to_uppercase()
        );
        expected.insert(name.to_owned());
    }
    let declared: BTreeSet<String> = module.variables.keys().cloned().collect();
    assert_eq!(
        declared, expected,
        "deploy/terraform/variables.tf and deploy/.env.sample disagree"
    );
    for (name, variable) in &module.variables {
        assert!(
            variable
                .description
                .as_deref()
                .is_some_and(|d| d.len() > 10),
            "variable {name} has no description"
        );
    }
}

#[test]
fn drift_env_changes_every_setting() {
    let sample = sample_settings();
    let drift: BTreeMap<String, String> = env_pairs(DRIFT_ENV).into_iter().collect();
    for (key, sample_value) in &sample {
        let value = drift.get(key).unwrap_or_else(|| {
            panic!("DRIFT_ENV does not set {key}: add it with a non-default value")
        });
        assert_ne!(
            value, sample_value,
            "DRIFT_ENV leaves {key} at its sample value"
        );
    }
    assert_eq!(
        drift.len(),
        sample.len(),
        "DRIFT_ENV sets settings .env.sample lacks"
    );
}

#[test]
fn required_settings_are_the_variables_without_default() {
    let module = module();
    let without_default: BTreeSet<String> = module
        .variables
        .iter()
        .filter(|(_, v)| v.default.is_none())
        .map(|(n, _)| n.to_uppercase())
        .collect();
    let minimal: BTreeSet<String> = env_pairs(MINIMAL_ENV).into_iter().map(|(k, _)| k).collect();
    assert_eq!(without_default, minimal);
    // MINIMAL_ENV is exactly what deploy.sh requires: each of its settings is needed.
    let sandbox = Sandbox::new("terraform-required");
    for key in &minimal {
        let env: String = MINIMAL_ENV
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}=")))
            .collect::<Vec<_>>()
            .join("\n");
        let env_file = sandbox.env_file(&env);
        let run = sandbox.run(
            "deploy.sh",
            &["--env-file", env_file.to_str().unwrap(), "--dry-run"],
            Cloud::Empty,
            "",
        );
        assert!(
            !run.success && run.stderr.contains(key),
            "{key}: {}",
            run.transcript()
        );
    }
}

#[test]
fn terraform_rejects_what_deploy_sh_rejects() {
    let module = module();
    let drift = env_pairs(DRIFT_ENV);
    let base = inputs_for(&module, &drift);
    assert_eq!(module.failed_validations(&base), Ok(vec![]));
    let minimal = inputs_for(&module, &env_pairs(MINIMAL_ENV));
    assert_eq!(module.failed_validations(&minimal), Ok(vec![]));

    let sandbox = Sandbox::new("terraform-invalid");
    let cases = [
        ("MAX_DELIVERY_ATTEMPTS", "1000", false),
        ("MAX_DELIVERY_ATTEMPTS", "4", false),
        ("MAX_DELIVERY_ATTEMPTS", "5", true),
        ("ACK_DEADLINE_SECONDS", "5", false),
        ("ACK_DEADLINE_SECONDS", "600", true),
        ("REDIS_SIZE_GB", "0", false),
        ("REDIS_TIER", "premium", false),
        ("VPC_CONNECTOR_RANGE", "10.9.0.0/24", false),
        ("VPC_CONNECTOR_RANGE", "10.9.0/28", false),
        ("CONNECTOR_MIN_INSTANCES", "1001", false),
        ("INTERCEPTOR_MIN_INSTANCES", "1.5", false),
        ("INTERCEPTOR_MIN_INSTANCES", "0", true),
        ("DISCONNECT_ON_TOKEN_EXPIRY", "yes", false),
        ("DISCONNECT_ON_TOKEN_EXPIRY", "false", true),
        ("PYTHON_CONNECTOR_BRIDGE", "1", false),
        ("PYTHON_CONNECTOR_BRIDGE", "false", true),
        ("INTERCEPTOR_INGRESS", "public", false),
        (
            "INTERCEPTOR_INGRESS",
            "internal-and-cloud-load-balancing",
            true,
        ),
        ("INTERCEPTOR_MODE", "both", false),
        ("INTERCEPTOR_MODE", "push", true),
        // DRIFT_ENV deploys a cluster.
        ("REDIS_MODE", "sharded", false),
        ("REDIS_MODE", "standalone", true),
        ("REDIS_CLUSTER_SHARD_COUNT", "0", false),
        ("REDIS_CLUSTER_SHARD_COUNT", "251", false),
        ("REDIS_CLUSTER_SHARD_COUNT", "250", true),
        ("REDIS_CLUSTER_REPLICA_COUNT", "3", false),
        ("REDIS_CLUSTER_REPLICA_COUNT", "0.5", false),
        ("REDIS_CLUSTER_REPLICA_COUNT", "0", true),
        ("REDIS_CLUSTER_NODE_TYPE", "redis-huge", false),
        ("REDIS_CLUSTER_NODE_TYPE", "REDIS_HIGHMEM_MEDIUM", false),
        ("REDIS_CLUSTER_NODE_TYPE", "redis-shared-core-nano", true),
        ("REDIS_CLUSTER_ID", "Aa-cluster", false),
        ("REDIS_CLUSTER_ID", "cluster-", false),
        ("REDIS_CLUSTER_ID", "1cluster", false),
        ("REDIS_CLUSTER_ID", "c", true),
        ("PYTHON_CONNECTOR_BRIDGE", "true", false),
    ];
    for (key, value, valid) in cases {
        let env = format!("{DRIFT_ENV}\n{key}='{value}'\n");
        let env_file = sandbox.env_file(&env);
        let run = sandbox.run(
            "deploy.sh",
            &["--env-file", env_file.to_str().unwrap(), "--dry-run"],
            Cloud::Empty,
            "",
        );
        assert_eq!(
            run.success, valid,
            "deploy.sh with {key}={value}: {}",
            run.stderr
        );

        let name = key.to_lowercase();
        let mut inputs = base.clone();
        let variable = &module.variables[&name];
        inputs.insert(
            name.clone(),
            variable.convert(&name, value).expect("converts"),
        );
        let failed = module
            .failed_validations(&inputs)
            .expect("validations evaluate");
        if valid {
            assert!(
                failed.is_empty(),
                "Terraform rejects {name}={value}: {failed:?}"
            );
        } else {
            assert!(
                failed.iter().any(|m| m.contains(&name)),
                "Terraform accepts {name}={value} (deploy.sh rejects it: {})",
                run.stderr.trim()
            );
        }
    }
}

// ----------------------------------------------------------------------------------------
// Push authentication
// ----------------------------------------------------------------------------------------

fn env_of(service: &Instance) -> BTreeMap<String, String> {
    values_at(
        &Value::Object(service.config.clone()),
        "template.containers.env",
    )
    .into_iter()
    .map(|env| {
        let field = |f: &str| {
            values_at(env, f)
                .first()
                .and_then(|v| text(v))
                .unwrap_or_default()
        };
        (field("name"), field("value"))
    })
    .collect()
}

/// The interceptor's push settings and the four push subscriptions' audiences in `plan`.
fn push_auth_of(plan: &Plan, interceptor: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let service = |name: &str| {
        plan.of_kind("google_cloud_run_v2_service")
            .into_iter()
            .find(|s| s.text("name").as_deref() == Some(name))
            .unwrap_or_else(|| panic!("service {name}"))
            .clone()
    };
    let settings = env_of(&service(interceptor))
        .into_iter()
        .filter(|(k, _)| k.starts_with("PUSH_AUTH"))
        .collect();
    let audiences = plan
        .of_kind("google_pubsub_subscription")
        .into_iter()
        .filter(|s| s.config.contains_key("push_config"))
        .flat_map(|sub| {
            values_at(
                &Value::Object(sub.config.clone()),
                "push_config.oidc_token.audience",
            )
            .into_iter()
            .filter_map(text)
            .collect::<Vec<_>>()
        })
        .collect();
    (settings, audiences)
}

#[test]
fn push_auth_audience_configures_interceptor_and_subscriptions() {
    let module = module();
    let invoker = "d-invoker-sa@drift-project.iam.gserviceaccount.com";
    // DRIFT_ENV pulls: push authentication is about push subscriptions.
    let push_env = format!("{DRIFT_ENV}\nINTERCEPTOR_MODE='push'\n");

    // Set (DRIFT_ENV): that audience on both sides of every push.
    let inputs = inputs_for(&module, &env_pairs(&push_env));
    let plan = module.evaluate(&inputs, &cloud_facts()).expect("evaluates");
    let (settings, audiences) = push_auth_of(&plan, "d-interceptor");
    let expected = BTreeMap::from([
        (
            "PUSH_AUTH_AUDIENCE".to_owned(),
            "https://d-push.example".to_owned(),
        ),
        ("PUSH_AUTH_SERVICE_ACCOUNT".to_owned(), invoker.to_owned()),
    ]);
    assert_eq!(settings, expected);
    assert_eq!(audiences, vec!["https://d-push.example"; 4]);

    // Empty (the default): the interceptor's deterministic URL, as deploy.sh computes it.
    let mut inputs = inputs;
    inputs.remove("push_auth_audience");
    let plan = module.evaluate(&inputs, &cloud_facts()).expect("evaluates");
    let (settings, audiences) = push_auth_of(&plan, "d-interceptor");
    let url = format!(
        "https://d-interceptor-{}.europe-west4.run.app",
        support::PROJECT_NUMBER
    );
    assert_eq!(settings["PUSH_AUTH_AUDIENCE"], url);
    assert_eq!(settings["PUSH_AUTH_SERVICE_ACCOUNT"], invoker);
    assert_eq!(audiences, vec![url; 4]);

    // The connector has nothing to do with it.
    let connector = plan
        .of_kind("google_cloud_run_v2_service")
        .into_iter()
        .find(|s| s.text("name").as_deref() == Some("d-connector"))
        .expect("connector");
    assert!(!env_of(connector).keys().any(|k| k.starts_with("PUSH_AUTH")));
}

// ----------------------------------------------------------------------------------------
// The Dialogflow CX webhook
// ----------------------------------------------------------------------------------------

#[test]
fn cx_webhook_secrets_hold_what_deploy_sh_pipes_and_are_off_by_default() {
    let sandbox = Sandbox::new("terraform-cx");
    let run = deploy(&sandbox, DRIFT_ENV);
    // deploy.sh pipes 'Bearer <random>' and 'dialogflow-cx:<random>' (after the JWT secret).
    assert!(run.piped_secret.contains("Bearer "), "{}", run.piped_secret);
    assert!(
        run.piped_secret.contains("dialogflow-cx:"),
        "{}",
        run.piped_secret
    );

    let module = module();
    let plan = module
        .evaluate(&inputs_for(&module, &env_pairs(DRIFT_ENV)), &cloud_facts())
        .expect("evaluates");
    let value_of = |secret: &str| {
        plan.of_kind("google_secret_manager_secret_version")
            .into_iter()
            .find(|v| {
                v.text("secret")
                    .is_some_and(|s| s.ends_with(&format!("/{secret}")))
            })
            .and_then(|v| v.text("secret_data"))
            .unwrap_or_else(|| panic!("no version of {secret}"))
    };
    assert_eq!(
        value_of("d-cx-header"),
        format!("Bearer {GENERATED_PASSWORD}")
    );
    assert_eq!(
        value_of("d-cx-basic"),
        format!("dialogflow-cx:{GENERATED_PASSWORD}")
    );
    assert_eq!(value_of("d-jwt"), GENERATED_PASSWORD);
    let urls = match plan.outputs.get("cx_webhook_urls") {
        Some(Value::Object(map)) => map.clone(),
        other => panic!("cx_webhook_urls is {other:?}"),
    };
    let interceptor = support::service_url("d-interceptor");
    assert_eq!(
        urls.get("standard").and_then(text),
        Some(format!("{interceptor}/dialogflow-cx-webhook"))
    );
    assert!(run
        .stdout
        .contains(&format!("standard  {interceptor}/dialogflow-cx-webhook")));

    // MINIMAL_ENV: no webhook resource, no webhook setting, internal ingress.
    let plan = module
        .evaluate(
            &inputs_for(&module, &env_pairs(MINIMAL_ENV)),
            &cloud_facts(),
        )
        .expect("evaluates");
    assert!(plan.resources.iter().all(
        |r| !r.address().contains("cx_webhook") && !r.address().contains("dialogflow_invoker")
    ));
    let interceptor = plan
        .of_kind("google_cloud_run_v2_service")
        .into_iter()
        .find(|s| s.text("name").as_deref() == Some("cloud-pubsub-interceptor"))
        .expect("interceptor");
    assert!(!env_of(interceptor)
        .keys()
        .any(|k| k.starts_with("CX_WEBHOOK")));
    assert_eq!(
        interceptor.text("ingress").as_deref(),
        Some("INGRESS_TRAFFIC_INTERNAL_ONLY")
    );
}

// ----------------------------------------------------------------------------------------
// The secret, the outputs, the example files
// ----------------------------------------------------------------------------------------

#[test]
fn outputs_never_carry_the_jwt_secret() {
    let module = module();
    for (name, expr) in module.output_expressions() {
        for needle in ["random_password", "secret_data", "result"] {
            assert!(
                !terraform_eval::mentions(expr, needle),
                "output {name} refers to {needle}"
            );
        }
    }
    let plan = module
        .evaluate(&inputs_for(&module, &env_pairs(DRIFT_ENV)), &cloud_facts())
        .expect("evaluates");
    assert!(plan.outputs.len() >= 3);
    for (name, value) in &plan.outputs {
        assert!(
            !value.to_string().contains(GENERATED_PASSWORD),
            "output {name} carries the generated secret"
        );
    }
    // The values reach Secret Manager, and only there.
    let mut holders: Vec<String> = plan
        .resources
        .iter()
        .filter(|r| r.kind != "random_password")
        .filter(|r| {
            Value::Object(r.config.clone())
                .to_string()
                .contains(GENERATED_PASSWORD)
        })
        .map(Instance::address)
        .collect();
    holders.sort();
    assert_eq!(
        holders,
        [
            "google_secret_manager_secret_version.cx_webhook[\"basic-auth\"]",
            "google_secret_manager_secret_version.cx_webhook[\"header\"]",
            "google_secret_manager_secret_version.jwt",
        ]
    );
}

#[test]
fn import_blocks_cover_every_resource_with_its_documented_id() {
    // A Redis cluster (DRIFT_ENV) and a standalone instance: each mode's resources, no more.
    for env in [
        DRIFT_ENV.to_owned(),
        format!("{DRIFT_ENV}{STANDALONE_DRIFT}"),
    ] {
        assert_imports_cover_every_resource(&env);
    }
}

fn assert_imports_cover_every_resource(env: &str) {
    let module = module();
    let plan = module
        .evaluate(&inputs_for(&module, &env_pairs(env)), &cloud_facts())
        .expect("evaluates");
    let body = terraform_eval::parse_file(&terraform_dir().join("imports.tf.example"))
        .expect("imports.tf.example parses");
    let imports = plan.imports(&body).expect("imports evaluate");

    let mut by_address: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (address, id) in imports {
        by_address.entry(address).or_default().push(id);
    }
    let readme = fs::read_to_string(terraform_dir().join("README.md")).expect("README.md");
    for resource in &plan.resources {
        let address = resource.address();
        let expected = provider::import_id(&resource.kind, &resource.attrs).expect("known type");
        let found = by_address.remove(&address);
        match expected {
            Some(id) => assert_eq!(
                found,
                Some(vec![id]),
                "imports.tf.example: {address} should be imported once with its documented id"
            ),
            None => {
                assert_eq!(found, None, "{address} is not meant to be imported");
                if resource.kind != "random_password" {
                    // Keyed addresses are quoted for the shell.
                    assert!(
                        readme.contains(&format!("terraform import {address}"))
                            || readme.contains(&format!("terraform import '{address}'")),
                        "README.md does not say how to import {address}"
                    );
                }
            }
        }
    }
    assert!(
        by_address.is_empty(),
        "imports.tf.example imports resources the configuration lacks: {by_address:?}"
    );
}

#[test]
fn tfvars_example_is_complete_and_its_defaults_are_current() {
    let module = module();
    let path = terraform_dir().join("terraform.tfvars.example");
    let body = terraform_eval::parse_file(&path).expect("terraform.tfvars.example parses");
    let mut inputs = BTreeMap::new();
    for attr in body.attributes() {
        let value = attr
            .expr()
            .evaluate(&hcl::eval::Context::new())
            .expect("literal");
        assert!(
            module.variables.contains_key(attr.key()),
            "unknown variable {}",
            attr.key()
        );
        inputs.insert(attr.key().to_owned(), value);
    }
    // Usable as it is (required settings and an image tag), once filled in.
    module
        .evaluate(&inputs, &cloud_facts())
        .expect("terraform.tfvars.example evaluates");

    // Every variable is there, set or commented out; a commented default is the real one.
    let example = fs::read_to_string(&path).unwrap();
    let mut mentioned: BTreeSet<String> = inputs.keys().cloned().collect();
    for line in example.lines() {
        let Some(assignment) = line.strip_prefix("# ") else {
            continue;
        };
        let Some((name, value)) = assignment.split_once('=') else {
            continue;
        };
        let name = name.trim();
        let Some(variable) = module.variables.get(name) else {
            continue;
        };
        mentioned.insert(name.to_owned());
        let shown = hcl::parse(&format!("v = {}", value.trim()))
            .ok()
            .and_then(|b| b.attributes().next().map(|a| a.expr().clone()))
            .and_then(|e| e.evaluate(&hcl::eval::Context::new()).ok());
        let default = variable.default.clone();
        let default_is_empty = default.as_ref().and_then(text).is_none_or(|d| d.is_empty());
        if !default_is_empty {
            assert_eq!(
                shown, default,
                "terraform.tfvars.example shows a stale default for {name}"
            );
        }
    }
    let all: BTreeSet<String> = module.variables.keys().cloned().collect();
    let missing: Vec<&String> = all.difference(&mentioned).collect();
    assert!(
        missing.is_empty(),
        "terraform.tfvars.example does not mention {missing:?}"
    );
}

#[test]
fn terraform_state_stays_out_of_git_and_uploads() {
    // The state holds the JWT secret: it must not be committed, nor uploaded by deploy.sh's
    // `gcloud builds submit` (which skips what the top-level .gitignore lists), nor copied
    // into the Docker build context.
    for file in [".gitignore", ".dockerignore"] {
        let text = fs::read_to_string(repo_root().join(file)).expect(file);
        let entries: Vec<&str> = text.lines().map(str::trim).collect();
        for needed in [
            "*.tfstate",
            "*.tfstate.*",
            ".terraform/",
            "terraform.tfvars",
        ] {
            assert!(
                entries
                    .iter()
                    .any(|e| e.trim_start_matches("**/") == needed
                        || e.ends_with(&format!("/{needed}"))),
                "{file} does not exclude {needed}"
            );
        }
    }
}

// ----------------------------------------------------------------------------------------
// terraform fmt
// ----------------------------------------------------------------------------------------

fn copy_for_fmt(source: &Path, target: &Path) {
    fs::create_dir_all(target).expect("scratch directory");
    for entry in fs::read_dir(source).expect("deploy/terraform") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The examples are HCL too; fmt only looks at .tf and .tfvars files.
        let renamed = name
            .strip_suffix(".tf.example")
            .map(|base| format!("{base}.tf"))
            .or_else(|| {
                name.strip_suffix(".tfvars.example")
                    .map(|b| format!("{b}.tfvars"))
            })
            .unwrap_or(name);
        if path.is_file() {
            fs::copy(&path, target.join(renamed)).expect("copy");
        }
    }
}

#[test]
fn terraform_fmt_check() {
    let version = Command::new("terraform")
        .arg("version")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output();
    if !matches!(&version, Ok(out) if out.status.success()) {
        eprintln!("SKIPPED: terraform not installed (terraform fmt -check not run)");
        return;
    }
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("terraform-fmt-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    copy_for_fmt(&terraform_dir(), &scratch);
    let output = Command::new("terraform")
        .args(["fmt", "-check", "-diff", "-recursive"])
        .arg(&scratch)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .expect("terraform runs");
    let _ = fs::remove_dir_all(&scratch);
    assert!(
        output.status.success(),
        "terraform fmt -check (examples renamed to .tf/.tfvars):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
