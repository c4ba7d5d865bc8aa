//! A stand-in for the google and random providers: the attributes they compute.
//!
//! Expressions in the configuration refer to values only a provider knows after creating a
//! resource: a service account's e-mail address, a topic's id, a service's URL, the Redis
//! host. Their formats are the providers' documented ones; values only the cloud decides (the
//! Redis address, the project number, service URLs) are [`CloudFacts`], which the tests take
//! from what the fake gcloud answers deploy.sh, so both sides see the same cloud. A resource
//! type not listed here is an error: a new type needs its computed attributes (and import
//! format) added deliberately.

use hcl::{Map, Value};

use super::text;

/// What the cloud decides, as the fake gcloud reports it.
#[derive(Debug, Clone)]
pub struct CloudFacts {
    pub project_number: String,
    pub redis_host: String,
    pub redis_port: u16,
    /// The Redis cluster's discovery endpoint.
    pub redis_cluster_address: String,
    pub redis_cluster_port: u16,
    /// The URL Cloud Run gives a service, by service name.
    pub service_url: fn(&str) -> String,
}

/// The provider configuration every resource inherits, and the cloud's facts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub project: String,
    pub region: String,
    pub cloud: CloudFacts,
}

/// What `random_password` generates here: a marker the tests look for wherever the secret
/// must not appear (outputs).
pub const GENERATED_PASSWORD: &str = "generated-jwt-secret-8c2f0d6e4b1a";

fn get(config: &Map<String, Value>, name: &str) -> Result<String, String> {
    config
        .get(name)
        .and_then(text)
        .ok_or_else(|| format!("{name} is not set"))
}

/// `config` plus the attributes the provider computes for a managed resource.
pub fn computed(
    kind: &str,
    config: &Map<String, Value>,
    settings: &Settings,
) -> Result<Map<String, Value>, String> {
    let mut attrs = config.clone();
    let mut set = |name: &str, value: Value| {
        attrs.entry(name.to_owned()).or_insert(value);
    };
    let project = config
        .get("project")
        .and_then(text)
        .unwrap_or_else(|| settings.project.clone());
    let region = |key: &str| {
        config
            .get(key)
            .and_then(text)
            .unwrap_or_else(|| settings.region.clone())
    };
    if kind != "random_password" {
        set("project", Value::from(project.as_str()));
    }
    match kind {
        "random_password" => {
            set("result", Value::from(GENERATED_PASSWORD));
            set("id", Value::from("none"));
        }
        "google_project_service" => {
            let id = format!("{project}/{}", get(config, "service")?);
            set("id", Value::from(id));
        }
        "google_service_account" => {
            let email = format!(
                "{}@{project}.iam.gserviceaccount.com",
                get(config, "account_id")?
            );
            let name = format!("projects/{project}/serviceAccounts/{email}");
            set("member", Value::from(format!("serviceAccount:{email}")));
            set("email", Value::from(email));
            set("id", Value::from(name.as_str()));
            set("name", Value::from(name));
        }
        "google_project_iam_member"
        | "google_cloud_run_v2_service_iam_member"
        | "google_pubsub_topic_iam_member"
        | "google_pubsub_subscription_iam_member"
        | "google_secret_manager_secret_iam_member" => {
            set("etag", Value::from("BwYfakeEtag="));
            if kind == "google_cloud_run_v2_service_iam_member" {
                set("location", Value::from(region("location")));
            }
        }
        "google_secret_manager_secret" => {
            let secret_id = get(config, "secret_id")?;
            set(
                "id",
                Value::from(format!("projects/{project}/secrets/{secret_id}")),
            );
            // The API names secrets by project number.
            set(
                "name",
                Value::from(format!(
                    "projects/{}/secrets/{secret_id}",
                    settings.cloud.project_number
                )),
            );
        }
        "google_secret_manager_secret_version" => {
            let name = format!("{}/versions/1", get(config, "secret")?);
            set("id", Value::from(name.as_str()));
            set("name", Value::from(name));
            set("version", Value::from("1"));
        }
        "google_redis_instance" => {
            let id = format!(
                "projects/{project}/locations/{}/instances/{}",
                region("region"),
                get(config, "name")?
            );
            set("id", Value::from(id));
            set("host", Value::from(settings.cloud.redis_host.as_str()));
            set("port", Value::from(settings.cloud.redis_port));
        }
        "google_redis_cluster" => {
            let id = format!(
                "projects/{project}/locations/{}/clusters/{}",
                region("region"),
                get(config, "name")?
            );
            set("id", Value::from(id));
            // One discovery endpoint, in the network of the cluster's PSC config.
            let mut endpoint = Map::new();
            endpoint.insert(
                "address".to_owned(),
                Value::from(settings.cloud.redis_cluster_address.as_str()),
            );
            endpoint.insert(
                "port".to_owned(),
                Value::from(settings.cloud.redis_cluster_port),
            );
            set(
                "discovery_endpoints",
                Value::Array(vec![Value::Object(endpoint)]),
            );
        }
        "google_network_connectivity_service_connection_policy" => {
            let id = format!(
                "projects/{project}/locations/{}/serviceConnectionPolicies/{}",
                region("location"),
                get(config, "name")?
            );
            set("id", Value::from(id));
        }
        "google_vpc_access_connector" => {
            let id = format!(
                "projects/{project}/locations/{}/connectors/{}",
                region("region"),
                get(config, "name")?
            );
            set("id", Value::from(id.as_str()));
            set("self_link", Value::from(id));
        }
        "google_artifact_registry_repository" => {
            let repository = get(config, "repository_id")?;
            let id = format!(
                "projects/{project}/locations/{}/repositories/{repository}",
                region("location")
            );
            set("id", Value::from(id));
            set("name", Value::from(repository));
        }
        "google_cloud_run_v2_service" => {
            let name = get(config, "name")?;
            let id = format!(
                "projects/{project}/locations/{}/services/{name}",
                region("location")
            );
            set("id", Value::from(id));
            set("uri", Value::from((settings.cloud.service_url)(&name)));
        }
        "google_pubsub_topic" => {
            let id = format!("projects/{project}/topics/{}", get(config, "name")?);
            set("id", Value::from(id));
        }
        "google_pubsub_subscription" => {
            let id = format!("projects/{project}/subscriptions/{}", get(config, "name")?);
            set("id", Value::from(id));
        }
        other => return Err(format!("the stand-in provider does not know {other}")),
    }
    Ok(attrs)
}

