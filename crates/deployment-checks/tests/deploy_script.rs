//! `deploy/deploy.sh` and `deploy/teardown.sh`, run against a fake `gcloud` (see `support`).

mod support;

use std::collections::BTreeSet;
use std::fs;

use support::{
    parse_env_vars, printed_commands, repo_root, service_url, Call, Cloud, Outcome, Sandbox,
    PROJECT_NUMBER, REDIS_CLUSTER_ADDRESS, REDIS_CLUSTER_PORT, REDIS_HOST, REDIS_PORT,
    REQUIRED_APIS,
};

/// Settings for most tests: every name differs from its default, so a test fails if the
/// script ignores a setting. The topics and subscriptions are left to their defaults.
const TEST_ENV: &str = r#"
# Settings written by the deployment-checks tests.
GCP_PROJECT_ID='test-project'
SERVICE_REGION="europe-west1"
VPC_CONNECTOR_RANGE=10.9.0.0/28   # bare value with a comment
ARTIFACT_REPOSITORY='t-images'
IMAGE_TAG='t1'
CONNECTOR_SERVICE_NAME='t-connector'
INTERCEPTOR_SERVICE_NAME='t-interceptor'
CONNECTOR_SERVICE_ACCOUNT_NAME='t-connector-sa'
INTERCEPTOR_SERVICE_ACCOUNT_NAME='t-interceptor-sa'
PUBSUB_INVOKER_SERVICE_ACCOUNT_NAME='t-invoker-sa'
JWT_SECRET_NAME='t-jwt'
REDIS_INSTANCE_ID='t-redis'
REDIS_TIER='standard'
REDIS_SIZE_GB='2'
REDIS_VERSION='redis_7_0'
VPC_NETWORK='t-net'
VPC_CONNECTOR_NAME='t-vpc'
DEAD_LETTER_TOPIC_ID='t-dead-letters'
DEAD_LETTER_SUBSCRIPTION_ID='t-dead-letters-sub'
MAX_DELIVERY_ATTEMPTS='7'
ACK_DEADLINE_SECONDS='45'
export AUTH_OPTION='Skip'
CORS_ALLOWED_ORIGINS='https://a.example,https://b.example'
DEDUP_WINDOW_SECONDS=300
"#;

const PROJECT: &str = "test-project";
const REGION: &str = "europe-west1";
const CONNECTOR_SA: &str = "t-connector-sa@test-project.iam.gserviceaccount.com";
const INTERCEPTOR_SA: &str = "t-interceptor-sa@test-project.iam.gserviceaccount.com";
const INVOKER_SA: &str = "t-invoker-sa@test-project.iam.gserviceaccount.com";
const DEAD_LETTER_TOPIC: &str = "t-dead-letters";
/// The interceptor's deterministic URL: the push tokens' audience by default.
const PUSH_AUDIENCE: &str = "https://t-interceptor-123456789012.europe-west1.run.app";

/// (topic, subscription, interceptor endpoint path) with the default names.
const EVENT_FEEDS: [(&str, &str, &str); 4] = [
    (
        "aa-human-agent-assistant-topic",
        "aa-human-agent-assistant-sub",
        "/human-agent-assistant-event",
    ),
    (
        "aa-conversation-lifecycle-topic",
        "aa-conversation-lifecycle-sub",
        "/conversation-lifecycle-event",
    ),
    (
        "aa-new-message-topic",
        "aa-new-message-sub",
        "/new-message-event",
    ),
    (
        "aa-new-recognition-result-notification-topic",
        "aa-new-recognition-result-notification-sub",
        "/new-recognition-result-notification-event",
    ),
];

const CONNECTOR_ROLES: [&str; 5] = [
    "roles/redis.editor",
    "roles/vpcaccess.user",
    "roles/compute.viewer",
    "roles/secretmanager.secretAccessor",
    "roles/dialogflow.agentAssistClient",
];
const INTERCEPTOR_ROLES: [&str; 3] = [
    "roles/redis.editor",
    "roles/vpcaccess.user",
    "roles/compute.viewer",
];

/// Existing push subscriptions, as TEST_ENV's own deployment made them: each delivers to its
/// endpoint on `t-interceptor` with the invoker's tokens for the push audience.
fn own_push_endpoints(sandbox: &Sandbox) {
    own_push_endpoints_with_audience(sandbox, |_| PUSH_AUDIENCE.to_owned());
}

/// Like [`own_push_endpoints`], with each subscription's token audience from its endpoint.
fn own_push_endpoints_with_audience(sandbox: &Sandbox, audience: impl Fn(&str) -> String) {
    let rows: Vec<(String, String, String)> = EVENT_FEEDS
        .iter()
        .map(|(_, subscription, path)| {
            let endpoint = format!("{}{path}", service_url("t-interceptor"));
            let audience = audience(&endpoint);
            (subscription.to_string(), endpoint, audience)
        })
        .collect();
    let configs: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|(s, e, a)| (s.as_str(), e.as_str(), INVOKER_SA, a.as_str()))
        .collect();
    sandbox.push_configs(&configs);
}