/// `config` plus what a data source reads.
pub fn read(
    kind: &str,
    config: &Map<String, Value>,
    settings: &Settings,
) -> Result<Map<String, Value>, String> {
    let mut attrs = config.clone();
    match kind {
        "google_project" => {
            let project = config
                .get("project_id")
                .and_then(text)
                .unwrap_or_else(|| settings.project.clone());
            attrs.insert("project_id".into(), Value::from(project.as_str()));
            attrs.insert(
                "number".into(),
                Value::from(settings.cloud.project_number.as_str()),
            );
            attrs.insert("id".into(), Value::from(format!("projects/{project}")));
        }
        other => return Err(format!("the stand-in provider does not read {other}")),
    }
    Ok(attrs)
}

/// A full resource name for a topic or subscription given by name or by id.
fn pubsub_path(project: &str, collection: &str, name_or_id: &str) -> String {
    if name_or_id.starts_with("projects/") {
        name_or_id.to_owned()
    } else {
        format!("projects/{project}/{collection}/{name_or_id}")
    }
}

/// The id `terraform import` takes for this resource (the provider's documented import
/// format), or `None` for a resource that is not imported (generated, or whose id must be
/// looked up).
pub fn import_id(kind: &str, attrs: &Map<String, Value>) -> Result<Option<String>, String> {
    let a = |name: &str| get(attrs, name);
    let member = || -> Result<String, String> { Ok(format!("{} {}", a("role")?, a("member")?)) };
    Ok(Some(match kind {
        "random_password" | "google_secret_manager_secret_version" => return Ok(None),
        "google_project_service" => format!("{}/{}", a("project")?, a("service")?),
        "google_service_account" => {
            format!("projects/{}/serviceAccounts/{}", a("project")?, a("email")?)
        }
        "google_project_iam_member" => format!("{} {}", a("project")?, member()?),
        "google_secret_manager_secret" => {
            format!("projects/{}/secrets/{}", a("project")?, a("secret_id")?)
        }
        "google_secret_manager_secret_iam_member" => {
            let secret = a("secret_id")?;
            let path = if secret.starts_with("projects/") {
                secret
            } else {
                format!("projects/{}/secrets/{secret}", a("project")?)
            };
            format!("{path} {}", member()?)
        }
        "google_redis_instance"
        | "google_redis_cluster"
        | "google_network_connectivity_service_connection_policy"
        | "google_vpc_access_connector"
        | "google_artifact_registry_repository"
        | "google_cloud_run_v2_service"
        | "google_pubsub_topic"
        | "google_pubsub_subscription" => a("id")?,
        "google_cloud_run_v2_service_iam_member" => format!(
            "projects/{}/locations/{}/services/{} {}",
            a("project")?,
            a("location")?,
            a("name")?,
            member()?
        ),
        "google_pubsub_topic_iam_member" => format!(
            "{} {}",
            pubsub_path(&a("project")?, "topics", &a("topic")?),
            member()?
        ),
        "google_pubsub_subscription_iam_member" => format!(
            "{} {}",
            pubsub_path(&a("project")?, "subscriptions", &a("subscription")?),
            member()?
        ),
        other => return Err(format!("no import format known for {other}")),
    }))
}