fn deploy(sandbox: &Sandbox, env: &str, extra: &[&str], cloud: Cloud) -> Outcome {
    let env_file = sandbox.env_file(env);
    let mut args = vec!["--env-file", env_file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    sandbox.run("deploy.sh", &args, cloud, "")
}

fn teardown(sandbox: &Sandbox, extra: &[&str], cloud: Cloud, stdin: &str) -> Outcome {
    let env_file = sandbox.env_file(TEST_ENV);
    let mut args = vec!["--env-file", env_file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    sandbox.run("teardown.sh", &args, cloud, stdin)
}

fn assert_success(outcome: &Outcome) {
    assert!(outcome.success, "script failed:\n{}", outcome.transcript());
}

fn env_vars(call: &Call) -> Vec<(String, String)> {
    parse_env_vars(
        call.flag("--set-env-vars")
            .unwrap_or_else(|| panic!("--set-env-vars missing: {}", call.line())),
    )
}

fn env_var<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The `_NAME=value` entries of a `gcloud builds submit --substitutions`.
fn substitution<'a>(call: &'a Call, name: &str) -> &'a str {
    call.flag("--substitutions")
        .unwrap_or_else(|| panic!("--substitutions missing: {}", call.line()))
        .split(',')
        .find_map(|item| item.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing: {}", call.line()))
}

/// Every create must follow a describe of the same resource (the idempotency check).
fn assert_creates_are_checked_first(outcome: &Outcome) {
    for (i, call) in outcome.calls.iter().enumerate() {
        let Some(verb_at) = call.args.iter().position(|a| a == "create") else {
            continue;
        };
        let group = &call.args[..verb_at];
        let name = &call.args[verb_at + 1];
        let checked = outcome.calls[..i].iter().any(|earlier| {
            earlier.args.len() > verb_at + 1
                && &earlier.args[..verb_at] == group
                && earlier.args[verb_at] == "describe"
                // Service accounts are created by id and described by e-mail address.
                && (earlier.args[verb_at + 1] == *name
                    || earlier.args[verb_at + 1].starts_with(&format!("{name}@")))
        });
        assert!(
            checked,
            "`{}` is not preceded by a describe of the same resource",
            call.line()
        );
    }
}

#[test]
fn first_run_creates_and_deploys_everything() {
    let sandbox = Sandbox::new("first-run");
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Empty);
    assert_success(&run);

    // Every call targets the configured project (without touching the gcloud configuration).
    for call in &run.calls {
        assert_eq!(call.project, PROJECT, "wrong project for `{}`", call.line());
    }
    assert!(run.calls_of(&["config", "set"]).is_empty());

    // APIs.
    let enable = run.calls_of(&["services", "enable"]);
    assert_eq!(enable.len(), 1, "{}", run.transcript());
    let enabled: BTreeSet<&str> = enable[0].args[2..].iter().map(String::as_str).collect();
    assert_eq!(enabled, REQUIRED_APIS.into_iter().collect());

    // Service accounts and exactly the documented project roles.
    for name in ["t-connector-sa", "t-interceptor-sa", "t-invoker-sa"] {
        run.one(&["iam", "service-accounts", "create"], name);
    }
    let granted: BTreeSet<(String, String)> = run
        .calls_of(&["projects", "add-iam-policy-binding", PROJECT])
        .into_iter()
        .map(|c| {
            (
                c.flag("--member").expect("--member").to_owned(),
                c.flag("--role").expect("--role").to_owned(),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for role in CONNECTOR_ROLES {
        expected.insert((format!("serviceAccount:{CONNECTOR_SA}"), role.to_owned()));
    }
    for role in INTERCEPTOR_ROLES {
        expected.insert((format!("serviceAccount:{INTERCEPTOR_SA}"), role.to_owned()));
    }
    assert_eq!(granted, expected, "project role grants");

    // JWT secret: user-managed replication in the region, value piped, never shown.
    let secret = run.one(&["secrets", "create"], "t-jwt");
    assert_eq!(
        secret.flag("--replication-policy"),
        Some("user-managed"),
        "{}",
        secret.line()
    );
    assert_eq!(secret.flag("--locations"), Some(REGION));
    assert!(secret.has("--data-file=-"), "{}", secret.line());
    let value = run.piped_secret.trim();
    assert!(
        value.len() >= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)),
        "the piped secret should be >= 48 random bytes in base64, got {} characters",
        value.len()
    );
    assert!(!run.stdout.contains(value) && !run.stderr.contains(value));
    assert!(run.calls.iter().all(|c| !c.line().contains(value)));

    // Redis and the VPC connector, then the Redis address read back.
    let redis = run.one(&["redis", "instances", "create"], "t-redis");
    assert_eq!(redis.flag("--region"), Some(REGION));
    assert_eq!(redis.flag("--tier"), Some("standard"));
    assert_eq!(redis.flag("--size"), Some("2"));
    assert_eq!(redis.flag("--redis-version"), Some("redis_7_0"));
    assert!(redis.flag("--network").unwrap_or("").ends_with("t-net"));
    let vpc = run.one(
        &["compute", "networks", "vpc-access", "connectors", "create"],
        "t-vpc",
    );
    assert_eq!(vpc.flag("--range"), Some("10.9.0.0/28"));
    assert_eq!(vpc.flag("--network"), Some("t-net"));
    assert_eq!(vpc.flag("--region"), Some(REGION));
    for field in ["value(host)", "value(port)"] {
        assert!(
            run.calls_of(&["redis", "instances", "describe", "t-redis"])
                .iter()
                .any(|c| c.flag("--format") == Some(field)),
            "Redis {field} not read back"
        );
    }

    // Images: the repository, then one Cloud Build per Dockerfile from the workspace root.
    let repo = run.one(&["artifacts", "repositories", "create"], "t-images");
    assert_eq!(repo.flag("--repository-format"), Some("docker"));
    assert_eq!(repo.flag("--location"), Some(REGION));
    let builds = run.calls_of(&["builds", "submit"]);
    assert_eq!(builds.len(), 2, "{}", run.transcript());
    let root = repo_root();
    let mut images = std::collections::BTreeMap::new();
    for build in &builds {
        assert_eq!(
            build.args.get(2).map(std::path::PathBuf::from),
            Some(root.clone()),
            "build context must be the workspace root: {}",
            build.line()
        );
        let config = build.flag("--config").expect("--config");
        assert!(
            config.ends_with("deploy/cloudbuild.yaml") && fs::metadata(config).is_ok(),
            "{config}"
        );
        let dockerfile = substitution(build, "_DOCKERFILE");
        assert!(root.join(dockerfile).is_file(), "{dockerfile} missing");
        images.insert(
            dockerfile.to_owned(),
            substitution(build, "_IMAGE").to_owned(),
        );
    }
    let registry = "europe-west1-docker.pkg.dev/test-project/t-images";
    assert_eq!(
        images.get("Dockerfile.connector").map(String::as_str),
        Some(format!("{registry}/ui-connector:t1").as_str())
    );
    assert_eq!(
        images.get("Dockerfile.interceptor").map(String::as_str),
        Some(format!("{registry}/cloud-pubsub-interceptor:t1").as_str())
    );

    // The connector: public, long timeout, sticky sessions, Redis via the connector, secret.
    let connector = run.one(&["run", "deploy"], "t-connector");
    assert_eq!(
        connector.flag("--image"),
        images.get("Dockerfile.connector").map(String::as_str)
    );
    assert_eq!(connector.flag("--region"), Some(REGION));
    assert!(
        connector.has("--allow-unauthenticated"),
        "{}",
        connector.line()
    );
    assert!(!connector.has("--no-allow-unauthenticated"));
    assert_eq!(connector.flag("--timeout"), Some("3600"));
    assert!(connector.has("--session-affinity"), "{}", connector.line());
    assert_eq!(connector.flag("--vpc-connector"), Some("t-vpc"));
    assert_eq!(connector.flag("--service-account"), Some(CONNECTOR_SA));
    assert_eq!(
        connector.flag("--set-secrets"),
        Some("/secret/jwt_secret_key=t-jwt:latest")
    );
    let vars = env_vars(connector);
    assert_eq!(env_var(&vars, "REDISHOST"), Some(REDIS_HOST));
    assert_eq!(env_var(&vars, "REDISPORT"), Some(REDIS_PORT));
    assert_eq!(env_var(&vars, "GCP_PROJECT_ID"), Some(PROJECT));
    assert_eq!(env_var(&vars, "AUTH_OPTION"), Some("Skip"));
    assert_eq!(env_var(&vars, "DEDUP_WINDOW_SECONDS"), Some("300"));
    // A comma inside a value must survive gcloud's list parsing.
    assert_eq!(
        env_var(&vars, "CORS_ALLOWED_ORIGINS"),
        Some("https://a.example,https://b.example")
    );
    // Unset optional settings are not passed at all (the binary's default applies).
    assert_eq!(env_var(&vars, "JWT_TOKEN_LIFETIME"), None);

    // The interceptor: internal, authenticated, Redis only.
    let interceptor = run.one(&["run", "deploy"], "t-interceptor");
    assert_eq!(
        interceptor.flag("--image"),
        images.get("Dockerfile.interceptor").map(String::as_str)
    );
    assert_eq!(interceptor.flag("--ingress"), Some("internal"));
    assert!(interceptor.has("--no-allow-unauthenticated"));
    assert!(!interceptor.has("--allow-unauthenticated"));
    assert_eq!(interceptor.flag("--vpc-connector"), Some("t-vpc"));
    assert_eq!(interceptor.flag("--service-account"), Some(INTERCEPTOR_SA));
    assert_eq!(interceptor.flag("--set-secrets"), None);
    let vars = env_vars(interceptor);
    assert_eq!(env_var(&vars, "REDISHOST"), Some(REDIS_HOST));
    assert_eq!(env_var(&vars, "REDISPORT"), Some(REDIS_PORT));
    assert_eq!(env_var(&vars, "DEDUP_WINDOW_SECONDS"), Some("300"));
    assert_eq!(env_var(&vars, "AUTH_OPTION"), None);
    // It checks the push tokens itself: the invoker's, for the interceptor's URL.
    assert_eq!(
        env_var(&vars, "PUSH_AUTH_SERVICE_ACCOUNT"),
        Some(INVOKER_SA)
    );
    assert_eq!(env_var(&vars, "PUSH_AUTH_AUDIENCE"), Some(PUSH_AUDIENCE));

    // Pub/Sub: topics, dead-letter topic, invoker, push subscriptions.
    for (topic, _, _) in EVENT_FEEDS {
        run.one(&["pubsub", "topics", "create"], topic);
    }
    run.one(&["pubsub", "topics", "create"], DEAD_LETTER_TOPIC);
    let dead_letter_sub = run.one(&["pubsub", "subscriptions", "create"], "t-dead-letters-sub");
    assert_eq!(dead_letter_sub.flag("--topic"), Some(DEAD_LETTER_TOPIC));
    let invoker = run.one(
        &["run", "services", "add-iam-policy-binding"],
        "t-interceptor",
    );
    assert_eq!(
        invoker.flag("--member"),
        Some(format!("serviceAccount:{INVOKER_SA}").as_str())
    );
    assert_eq!(invoker.flag("--role"), Some("roles/run.invoker"));
    assert_eq!(invoker.flag("--region"), Some(REGION));
    let agent =
        format!("serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com");
    for (topic, subscription, path) in EVENT_FEEDS {
        let sub = run.one(&["pubsub", "subscriptions", "create"], subscription);
        assert_eq!(sub.flag("--topic"), Some(topic));
        assert_eq!(
            sub.flag("--push-endpoint"),
            Some(format!("{}{path}", service_url("t-interceptor")).as_str())
        );
        assert_eq!(sub.flag("--push-auth-service-account"), Some(INVOKER_SA));
        assert_eq!(sub.flag("--push-auth-token-audience"), Some(PUSH_AUDIENCE));
        assert_eq!(sub.flag("--dead-letter-topic"), Some(DEAD_LETTER_TOPIC));
        assert_eq!(sub.flag("--max-delivery-attempts"), Some("7"));
        assert_eq!(sub.flag("--ack-deadline"), Some("45"));
        // Dead-lettering: the Pub/Sub service agent must be able to acknowledge.
        let grant = run.one(
            &["pubsub", "subscriptions", "add-iam-policy-binding"],
            subscription,
        );
        assert_eq!(grant.flag("--member"), Some(agent.as_str()));
        assert_eq!(grant.flag("--role"), Some("roles/pubsub.subscriber"));
        assert!(
            run.position(&["pubsub", "subscriptions", "create"], subscription)
                > run.position(&["run", "deploy"], "t-interceptor"),
            "{subscription} created before the interceptor (and its URL) exists"
        );
    }
    let publish = run.one(
        &["pubsub", "topics", "add-iam-policy-binding"],
        DEAD_LETTER_TOPIC,
    );
    assert_eq!(publish.flag("--member"), Some(agent.as_str()));
    assert_eq!(publish.flag("--role"), Some("roles/pubsub.publisher"));

    // Order: what a deploy uses exists before it.
    let connector_at = run.position(&["run", "deploy"], "t-connector");
    assert!(run.position(&["secrets", "create"], "t-jwt") < connector_at);
    assert!(run.position(&["redis", "instances", "create"], "t-redis") < connector_at);
    assert!(
        run.position(
            &["compute", "networks", "vpc-access", "connectors", "create"],
            "t-vpc"
        ) < connector_at
    );
    assert!(run.position(&["artifacts", "repositories", "create"], "t-images") < connector_at);

    assert_creates_are_checked_first(&run);
}

#[test]
fn second_run_only_rebuilds_and_redeploys() {
    let sandbox = Sandbox::new("second-run");
    own_push_endpoints(&sandbox);
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Deployed);
    assert_success(&run);
    let changes: Vec<String> = run
        .changes()
        .iter()
        .map(|c| c.args[..2].join(" "))
        .collect();
    // Documented in the script header: infrastructure is left alone; new images are built and
    // rolled out as new revisions on every run.
    assert_eq!(
        changes,
        ["builds submit", "builds submit", "run deploy", "run deploy"],
        "{}",
        run.transcript()
    );
    assert!(
        run.piped_secret.is_empty(),
        "the existing secret was replaced"
    );
    // The existence checks did run.
    assert!(!run.calls_of(&["secrets", "describe", "t-jwt"]).is_empty());
    assert!(!run
        .calls_of(&["pubsub", "subscriptions", "describe", "aa-new-message-sub"])
        .is_empty());
    // And each existing subscription was checked to deliver to this interceptor.
    for (_, subscription, _) in EVENT_FEEDS {
        assert!(run
            .calls_of(&["pubsub", "subscriptions", "describe", subscription])
            .iter()
            .any(|c| c.flag("--format")
                == Some("value(pushConfig.pushEndpoint,pushConfig.oidcToken.serviceAccountEmail,pushConfig.oidcToken.audience)")));
    }
}

/// `INTERCEPTOR_MODE=pull`: pull subscriptions the interceptor reads as its own account, and an
/// interceptor that runs without requests (CPU always allocated, at least one instance), still
/// with no public ingress.
#[test]
fn pull_mode_creates_pull_subscriptions_and_an_always_on_interceptor() {
    let sandbox = Sandbox::new("pull-mode");
    let env = format!(
        "{TEST_ENV}\nINTERCEPTOR_MODE='pull'\nINTERCEPTOR_MIN_INSTANCES='0'\n\
         PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES='500'\n"
    );
    let run = deploy(&sandbox, &env, &[], Cloud::Empty);
    assert_success(&run);

    let interceptor = run.one(&["run", "deploy"], "t-interceptor");
    assert!(
        interceptor.has("--no-cpu-throttling"),
        "{}",
        interceptor.line()
    );
    assert_eq!(
        interceptor.flag("--min-instances"),
        Some("1"),
        "raised from 0"
    );
    assert!(run
        .stdout
        .contains("INTERCEPTOR_MIN_INSTANCES=0 raised to 1"));
    assert_eq!(interceptor.flag("--ingress"), Some("internal"));
    assert!(interceptor.has("--no-allow-unauthenticated"));
    let vars = env_vars(interceptor);
    let expected: Vec<String> = EVENT_FEEDS
        .iter()
        .map(|(_, subscription, path)| {
            format!(
                "{}=projects/{PROJECT}/subscriptions/{subscription}",
                &path[1..]
            )
        })
        .collect();
    assert_eq!(
        env_var(&vars, "PUBSUB_PULL_SUBSCRIPTIONS"),
        Some(expected.join(",").as_str())
    );
    assert_eq!(
        env_var(&vars, "PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES"),
        Some("500")
    );
    // The connector is not concerned.
    let connector = run.one(&["run", "deploy"], "t-connector");
    assert!(!connector.has("--no-cpu-throttling"));
    assert_eq!(
        env_var(&env_vars(connector), "PUBSUB_PULL_SUBSCRIPTIONS"),
        None
    );

    let agent =
        format!("serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com");
    let reader = format!("serviceAccount:{INTERCEPTOR_SA}");
    for (topic, subscription, _) in EVENT_FEEDS {
        let sub = run.one(&["pubsub", "subscriptions", "create"], subscription);
        assert_eq!(sub.flag("--topic"), Some(topic));
        assert_eq!(sub.flag("--push-endpoint"), None, "{}", sub.line());
        assert_eq!(sub.flag("--push-auth-service-account"), None);
        assert_eq!(sub.flag("--dead-letter-topic"), Some(DEAD_LETTER_TOPIC));
        assert_eq!(sub.flag("--max-delivery-attempts"), Some("7"));
        assert_eq!(sub.flag("--min-retry-delay"), Some("10s"));
        assert_eq!(sub.flag("--max-retry-delay"), Some("600s"));
        // Read by the interceptor's account, acknowledged by the service agent when it
        // dead-letters: both on the subscription itself, nothing project-wide.
        let members: BTreeSet<(String, String)> = run
            .calls_of(&[
                "pubsub",
                "subscriptions",
                "add-iam-policy-binding",
                subscription,
            ])
            .iter()
            .map(|c| {
                (
                    c.flag("--member").unwrap().to_owned(),
                    c.flag("--role").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            members,
            [
                (reader.clone(), "roles/pubsub.subscriber".to_owned()),
                (agent.clone(), "roles/pubsub.subscriber".to_owned()),
            ]
            .into_iter()
            .collect()
        );
    }
    assert!(run
        .calls_of(&["projects", "add-iam-policy-binding", PROJECT])
        .iter()
        .all(|c| !c.flag("--role").unwrap_or("").starts_with("roles/pubsub")));
    assert_creates_are_checked_first(&run);

    // A second run: the pull subscriptions exist (no push endpoint) and are kept.
    let again = deploy(&sandbox, &env, &[], Cloud::Deployed);
    assert_success(&again);
    let changes: Vec<String> = again
        .changes()
        .iter()
        .map(|c| c.args[..2].join(" "))
        .collect();
    assert_eq!(
        changes,
        ["builds submit", "builds submit", "run deploy", "run deploy"],
        "{}",
        again.transcript()
    );
}

/// Switching an existing push deployment to pull: the push subscriptions are not silently
/// turned into pull ones (nor taken for ours); the run stops before changing them and says how.
#[test]
fn pull_mode_stops_at_an_existing_push_subscription() {
    let sandbox = Sandbox::new("pull-over-push");
    own_push_endpoints(&sandbox);
    let env = format!("{TEST_ENV}\nINTERCEPTOR_MODE='pull'\n");
    let run = deploy(&sandbox, &env, &[], Cloud::Deployed);
    assert!(!run.success, "{}", run.transcript());
    for needle in [
        "aa-human-agent-assistant-sub",
        "HUMAN_AGENT_ASSISTANT_SUBSCRIPTION_ID",
        "INTERCEPTOR_MODE=pull",
        "modify-push-config",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(
        run.changes()
            .iter()
            .all(|c| !c.is(&["pubsub", "subscriptions"])),
        "{}",
        run.transcript()
    );

    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nINTERCEPTOR_MODE='both'\n"),
        &[],
        Cloud::Empty,
    );
    assert!(!run.success);
    assert!(run.stderr.contains("INTERCEPTOR_MODE"), "{}", run.stderr);
    assert!(run.calls.is_empty());
}

/// The Python deployment's names (`aa-integration-backend/deploy.sh:53-56,84-90,106-116` at
/// 9425334 of agent-assist-integrations): its four topics and subscriptions, services and
/// Redis instance.
const PYTHON_TOPICS: [&str; 4] = [
    "aa-new-suggestion-topic",
    "aa-conversation-event-topic",
    "aa-new-message-topic",
    "aa-intermediate-transcript-topic",
];
const PYTHON_SUBSCRIPTIONS: [&str; 4] = [
    "aa-new-suggestion-sub",
    "aa-conversation-event-sub",
    "aa-new-message-sub",
    "aa-intermediate-transcript-event-sub",
];
const PYTHON_SERVICES: [&str; 2] = ["ui-connector", "cloud-pubsub-interceptor"];
const PYTHON_REDIS: &str = "aa-integration-redis";
const PYTHON_JWT_SECRET: &str = "aa-integration-jwt-secret";

/// A subscription of the same name that feeds another service (the Python deployment's
/// `aa-new-message-sub` is also this script's default name) must not be taken for ours:
/// the run stops, naming the setting, before deploying anything.
#[test]
fn an_existing_subscription_of_another_service_stops_the_run() {
    let sandbox = Sandbox::new("foreign-subscription");
    let python_interceptor = service_url("cloud-pubsub-interceptor");
    let mut endpoints: Vec<(&str, String)> = EVENT_FEEDS
        .iter()
        .map(|(_, subscription, path)| {
            (
                *subscription,
                format!("{}{path}", service_url("t-interceptor")),
            )
        })
        .collect();
    endpoints[2].1 = format!("{python_interceptor}/new-message-event");
    sandbox.push_endpoints(&endpoints);
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Deployed);
    assert!(!run.success, "{}", run.transcript());
    for needle in [
        "aa-new-message-sub",
        "NEW_MESSAGE_SUBSCRIPTION_ID",
        &python_interceptor,
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(
        run.changes()
            .iter()
            .all(|c| !c.is(&["pubsub", "subscriptions"])),
        "{}",
        run.transcript()
    );

    // A pull subscription of that name is not ours either.
    endpoints[2].1 = String::new();
    sandbox.push_endpoints(&endpoints);
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Deployed);
    assert!(!run.success);
    assert!(run.stderr.contains("pull subscription"), "{}", run.stderr);
}

/// `deploy/migrate-from-python.env.sample` deploys beside a Python deployment without replacing
/// any of it: new services and secret, second subscriptions (new names) on the Python topics,
/// the Python Redis instance reused; the bridge setting reaches the interceptor only.
#[test]
fn the_python_migration_sample_deploys_beside_the_python_services() {
    let path = repo_root().join("deploy/migrate-from-python.env.sample");
    let sample = fs::read_to_string(&path).expect("the migration sample");
    let sandbox = Sandbox::new("python-migration");
    let run = deploy(&sandbox, &sample, &[], Cloud::Empty);
    assert_success(&run);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    let services: BTreeSet<&str> = run
        .calls_of(&["run", "deploy"])
        .iter()
        .map(|c| c.args[2].as_str())
        .collect();
    assert_eq!(services.len(), 2);
    for python in PYTHON_SERVICES {
        assert!(!services.contains(python), "{python} would be replaced");
    }
    assert!(run
        .calls_of(&["secrets", "create", PYTHON_JWT_SECRET])
        .is_empty());
    // The Python Redis instance is the one looked up (and reused when it exists).
    assert!(!run
        .calls_of(&["redis", "instances", "describe", PYTHON_REDIS])
        .is_empty());

    let interceptor_url = service_url("aa-cloud-pubsub-interceptor");
    let subscriptions = run.calls_of(&["pubsub", "subscriptions", "create"]);
    let mut topics = BTreeSet::new();
    for create in &subscriptions {
        let Some(topic) = create.flag("--topic") else {
            continue;
        }; // the dead-letter one
        let name = create.args[3].as_str();
        if topic.contains("dead-letter") {
            continue;
        }
        assert!(
            !PYTHON_SUBSCRIPTIONS.contains(&name),
            "{name} is the Python one"
        );
        assert!(
            create
                .flag("--push-endpoint")
                .is_some_and(|e| e.starts_with(&interceptor_url)),
            "{}",
            create.line()
        );
        topics.insert(topic.to_owned());
    }
    assert_eq!(
        topics,
        PYTHON_TOPICS.iter().map(|t| t.to_string()).collect()
    );

    // The switch-over's setting: off as shipped; when set, on the interceptor only.
    let interceptor = run.one(&["run", "deploy"], "aa-cloud-pubsub-interceptor");
    assert_eq!(
        env_var(&env_vars(interceptor), "PYTHON_CONNECTOR_BRIDGE"),
        Some("false")
    );
    let bridged =
        format!("{sample}\nPYTHON_CONNECTOR_BRIDGE='true'\nDISCONNECT_ON_TOKEN_EXPIRY='true'\n");
    let run = deploy(&sandbox, &bridged, &[], Cloud::Empty);
    assert_success(&run);
    let interceptor = env_vars(run.one(&["run", "deploy"], "aa-cloud-pubsub-interceptor"));
    let connector = env_vars(run.one(&["run", "deploy"], "aa-ui-connector"));
    assert_eq!(
        env_var(&interceptor, "PYTHON_CONNECTOR_BRIDGE"),
        Some("true")
    );
    assert_eq!(env_var(&connector, "PYTHON_CONNECTOR_BRIDGE"), None);
    assert_eq!(
        env_var(&connector, "DISCONNECT_ON_TOKEN_EXPIRY"),
        Some("true")
    );
    assert_eq!(env_var(&interceptor, "DISCONNECT_ON_TOKEN_EXPIRY"), None);

    // Switches take true or false only, checked before anything runs.
    let run = deploy(
        &sandbox,
        &format!("{sample}\nPYTHON_CONNECTOR_BRIDGE='yes'\n"),
        &[],
        Cloud::Empty,
    );
    assert!(!run.success);
    assert!(
        run.stderr.contains("PYTHON_CONNECTOR_BRIDGE"),
        "{}",
        run.stderr
    );
    assert!(run.calls.is_empty());
}

#[test]
fn existing_subscriptions_get_the_push_audience_before_the_interceptor_checks_it() {
    // A deployment made before push authentication: Pub/Sub's default audience (the endpoint).
    let sandbox = Sandbox::new("push-audience-upgrade");
    own_push_endpoints_with_audience(&sandbox, str::to_owned);
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Deployed);
    assert_success(&run);
    let interceptor_at = run.position(&["run", "deploy"], "t-interceptor");
    for (_, subscription, path) in EVENT_FEEDS {
        let endpoint = format!("{}{path}", service_url("t-interceptor"));
        let call = run.one(
            &["pubsub", "subscriptions", "modify-push-config"],
            subscription,
        );
        assert_eq!(call.flag("--push-endpoint"), Some(endpoint.as_str()));
        assert_eq!(call.flag("--push-auth-service-account"), Some(INVOKER_SA));
        assert_eq!(call.flag("--push-auth-token-audience"), Some(PUSH_AUDIENCE));
        assert!(
            run.position(
                &["pubsub", "subscriptions", "modify-push-config"],
                subscription
            ) < interceptor_at,
            "{subscription} updated after the interceptor started checking: {}",
            run.transcript()
        );
    }
    // Nothing else changes.
    assert!(run
        .calls_of(&["pubsub", "subscriptions", "create"])
        .is_empty());
    // A subscription of the same name that is not this deployment's push subscription (a
    // pull subscription here) is another deployment's: the run stops before changing it or
    // deploying anything.
    let sandbox = Sandbox::new("push-audience-pull");
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Deployed);
    assert!(!run.success, "{}", run.transcript());
    assert!(run
        .calls_of(&["pubsub", "subscriptions", "modify-push-config"])
        .is_empty());
    assert!(run.calls_of(&["run", "deploy"]).is_empty());
    assert!(
        run.stderr.contains("nothing: a pull subscription"),
        "{}",
        run.stderr
    );
}

#[test]
fn push_audience_can_be_set_and_must_fit_the_deterministic_url() {
    let sandbox = Sandbox::new("push-audience-set");
    let audience = "https://interceptor.example.com";
    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nPUSH_AUTH_AUDIENCE='{audience}'\n"),
        &[],
        Cloud::Empty,
    );
    assert_success(&run);
    let vars = env_vars(run.one(&["run", "deploy"], "t-interceptor"));
    assert_eq!(env_var(&vars, "PUSH_AUTH_AUDIENCE"), Some(audience));
    for (_, subscription, _) in EVENT_FEEDS {
        let sub = run.one(&["pubsub", "subscriptions", "create"], subscription);
        assert_eq!(sub.flag("--push-auth-token-audience"), Some(audience));
    }

    // Cloud Run has no deterministic URL for a service whose name and project number do not
    // fit one DNS label: stop before changing anything rather than guess an audience.
    let long_name = "i".repeat(51);
    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nINTERCEPTOR_SERVICE_NAME='{long_name}'\n"),
        &[],
        Cloud::Empty,
    );
    assert!(!run.success, "{}", run.transcript());
    assert!(run.stderr.contains("PUSH_AUTH_AUDIENCE"), "{}", run.stderr);
    assert!(run.changes().is_empty(), "{}", run.transcript());
}

#[test]
fn only_missing_apis_are_enabled() {
    let sandbox = Sandbox::new("apis");
    own_push_endpoints(&sandbox);
    let env_file = sandbox.env_file(TEST_ENV);
    let enabled: Vec<&str> = REQUIRED_APIS
        .into_iter()
        .filter(|api| *api != "pubsub.googleapis.com" && *api != "iam.googleapis.com")
        .chain(["bigquery.googleapis.com"])
        .collect();
    let run = sandbox.run_with_apis(
        "deploy.sh",
        &["--env-file", env_file.to_str().unwrap()],
        Cloud::Deployed,
        "",
        Some(&enabled),
    );
    assert_success(&run);
    let enable = run.calls_of(&["services", "enable"]);
    assert_eq!(enable.len(), 1);
    assert_eq!(
        enable[0].args[2..],
        ["pubsub.googleapis.com", "iam.googleapis.com"]
    );
}

#[test]
fn dry_run_runs_nothing_and_prints_what_a_first_run_does() {
    let sandbox = Sandbox::new("dry-run");
    let dry = deploy(&sandbox, TEST_ENV, &["--dry-run"], Cloud::Deployed);
    assert_success(&dry);
    assert!(
        dry.calls.is_empty(),
        "--dry-run ran gcloud:\n{}",
        dry.transcript()
    );
    assert!(dry.piped_secret.is_empty());

    // The printed plan is the sequence of commands a real first run executes (resources
    // treated as missing), describes included; only looked-up values are placeholders.
    let printed = printed_commands(&dry.stdout);
    let real = deploy(&sandbox, TEST_ENV, &[], Cloud::Empty);
    assert_success(&real);
    let head = |args: &[String]| args.iter().take(4).cloned().collect::<Vec<_>>();
    let printed_heads: Vec<_> = printed.iter().map(|a| head(a)).collect();
    let real_heads: Vec<_> = real.calls.iter().map(|c| head(&c.args)).collect();
    assert_eq!(printed_heads, real_heads);
    for line in [
        "+ gcloud secrets describe t-jwt",
        "+ gcloud redis instances describe t-redis --region=europe-west1",
        "+ gcloud pubsub subscriptions describe aa-new-message-sub",
    ] {
        assert!(
            dry.stdout.contains(line),
            "{line} not printed:\n{}",
            dry.stdout
        );
    }
    let secret = printed
        .iter()
        .find(|a| a.starts_with(&["secrets".into(), "create".into()]))
        .expect("secret creation printed");
    assert!(secret.contains(&"--data-file=-".to_owned()));
    // Each step announces itself.
    assert!(dry.stdout.matches("==> ").count() >= 10, "{}", dry.stdout);
}

#[test]
fn missing_required_setting_is_named() {
    for name in ["GCP_PROJECT_ID", "SERVICE_REGION", "VPC_CONNECTOR_RANGE"] {
        let without: String = TEST_ENV
            .lines()
            .filter(|line| !line.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("\n");
        let emptied = format!("{without}\n{name}=''\n");
        for (variant, env) in [("absent", without.as_str()), ("empty", emptied.as_str())] {
            let sandbox = Sandbox::new("missing-setting");
            let run = deploy(&sandbox, env, &[], Cloud::Empty);
            assert!(!run.success, "{name} {variant}: script succeeded");
            assert!(
                run.stderr.contains(name) && run.stderr.contains("required"),
                "{name} {variant}: message does not name it: {}",
                run.stderr
            );
            assert!(run.calls.is_empty(), "{name} {variant}: gcloud ran");
        }
    }
}

#[test]
fn invalid_or_misspelt_settings_are_named() {
    let sandbox = Sandbox::new("invalid-setting");
    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nMAX_DELIVERY_ATTEMPTS=1000\n"),
        &[],
        Cloud::Empty,
    );
    assert!(!run.success);
    assert!(
        run.stderr.contains("MAX_DELIVERY_ATTEMPTS"),
        "{}",
        run.stderr
    );
    assert!(run.calls.is_empty());

    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nVPC_CONNECTOR_RANGE=10.9.0.0/24\n"),
        &[],
        Cloud::Empty,
    );
    assert!(!run.success);
    assert!(run.stderr.contains("VPC_CONNECTOR_RANGE"), "{}", run.stderr);

    // A value the --set-env-vars encoding cannot carry stops the script before any change.
    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nCORS_ALLOWED_ORIGINS='https://a.example|https://b.example'\n"),
        &[],
        Cloud::Empty,
    );
    assert!(!run.success, "{}", run.transcript());
    assert!(
        run.stderr.contains("CORS_ALLOWED_ORIGINS"),
        "{}",
        run.stderr
    );
    assert!(run.calls.is_empty(), "{}", run.transcript());

    let typo = TEST_ENV.replace("GCP_PROJECT_ID=", "GCP_PROJET_ID=");
    let run = deploy(&sandbox, &typo, &[], Cloud::Empty);
    assert!(!run.success);
    assert!(
        run.stderr.contains("unknown setting GCP_PROJET_ID"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("GCP_PROJECT_ID is required"),
        "{}",
        run.stderr
    );

    let run = sandbox.run(
        "deploy.sh",
        &["--env-file", "/nonexistent/deploy.env"],
        Cloud::Empty,
        "",
    );
    assert!(!run.success);
    assert!(run.stderr.contains(".env.sample"), "{}", run.stderr);
}

#[test]
fn env_file_is_read_not_executed() {
    let sandbox = Sandbox::new("not-executed");
    let marker = sandbox.dir.join("executed");
    let env = format!(
        "{TEST_ENV}\nAUTH_OPTION='$(touch {m})'\n",
        m = marker.display()
    );
    let run = deploy(&sandbox, &env, &["--dry-run"], Cloud::Empty);
    assert_success(&run);
    assert!(!marker.exists(), "a value in the env file was executed");
    assert!(run.stdout.contains("AUTH_OPTION=$(touch"), "{}", run.stdout);
}

#[test]
fn permission_errors_stop_instead_of_creating() {
    let sandbox = Sandbox::new("denied");
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Denied);
    assert!(!run.success, "{}", run.transcript());
    assert!(run.stderr.contains("PERMISSION_DENIED"), "{}", run.stderr);
    assert!(
        run.calls.iter().all(|c| !c.has("create")),
        "created after a failed check:\n{}",
        run.transcript()
    );
}

#[test]
fn sample_env_documents_every_setting_and_works() {
    let root = repo_root();
    let sample = fs::read_to_string(root.join("deploy/.env.sample")).expect(".env.sample");
    let script = fs::read_to_string(root.join("deploy/deploy.sh")).expect("deploy.sh");

    // Every setting the script accepts (its CONFIG_VARS and the app-setting lists).
    let mut known = BTreeSet::new();
    for list in [
        "CONFIG_VARS",
        "SHARED_APP_VARS",
        "CONNECTOR_APP_VARS",
        "INTERCEPTOR_APP_VARS",
    ] {
        let start = script
            .find(&format!("\n{list}=("))
            .unwrap_or_else(|| panic!("{list} not found in deploy.sh"));
        let body = &script[start..];
        let body = &body[body.find('(').unwrap() + 1..body.find("\n)").unwrap()];
        known.extend(
            body.split_whitespace()
                .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .map(str::to_owned),
        );
    }
    assert!(known.len() > 30, "parsed only {known:?}");

    // Every setting in the sample, each under a comment (one comment may cover a group).
    let lines: Vec<&str> = sample.lines().collect();
    let key_of = |line: &str| {
        line.split_once('=')
            .map(|(k, _)| k.trim().to_owned())
            .filter(|k| !k.is_empty() && !k.starts_with('#'))
    };
    let mut documented = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(key) = key_of(line) else { continue };
        let above = lines[..i]
            .iter()
            .rev()
            .find(|l| key_of(l).is_none())
            .copied()
            .unwrap_or("");
        assert!(
            above.trim_start().starts_with('#'),
            "{key} in .env.sample has no explanatory comment"
        );
        documented.insert(key);
    }
    assert_eq!(documented, known, ".env.sample and deploy.sh disagree");

    // The sample is usable as is (placeholders included) and holds no unknown names.
    let sandbox = Sandbox::new("sample");
    let path = root.join("deploy/.env.sample");
    let run = sandbox.run(
        "deploy.sh",
        &["--env-file", path.to_str().unwrap(), "--dry-run"],
        Cloud::Empty,
        "",
    );
    assert_success(&run);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    // Defaults from the brief: the four topics.
    for (topic, _, _) in EVENT_FEEDS {
        assert!(
            run.stdout
                .contains(&format!("+ gcloud pubsub topics create {topic}\n")),
            "{topic}"
        );
    }
    // The default image tag is <git commit>-<UTC time> (or the time alone outside git).
    let build = printed_commands(&run.stdout)
        .into_iter()
        .find(|a| a.starts_with(&["builds".into(), "submit".into()]))
        .expect("build printed");
    let tag = build
        .iter()
        .find_map(|a| a.rsplit_once(":").map(|(_, t)| t.to_owned()))
        .expect("image tag");
    let stamp = tag.rsplit('-').next().unwrap();
    assert!(
        stamp.len() == 15 && stamp.as_bytes()[8] == b't',
        "unexpected tag {tag}"
    );
}

#[test]
fn cloudbuild_config_builds_the_requested_dockerfile() {
    let config =
        fs::read_to_string(repo_root().join("deploy/cloudbuild.yaml")).expect("cloudbuild.yaml");
    for needle in [
        "gcr.io/cloud-builders/docker",
        "\"${_DOCKERFILE}\"",
        "\"${_IMAGE}\"",
        "images:",
    ] {
        assert!(config.contains(needle), "cloudbuild.yaml lacks {needle}");
    }
}

#[test]
fn teardown_dry_run_prints_every_delete() {
    let sandbox = Sandbox::new("teardown-dry");
    let run = teardown(&sandbox, &["--yes", "--dry-run"], Cloud::Deployed, "");
    assert_success(&run);
    assert!(
        run.calls.is_empty(),
        "--dry-run ran gcloud:\n{}",
        run.transcript()
    );
    let mut expected = vec![
        "+ gcloud run services delete t-connector --region=europe-west1 --quiet".to_owned(),
        "+ gcloud run services delete t-interceptor --region=europe-west1 --quiet".to_owned(),
        "+ gcloud compute networks vpc-access connectors delete t-vpc --region=europe-west1 --quiet"
            .to_owned(),
        "+ gcloud redis instances delete t-redis --region=europe-west1 --quiet".to_owned(),
        "+ gcloud secrets delete t-jwt --quiet".to_owned(),
        format!("+ gcloud iam service-accounts delete {CONNECTOR_SA} --quiet"),
        format!("+ gcloud iam service-accounts delete {INTERCEPTOR_SA} --quiet"),
        format!("+ gcloud iam service-accounts delete {INVOKER_SA} --quiet"),
        "+ gcloud artifacts repositories delete t-images --location=europe-west1 --quiet"
            .to_owned(),
        format!("+ gcloud pubsub topics delete {DEAD_LETTER_TOPIC} --quiet"),
        "+ gcloud pubsub subscriptions delete t-dead-letters-sub --quiet".to_owned(),
    ];
    for (topic, subscription, _) in EVENT_FEEDS {
        expected.push(format!("+ gcloud pubsub topics delete {topic} --quiet"));
        expected.push(format!(
            "+ gcloud pubsub subscriptions delete {subscription} --quiet"
        ));
    }
    for line in expected {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "not printed: {line}\n{}",
            run.stdout
        );
    }
}

#[test]
fn teardown_deletes_what_exists_consumers_first() {
    let sandbox = Sandbox::new("teardown");
    let run = teardown(&sandbox, &["--yes"], Cloud::Deployed, "");
    assert_success(&run);
    for call in &run.calls {
        assert_eq!(call.project, PROJECT);
    }
    let deletes = run.changes().iter().filter(|c| c.has("delete")).count();
    // 5 subscriptions, 5 topics, 2 services, connector, Redis, secret, 3 accounts, repository.
    assert_eq!(deletes, 19, "{}", run.transcript());
    // Every delete is checked first and is non-interactive.
    for (i, call) in run.calls.iter().enumerate() {
        if let Some(at) = call.args.iter().position(|a| a == "delete") {
            let mut describe = call.args.clone();
            describe[at] = "describe".into();
            describe.retain(|a| a != "--quiet");
            assert!(
                run.calls[..i].iter().any(|c| c.args == describe),
                "`{}` not preceded by a describe",
                call.line()
            );
            assert!(call.has("--quiet"), "{}", call.line());
        }
    }
    // The project bindings deploy added are removed before the accounts go.
    let revoked: BTreeSet<(String, String)> = run
        .calls_of(&["projects", "remove-iam-policy-binding", PROJECT])
        .into_iter()
        .map(|c| {
            (
                c.flag("--member").unwrap().to_owned(),
                c.flag("--role").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        revoked.len(),
        CONNECTOR_ROLES.len() + INTERCEPTOR_ROLES.len()
    );
    let last_revoke = run
        .calls
        .iter()
        .rposition(|c| c.is(&["projects", "remove-iam-policy-binding"]))
        .unwrap();
    assert!(last_revoke < run.position(&["iam", "service-accounts", "delete"], INTERCEPTOR_SA));

    // Consumers before what they consume.
    for (topic, subscription, _) in EVENT_FEEDS {
        assert!(
            run.position(&["pubsub", "subscriptions", "delete"], subscription)
                < run.position(&["pubsub", "topics", "delete"], topic)
        );
    }
    let vpc = run.position(
        &["compute", "networks", "vpc-access", "connectors", "delete"],
        "t-vpc",
    );
    assert!(run.position(&["run", "services", "delete"], "t-connector") < vpc);
    assert!(run.position(&["run", "services", "delete"], "t-interceptor") < vpc);
    assert!(
        run.position(&["run", "services", "delete"], "t-connector")
            < run.position(&["secrets", "delete"], "t-jwt")
    );
}

#[test]
fn teardown_twice_deletes_nothing_the_second_time() {
    let sandbox = Sandbox::new("teardown-again");
    let run = teardown(&sandbox, &["--yes"], Cloud::Empty, "");
    assert_success(&run);
    assert!(
        run.changes().is_empty(),
        "changes on an empty project:\n{}",
        run.transcript()
    );
    assert!(run.calls.len() >= 17, "existence checks missing");
}

#[test]
fn teardown_keep_topics_keeps_the_notification_topics() {
    let sandbox = Sandbox::new("teardown-keep");
    let run = teardown(&sandbox, &["--yes", "--keep-topics"], Cloud::Deployed, "");
    assert_success(&run);
    let topics: Vec<&str> = run
        .calls_of(&["pubsub", "topics", "delete"])
        .iter()
        .map(|c| c.args[3].as_str())
        .collect();
    assert_eq!(topics, [DEAD_LETTER_TOPIC]);
    assert_eq!(
        run.calls_of(&["pubsub", "subscriptions", "delete"]).len(),
        5
    );
}

#[test]
fn teardown_asks_for_confirmation() {
    let sandbox = Sandbox::new("teardown-confirm");
    // No answer at all (stdin closed) and a wrong answer both abort before any gcloud call.
    for answer in ["", "yes\n", "other-project\n"] {
        let run = teardown(&sandbox, &[], Cloud::Deployed, answer);
        assert!(!run.success, "answer {answer:?} was accepted");
        assert!(run.stderr.contains("not confirmed"), "{}", run.stderr);
        assert!(run.calls.is_empty(), "gcloud ran before confirmation");
    }
    // Typing the project id confirms.
    let run = teardown(&sandbox, &[], Cloud::Deployed, "test-project\n");
    assert_success(&run);
    assert!(run.stderr.contains("Type the project id"), "{}", run.stderr);
    assert!(!run.calls_of(&["redis", "instances", "delete"]).is_empty());
}

// ----------------------------------------------------------------------------------------
// The Dialogflow CX webhook (optional settings)
// ----------------------------------------------------------------------------------------

// ----------------------------------------------------------------------------------------
// REDIS_MODE=cluster
// ----------------------------------------------------------------------------------------

/// TEST_ENV with a Redis cluster, every cluster setting away from its default.
fn cluster_env() -> String {
    format!(
        "{TEST_ENV}\nREDIS_MODE='cluster'\nREDIS_CLUSTER_ID='t-cluster'\n\
         REDIS_CLUSTER_SHARD_COUNT='5'\nREDIS_CLUSTER_REPLICA_COUNT='2'\n\
         REDIS_CLUSTER_NODE_TYPE='redis-highcpu-medium'\nREDIS_CLUSTER_SUBNET='t-subnet'\n\
         REDIS_CLUSTER_CONNECTION_POLICY='t-psc'\n"
    )
}

const CLUSTER_APIS: [&str; 2] = [
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
];

#[test]
fn cluster_mode_creates_a_redis_cluster_with_its_connection_policy() {
    let sandbox = Sandbox::new("cluster-mode");
    let run = deploy(&sandbox, &cluster_env(), &[], Cloud::Empty);
    assert_success(&run);
    assert_creates_are_checked_first(&run);

    // The APIs of Private Service Connect's automation, besides the usual ones.
    let enabled: BTreeSet<&str> = run.calls_of(&["services", "enable"])[0].args[2..]
        .iter()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = REQUIRED_APIS.iter().chain(&CLUSTER_APIS).copied().collect();
    assert_eq!(enabled, expected);

    let network = "projects/test-project/global/networks/t-net";
    let policy = run.one(
        &[
            "network-connectivity",
            "service-connection-policies",
            "create",
        ],
        "t-psc",
    );
    assert_eq!(policy.flag("--region"), Some(REGION));
    assert_eq!(policy.flag("--network"), Some(network));
    assert_eq!(
        policy.flag("--service-class"),
        Some("gcp-memorystore-redis")
    );
    assert_eq!(
        policy.flag("--subnets"),
        Some("projects/test-project/regions/europe-west1/subnetworks/t-subnet")
    );

    let cluster = run.one(&["redis", "clusters", "create"], "t-cluster");
    for (flag, value) in [
        ("--region", REGION),
        ("--network", network),
        ("--shard-count", "5"),
        ("--replica-count", "2"),
        ("--node-type", "redis-highcpu-medium"),
        // As the standalone instance: no in-transit encryption, no AUTH (redis:// seeds).
        ("--transit-encryption-mode", "disabled"),
        ("--auth-mode", "disabled"),
    ] {
        assert_eq!(
            cluster.flag(flag),
            Some(value),
            "{flag}: {}",
            cluster.line()
        );
    }
    // The policy exists before the cluster that needs it.
    assert!(
        run.position(
            &[
                "network-connectivity",
                "service-connection-policies",
                "create"
            ],
            "t-psc"
        ) < run.position(&["redis", "clusters", "create"], "t-cluster")
    );

    // No standalone instance, not even looked for.
    assert!(
        run.calls_of(&["redis", "instances"]).is_empty(),
        "{}",
        run.transcript()
    );

    // Both services get the discovery endpoint as their seed node, read from the cluster, and
    // no REDISHOST/REDISPORT.
    assert!(run
        .calls_of(&["redis", "clusters", "describe", "t-cluster"])
        .iter()
        .any(|c| c.flag("--format") == Some("value(discoveryEndpoints[0].address)")));
    let seed = format!("redis://{REDIS_CLUSTER_ADDRESS}:{REDIS_CLUSTER_PORT}");
    for service in ["t-connector", "t-interceptor"] {
        let vars = env_vars(run.one(&["run", "deploy"], service));
        assert_eq!(
            env_var(&vars, "REDIS_CLUSTER_NODES"),
            Some(seed.as_str()),
            "{service}"
        );
        assert_eq!(env_var(&vars, "REDISHOST"), None, "{service}");
        assert_eq!(env_var(&vars, "REDISPORT"), None, "{service}");
        assert!(
            run.position(&["redis", "clusters", "create"], "t-cluster")
                < run.position(&["run", "deploy"], service)
        );
    }
    // The services still reach the network (and the cluster's endpoints) through the connector.
    assert_eq!(
        run.calls_of(&["compute", "networks", "vpc-access", "connectors", "create"])
            .len(),
        1
    );
}

#[test]
fn cluster_mode_second_run_creates_nothing() {
    let sandbox = Sandbox::new("cluster-again");
    own_push_endpoints(&sandbox);
    let all: Vec<&str> = REQUIRED_APIS.iter().chain(&CLUSTER_APIS).copied().collect();
    let run = sandbox.run_with_apis(
        "deploy.sh",
        &[
            "--env-file",
            sandbox.env_file(&cluster_env()).to_str().unwrap(),
        ],
        Cloud::Deployed,
        "",
        Some(&all),
    );
    assert_success(&run);
    let changes: Vec<String> = run
        .changes()
        .iter()
        .map(|c| c.args[..2].join(" "))
        .collect();
    assert_eq!(
        changes,
        ["builds submit", "builds submit", "run deploy", "run deploy"],
        "{}",
        run.transcript()
    );
    assert!(!run
        .calls_of(&["redis", "clusters", "describe", "t-cluster"])
        .is_empty());
    assert!(!run
        .calls_of(&[
            "network-connectivity",
            "service-connection-policies",
            "describe",
            "t-psc"
        ])
        .is_empty());

    // A standalone deployment switched to cluster mode: only the two APIs are added.
    let run = sandbox.run_with_apis(
        "deploy.sh",
        &[
            "--env-file",
            sandbox.env_file(&cluster_env()).to_str().unwrap(),
        ],
        Cloud::Deployed,
        "",
        Some(&REQUIRED_APIS),
    );
    assert_success(&run);
    let enable = run.calls_of(&["services", "enable"]);
    assert_eq!(enable.len(), 1);
    assert_eq!(enable[0].args[2..], CLUSTER_APIS);
}

#[test]
fn bad_cluster_settings_are_refused_before_anything_changes() {
    let sandbox = Sandbox::new("cluster-invalid");
    let cases = [
        (
            "REDIS_MODE='sharded'",
            "REDIS_MODE must be standalone or cluster",
        ),
        (
            "REDIS_CLUSTER_SHARD_COUNT='0'",
            "REDIS_CLUSTER_SHARD_COUNT must be a whole number from 1 to 250",
        ),
        (
            "REDIS_CLUSTER_SHARD_COUNT='three'",
            "REDIS_CLUSTER_SHARD_COUNT must be a whole number",
        ),
        (
            "REDIS_CLUSTER_REPLICA_COUNT='3'",
            "REDIS_CLUSTER_REPLICA_COUNT must be a whole number from 0 to 2",
        ),
        (
            "REDIS_CLUSTER_NODE_TYPE='REDIS_HIGHMEM_MEDIUM'",
            "REDIS_CLUSTER_NODE_TYPE must be one of redis-shared-core-nano",
        ),
        (
            "REDIS_CLUSTER_ID='T-Cluster'",
            "REDIS_CLUSTER_ID must be 1 to 63 lower-case letters",
        ),
        ("REDIS_CLUSTER_ID='t-cluster-'", "REDIS_CLUSTER_ID must be"),
        (
            "PYTHON_CONNECTOR_BRIDGE='true'",
            "PYTHON_CONNECTOR_BRIDGE=true is not supported with REDIS_MODE=cluster",
        ),
    ];
    for (setting, message) in cases {
        let run = deploy(
            &sandbox,
            &format!("{}\n{setting}\n", cluster_env()),
            &[],
            Cloud::Empty,
        );
        assert!(!run.success, "{setting} accepted:\n{}", run.transcript());
        assert!(
            run.stderr.contains(message),
            "{setting}: expected {message:?} in:\n{}",
            run.stderr
        );
        assert!(run.calls.is_empty(), "{setting}:\n{}", run.transcript());
    }
    // The bridge stays available with a standalone instance.
    let run = deploy(
        &sandbox,
        &format!(
            "{}\nREDIS_MODE='standalone'\nPYTHON_CONNECTOR_BRIDGE='true'\n",
            cluster_env()
        ),
        &["--dry-run"],
        Cloud::Empty,
    );
    assert_success(&run);
}

#[test]
fn an_existing_connection_policy_of_the_network_is_named_not_duplicated() {
    let sandbox = Sandbox::new("cluster-policy");
    // Policies of other networks do not matter; one of t-net stops the run before the cluster.
    sandbox.connection_policies(&[("other-psc", "other-net"), ("net-admins-psc", "t-net")]);
    let run = deploy(&sandbox, &cluster_env(), &[], Cloud::Empty);
    assert!(!run.success, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "network t-net already has the service connection policy net-admins-psc \
             for gcp-memorystore-redis in europe-west1"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("set REDIS_CLUSTER_CONNECTION_POLICY='net-admins-psc'"),
        "{}",
        run.stderr
    );
    assert!(run
        .calls_of(&[
            "network-connectivity",
            "service-connection-policies",
            "create"
        ])
        .is_empty());
    assert!(run.calls_of(&["redis", "clusters", "create"]).is_empty());
    // (Named, an existing policy is found by its describe and used as it is: the second run
    // of `cluster_mode_second_run_creates_nothing`.)

    // Without one on the network, the policy is created.
    sandbox.connection_policies(&[("other-psc", "other-net")]);
    let run = deploy(&sandbox, &cluster_env(), &[], Cloud::Empty);
    assert_success(&run);
    run.one(
        &[
            "network-connectivity",
            "service-connection-policies",
            "create",
        ],
        "t-psc",
    );
}

#[test]
fn teardown_in_cluster_mode_deletes_the_cluster_then_its_policy() {
    let sandbox = Sandbox::new("cluster-teardown");
    let env_file = sandbox.env_file(&cluster_env());
    let run = sandbox.run(
        "teardown.sh",
        &["--env-file", env_file.to_str().unwrap(), "--yes"],
        Cloud::Deployed,
        "",
    );
    assert_success(&run);
    let cluster = run.one(&["redis", "clusters", "delete"], "t-cluster");
    assert_eq!(cluster.flag("--region"), Some(REGION));
    assert!(cluster.has("--quiet"));
    let policy = run.position(
        &[
            "network-connectivity",
            "service-connection-policies",
            "delete",
        ],
        "t-psc",
    );
    // The services that use the cluster go first; the policy after the cluster's endpoints.
    let cluster = run.position(&["redis", "clusters", "delete"], "t-cluster");
    assert!(run.position(&["run", "services", "delete"], "t-connector") < cluster);
    assert!(cluster < policy);
    assert!(run.calls_of(&["redis", "instances"]).is_empty());
    // 5 subscriptions, 5 topics, 2 services, connector, cluster, policy, secret, 3 accounts,
    // repository.
    let deletes = run.changes().iter().filter(|c| c.has("delete")).count();
    assert_eq!(deletes, 20, "{}", run.transcript());

    // And nothing the second time.
    let run = sandbox.run(
        "teardown.sh",
        &["--env-file", env_file.to_str().unwrap(), "--yes"],
        Cloud::Empty,
        "",
    );
    assert_success(&run);
    assert!(run.changes().is_empty(), "{}", run.transcript());
}

const CX_AGENT: &str = "service-987654321098@gcp-sa-dialogflow.iam.gserviceaccount.com";
const CX_AUDIENCE: &str = "https://t-interceptor-987.europe-west1.run.app/dialogflow-cx-webhook,https://t-interceptor-987.europe-west1.run.app/dialogflow-cx-webhook/flexible";

fn cx_env() -> String {
    format!(
        "{TEST_ENV}\nINTERCEPTOR_INGRESS='all'\nCX_WEBHOOK_SERVICE_AGENT='{CX_AGENT}'\n\
         CX_WEBHOOK_ID_TOKEN_AUDIENCE='{CX_AUDIENCE}'\nCX_WEBHOOK_HEADER_SECRET_NAME='t-cx-header'\n\
         CX_WEBHOOK_BASIC_AUTH_SECRET_NAME='t-cx-basic'\nCX_WEBHOOK_DEADLINE_MS='2500'\n\
         INTEGRATION_KEY_TTL_SECONDS='7200'\n"
    )
}

#[test]
fn cx_webhook_settings_create_the_secrets_and_let_the_service_agent_in() {
    let sandbox = Sandbox::new("cx-webhook");
    let run = deploy(&sandbox, &cx_env(), &[], Cloud::Empty);
    assert_success(&run);
    assert_creates_are_checked_first(&run);

    // Two secrets, generated and piped like the JWT secret, never printed.
    for name in ["t-cx-header", "t-cx-basic"] {
        let secret = run.one(&["secrets", "create"], name);
        assert_eq!(secret.flag("--replication-policy"), Some("user-managed"));
        assert_eq!(secret.flag("--locations"), Some(REGION));
        assert!(secret.has("--data-file=-"), "{}", secret.line());
        // Readable by the interceptor's account, on that secret only.
        let grant = run.one(&["secrets", "add-iam-policy-binding"], name);
        assert_eq!(
            grant.flag("--member"),
            Some(format!("serviceAccount:{INTERCEPTOR_SA}").as_str())
        );
        assert_eq!(
            grant.flag("--role"),
            Some("roles/secretmanager.secretAccessor")
        );
        assert!(
            run.position(&["secrets", "add-iam-policy-binding"], name)
                < run.position(&["run", "deploy"], "t-interceptor")
        );
    }
    let piped = &run.piped_secret;
    let header = piped
        .split("Bearer ")
        .nth(1)
        .expect("the header secret is 'Bearer <random>'");
    assert!(header.len() >= 64, "{piped}");
    assert!(piped.contains("dialogflow-cx:"), "{piped}");
    for token in piped.split(['\n', ' ', ':']).filter(|t| t.len() >= 32) {
        assert!(
            !run.stdout.contains(token),
            "a generated secret was printed"
        );
        assert!(
            !run.stderr.contains(token),
            "a generated secret was printed"
        );
    }
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    // The interceptor: the ingress asked for, the secrets mounted, the settings pointing there.
    let interceptor = run.one(&["run", "deploy"], "t-interceptor");
    assert_eq!(interceptor.flag("--ingress"), Some("all"));
    assert!(interceptor.has("--no-allow-unauthenticated"));
    assert_eq!(
        interceptor.flag("--set-secrets"),
        Some(
            "/secret/cx-webhook-header/authorization=t-cx-header:latest,\
             /secret/cx-webhook-basic-auth/credentials=t-cx-basic:latest"
        )
    );
    let vars = env_vars(interceptor);
    assert_eq!(
        env_var(&vars, "CX_WEBHOOK_HEADER_SECRET_PATH"),
        Some("/secret/cx-webhook-header/authorization")
    );
    assert_eq!(
        env_var(&vars, "CX_WEBHOOK_BASIC_AUTH_PATH"),
        Some("/secret/cx-webhook-basic-auth/credentials")
    );
    assert_eq!(env_var(&vars, "CX_WEBHOOK_SERVICE_AGENT"), Some(CX_AGENT));
    assert_eq!(
        env_var(&vars, "CX_WEBHOOK_ID_TOKEN_AUDIENCE"),
        Some(CX_AUDIENCE)
    );
    assert_eq!(env_var(&vars, "CX_WEBHOOK_DEADLINE_MS"), Some("2500"));
    assert_eq!(env_var(&vars, "INTEGRATION_KEY_TTL_SECONDS"), Some("7200"));
    // The connector gets none of the webhook's settings, but the shared key lifetime.
    let connector = run.one(&["run", "deploy"], "t-connector");
    let vars = env_vars(connector);
    assert!(
        vars.iter().all(|(k, _)| !k.starts_with("CX_WEBHOOK")),
        "{vars:?}"
    );
    assert_eq!(env_var(&vars, "INTEGRATION_KEY_TTL_SECONDS"), Some("7200"));

    // The service agent may invoke the interceptor, next to the Pub/Sub invoker.
    let invokers: BTreeSet<&str> = run
        .calls_of(&["run", "services", "add-iam-policy-binding", "t-interceptor"])
        .into_iter()
        .map(|c| c.flag("--member").expect("--member"))
        .collect();
    assert_eq!(
        invokers,
        BTreeSet::from([
            format!("serviceAccount:{CX_AGENT}").as_str(),
            format!("serviceAccount:{INVOKER_SA}").as_str(),
        ])
    );
    // The summary says where to point CX.
    assert!(
        run.stdout.contains(&format!(
            "standard  {}/dialogflow-cx-webhook",
            service_url("t-interceptor")
        )),
        "{}",
        run.stdout
    );

    // Again: nothing created or granted, no secret replaced.
    own_push_endpoints(&sandbox);
    let again = deploy(&sandbox, &cx_env(), &[], Cloud::Deployed);
    assert_success(&again);
    assert!(again.calls_of(&["secrets", "create"]).is_empty());
    assert!(again
        .calls_of(&["secrets", "add-iam-policy-binding"])
        .is_empty());
    assert!(again.piped_secret.is_empty());
    assert!(again
        .calls_of(&["run", "services", "add-iam-policy-binding"])
        .is_empty());

    // Teardown deletes the webhook's secrets with the JWT secret.
    let env_file = sandbox.env_file(&cx_env());
    let down = sandbox.run(
        "teardown.sh",
        &["--env-file", env_file.to_str().unwrap(), "--yes"],
        Cloud::Deployed,
        "",
    );
    assert_success(&down);
    for name in ["t-jwt", "t-cx-header", "t-cx-basic"] {
        down.one(&["secrets", "delete"], name);
    }
}

#[test]
fn without_cx_webhook_settings_nothing_of_it_is_deployed() {
    let sandbox = Sandbox::new("cx-webhook-off");
    let run = deploy(&sandbox, TEST_ENV, &[], Cloud::Empty);
    assert_success(&run);
    let interceptor = run.one(&["run", "deploy"], "t-interceptor");
    assert_eq!(interceptor.flag("--ingress"), Some("internal"));
    assert_eq!(interceptor.flag("--set-secrets"), None);
    assert!(env_vars(interceptor)
        .iter()
        .all(|(k, _)| !k.starts_with("CX_WEBHOOK")));
    assert_eq!(
        run.calls_of(&["secrets", "create"]).len(),
        1,
        "only the JWT secret"
    );
    assert_eq!(
        run.calls_of(&["run", "services", "add-iam-policy-binding"])
            .len(),
        1,
        "only the Pub/Sub invoker"
    );
    assert!(!run.stdout.contains("dialogflow-cx-webhook"));
}

#[test]
fn cx_webhook_settings_are_checked_before_anything_changes() {
    let sandbox = Sandbox::new("cx-webhook-invalid");
    let cases = [
        (
            format!("CX_WEBHOOK_SERVICE_AGENT='{CX_AGENT}'"),
            "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
        ),
        (
            "CX_WEBHOOK_ID_TOKEN_AUDIENCE='https://x/dialogflow-cx-webhook'".to_owned(),
            "CX_WEBHOOK_SERVICE_AGENT",
        ),
        (
            "INTERCEPTOR_INGRESS='public'".to_owned(),
            "INTERCEPTOR_INGRESS",
        ),
        (
            "CX_WEBHOOK_ID_TOKEN_AUDIENCE='https://a|https://b'\nCX_WEBHOOK_SERVICE_AGENT='a@b'"
                .to_owned(),
            "CX_WEBHOOK_ID_TOKEN_AUDIENCE",
        ),
    ];
    for (lines, named) in cases {
        let run = deploy(
            &sandbox,
            &format!("{TEST_ENV}\n{lines}\n"),
            &[],
            Cloud::Empty,
        );
        assert!(!run.success, "{lines}: {}", run.transcript());
        assert!(run.stderr.contains(named), "{lines}: {}", run.stderr);
        assert!(run.calls.is_empty(), "{}", run.transcript());
    }
    // A webhook behind internal ingress deploys, with a warning saying how CX gets in.
    let run = deploy(
        &sandbox,
        &format!("{TEST_ENV}\nCX_WEBHOOK_HEADER_SECRET_NAME='t-cx-header'\n"),
        &["--dry-run"],
        Cloud::Empty,
    );
    assert_success(&run);
    assert!(
        run.stderr.contains("INTERCEPTOR_INGRESS is internal"),
        "{}",
        run.stderr
    );
}
