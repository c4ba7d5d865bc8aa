//! Evaluating `deploy/terraform` the way `terraform plan` would, without Terraform's providers.
//!
//! The providers cannot be downloaded here, so no real plan can be made. What the drift tests
//! need from a plan is what each resource would be created with, and that is decided by the
//! configuration alone, given the variable values and the few attributes only the providers
//! know (e-mail addresses, ids, URLs, the Redis host). So this module parses the `.tf` files
//! (hcl-rs), applies variable values and defaults, and evaluates locals, data sources,
//! resources (`for_each`, `count`, `dynamic` blocks) and outputs in dependency order, with a
//! stand-in provider ([`provider`]) supplying those computed attributes and Terraform's
//! functions re-implemented in [`functions`]. Anything it cannot evaluate (an unknown
//! function, a misspelt reference) is an error, not a silent gap.

pub mod functions;
pub mod provider;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};
use hcl::expr::{Expression, Operation, TraversalOperator};
use hcl::{Block, Body, Map, Structure, Value};

/// Arguments Terraform itself interprets; they are not resource settings.
const META_ARGUMENTS: [&str; 5] = ["count", "for_each", "depends_on", "provider", "providers"];
/// Nested blocks Terraform itself interprets.
const META_BLOCKS: [&str; 3] = ["lifecycle", "provisioner", "connection"];

/// The declared type of a variable, as far as converting `.env` strings needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    String,
    Number,
    Bool,
    Other,
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub var_type: VarType,
    pub default: Option<Value>,
    pub description: Option<String>,
    /// (condition, error message) of each `validation` block.
    validations: Vec<(Expression, String)>,
}

impl Variable {
    /// The value for `text` as Terraform converts a string to the variable's type.
    pub fn convert(&self, name: &str, text: &str) -> Result<Value, String> {
        match self.var_type {
            VarType::Number => {
                if let Ok(n) = text.parse::<i64>() {
                    Ok(Value::from(n))
                } else {
                    text.parse::<f64>()
                        .ok()
                        .and_then(hcl::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("{name}: {text:?} is not a number"))
                }
            }
            VarType::Bool => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("{name}: {text:?} is not a bool")),
            },
            VarType::String | VarType::Other => Ok(Value::from(text)),
        }
    }
}

/// `resource` or `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Managed,
    Data,
}

#[derive(Debug, Clone)]
struct Declaration {
    mode: Mode,
    kind: String,
    name: String,
    body: Body,
}

impl Declaration {
    fn address(&self) -> String {
        match self.mode {
            Mode::Managed => format!("{}.{}", self.kind, self.name),
            Mode::Data => format!("data.{}.{}", self.kind, self.name),
        }
    }
}

/// One instance of a resource or data source, evaluated.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The resource type, e.g. `google_pubsub_topic`.
    pub kind: String,
    pub name: String,
    /// The `for_each` key or `count` index.
    pub key: Option<String>,
    /// What the configuration sets: attributes, and nested blocks as arrays of objects.
    pub config: Map<String, Value>,
    /// `config` plus what the provider computes (ids, e-mails, URLs).
    pub attrs: Map<String, Value>,
}

impl Instance {
    /// Terraform's address, e.g. `google_pubsub_topic.event["new_message"]`.
    pub fn address(&self) -> String {
        match &self.key {
            None => format!("{}.{}", self.kind, self.name),
            Some(key) if key.parse::<u64>().is_ok() => {
                format!("{}.{}[{key}]", self.kind, self.name)
            }
            Some(key) => format!("{}.{}[\"{key}\"]", self.kind, self.name),
        }
    }

    /// A computed or configured attribute as text (strings as they are, numbers and bools
    /// printed), or `None` when absent or null.
    pub fn text(&self, attr: &str) -> Option<String> {
        self.attrs.get(attr).and_then(text)
    }
}

/// A scalar value as Terraform would turn it into a string; `None` for null and collections.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The parsed `.tf` files of one directory (a Terraform root module).
pub struct Module {
    pub variables: BTreeMap<String, Variable>,
    locals: Vec<(String, Expression)>,
    declarations: Vec<Declaration>,
    outputs: Vec<(String, Expression)>,
    provider: Option<Body>,
}

/// Parses one HCL file.
pub fn parse_file(path: &Path) -> Result<Body, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    hcl::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn label(block: &Block, index: usize) -> Result<String, String> {
    block
        .labels()
        .get(index)
        .map(|l| l.as_str().to_owned())
        .ok_or_else(|| format!("`{}` block without label {index}", block.identifier()))
}

fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

impl Module {
    /// Loads every `*.tf` file of `dir` (sorted by name, as Terraform reads them).
    pub fn load(dir: &Path) -> Result<Module, String> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "tf"))
            .collect();
        files.sort();
        let mut module = Module {
            variables: BTreeMap::new(),
            locals: Vec::new(),
            declarations: Vec::new(),
            outputs: Vec::new(),
            provider: None,
        };
        for file in &files {
            let body = parse_file(file)?;
            for block in body.blocks() {
                module
                    .add(block)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
        Ok(module)
    }

    fn add(&mut self, block: &Block) -> Result<(), String> {
        match block.identifier() {
            "terraform" => {}
            "variable" => {
                let name = label(block, 0)?;
                let var_type = match attribute(block.body(), "type") {
                    Some(Expression::Variable(v)) => match v.as_str() {
                        "string" => VarType::String,
                        "number" => VarType::Number,
                        "bool" => VarType::Bool,
                        _ => VarType::Other,
                    },
                    _ => VarType::Other,
                };
                let empty = Context::new();
                let default = attribute(block.body(), "default")
                    .map(|e| e.evaluate(&empty))
                    .transpose()
                    .map_err(|e| format!("default of {name}: {e}"))?;
                let description = attribute(block.body(), "description")
                    .and_then(|e| e.evaluate(&empty).ok())
                    .and_then(|v| text(&v));
                let mut validations = Vec::new();
                for validation in block
                    .body()
                    .blocks()
                    .filter(|b| b.identifier() == "validation")
                {
                    let condition = attribute(validation.body(), "condition")
                        .ok_or_else(|| format!("validation of {name} without condition"))?;
                    let message = attribute(validation.body(), "error_message")
                        .and_then(|e| e.evaluate(&empty).ok())
                        .and_then(|v| text(&v))
                        .unwrap_or_default();
                    validations.push((condition.clone(), message));
                }
                if self
                    .variables
                    .insert(
                        name.clone(),
                        Variable {
                            var_type,
                            default,
                            description,
                            validations,
                        },
                    )
                    .is_some()
                {
                    return Err(format!("variable {name} declared twice"));
                }
            }
            "locals" => {
                for attr in block.body().attributes() {
                    if self.locals.iter().any(|(n, _)| n == attr.key()) {
                        return Err(format!("local {} declared twice", attr.key()));
                    }
                    self.locals
                        .push((attr.key().to_owned(), attr.expr().clone()));
                }
            }
            "resource" | "data" => {
                let declaration = Declaration {
                    mode: if block.identifier() == "data" {
                        Mode::Data
                    } else {
                        Mode::Managed
                    },
                    kind: label(block, 0)?,
                    name: label(block, 1)?,
                    body: block.body().clone(),
                };
                if self
                    .declarations
                    .iter()
                    .any(|d| d.address() == declaration.address())
                {
                    return Err(format!("{} declared twice", declaration.address()));
                }
                self.declarations.push(declaration);
            }
            "output" => {
                let name = label(block, 0)?;
                let value = attribute(block.body(), "value")
                    .ok_or_else(|| format!("output {name} without value"))?;
                self.outputs.push((name, value.clone()));
            }
            "provider" => {
                if label(block, 0)? == "google" {
                    self.provider = Some(block.body().clone());
                }
            }
            other => return Err(format!("unexpected top-level block `{other}`")),
        }
        Ok(())
    }

    /// The `var` object: `inputs` over the defaults. Unknown names and missing required
    /// variables are errors, as in Terraform.
    fn var_object(&self, inputs: &BTreeMap<String, Value>) -> Result<Map<String, Value>, String> {
        if let Some(unknown) = inputs.keys().find(|k| !self.variables.contains_key(*k)) {
            return Err(format!("no variable named {unknown}"));
        }
        let mut vars = Map::new();
        for (name, variable) in &self.variables {
            let value = inputs
                .get(name)
                .or(variable.default.as_ref())
                .ok_or_else(|| format!("required variable {name} not set"))?;
            vars.insert(name.clone(), value.clone());
        }
        Ok(vars)
    }

    /// The error messages of the validations that `inputs` fail (empty: all pass).
    pub fn failed_validations(
        &self,
        inputs: &BTreeMap<String, Value>,
    ) -> Result<Vec<String>, String> {
        let vars = self.var_object(inputs)?;
        let mut roots = Map::new();
        roots.insert("var".to_owned(), Value::Object(vars));
        let ctx = context(&roots);
        let mut failed = Vec::new();
        for (name, variable) in &self.variables {
            for (condition, message) in &variable.validations {
                let condition = functions::resolve_can(condition, &ctx);
                match condition.evaluate(&ctx) {
                    Ok(Value::Bool(true)) => {}
                    Ok(Value::Bool(false)) => failed.push(message.clone()),
                    Ok(other) => return Err(format!("validation of {name} gave {other}")),
                    Err(e) => return Err(format!("validation of {name}: {e}")),
                }
            }
        }
        Ok(failed)
    }

    /// Evaluates the whole module for `inputs` (variable name to value) in a cloud where
    /// `cloud` holds.
    pub fn evaluate(
        &self,
        inputs: &BTreeMap<String, Value>,
        cloud: &provider::CloudFacts,
    ) -> Result<Plan, String> {
        let mut roots = Map::new();
        roots.insert("var".to_owned(), Value::Object(self.var_object(inputs)?));
        roots.insert("local".to_owned(), Value::Object(Map::new()));
        roots.insert("data".to_owned(), Value::Object(Map::new()));

        let settings = {
            let ctx = context(&roots);
            let body = self
                .provider
                .as_ref()
                .ok_or("no provider \"google\" block")?;
            let config = eval_body(body, &ctx)?;
            provider::Settings {
                project: config
                    .get("project")
                    .and_then(text)
                    .ok_or("provider has no project")?,
                region: config
                    .get("region")
                    .and_then(text)
                    .ok_or("provider has no region")?,
                cloud: cloud.clone(),
            }
        };

        // Terraform orders evaluation by the references between objects. Evaluating in
        // rounds until nothing more can be evaluated reaches the same result: an object whose
        // references are not evaluated yet fails, and is tried again in the next round.
        enum Node<'a> {
            Local(&'a str, &'a Expression),
            Declared(&'a Declaration),
        }
        let mut pending: Vec<Node> = self
            .locals
            .iter()
            .map(|(name, expr)| Node::Local(name, expr))
            .chain(self.declarations.iter().map(Node::Declared))
            .collect();
        let mut resources = Vec::new();
        loop {
            let mut progressed = false;
            let mut errors = Vec::new();
            let mut still = Vec::new();
            for node in pending {
                let ctx = context(&roots);
                match &node {
                    Node::Local(name, expr) => match expr.evaluate(&ctx) {
                        Ok(value) => {
                            object_mut(&mut roots, "local").insert((*name).to_owned(), value);
                            progressed = true;
                        }
                        Err(e) => {
                            errors.push(format!("local.{name}: {e}"));
                            still.push(node);
                        }
                    },
                    Node::Declared(declaration) => {
                        match evaluate_declaration(declaration, &ctx, &settings) {
                            Ok((instances, value)) => {
                                let parent = match declaration.mode {
                                    Mode::Managed => roots
                                        .entry(declaration.kind.clone())
                                        .or_insert_with(|| Value::Object(Map::new())),
                                    Mode::Data => object_mut(&mut roots, "data")
                                        .entry(declaration.kind.clone())
                                        .or_insert_with(|| Value::Object(Map::new())),
                                };
                                if let Value::Object(map) = parent {
                                    map.insert(declaration.name.clone(), value);
                                }
                                if declaration.mode == Mode::Managed {
                                    resources.extend(instances);
                                }
                                progressed = true;
                            }
                            Err(e) => {
                                errors.push(format!("{}: {e}", declaration.address()));
                                still.push(node);
                            }
                        }
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if !progressed {
                return Err(format!("cannot evaluate:\n  {}", errors.join("\n  ")));
            }
        }

        let ctx = context(&roots);
        let mut outputs = BTreeMap::new();
        for (name, expr) in &self.outputs {
            let value = expr
                .evaluate(&ctx)
                .map_err(|e| format!("output {name}: {e}"))?;
            outputs.insert(name.clone(), value);
        }
        Ok(Plan {
            resources,
            outputs,
            settings,
            roots,
        })
    }
}

fn object_mut<'a>(roots: &'a mut Map<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    match roots.get_mut(name) {
        Some(Value::Object(map)) => map,
        _ => unreachable!("{name} is always an object"),
    }
}

/// A context holding `roots` as variables and Terraform's functions.
fn context(roots: &Map<String, Value>) -> Context<'static> {
    let mut ctx = Context::new();
    functions::declare(&mut ctx);
    for (name, value) in roots {
        ctx.declare_var(name.as_str(), value.clone());
    }
    ctx
}

/// Evaluates every instance of a resource or data source; also returns the value other
/// expressions see it as (an object, an object keyed by `for_each` key, or a list).
fn evaluate_declaration(
    declaration: &Declaration,
    ctx: &Context,
    settings: &provider::Settings,
) -> Result<(Vec<Instance>, Value), String> {
    let make = |key: Option<String>, ctx: &Context| -> Result<Instance, String> {
        let config = eval_body(&declaration.body, ctx)?;
        let attrs = match declaration.mode {
            Mode::Managed => provider::computed(&declaration.kind, &config, settings)?,
            Mode::Data => provider::read(&declaration.kind, &config, settings)?,
        };
        Ok(Instance {
            kind: declaration.kind.clone(),
            name: declaration.name.clone(),
            key,
            config,
            attrs,
        })
    };
    if let Some(for_each) = attribute(&declaration.body, "for_each") {
        let collection = for_each
            .evaluate(ctx)
            .map_err(|e| format!("for_each: {e}"))?;
        let mut instances = Vec::new();
        let mut by_key = Map::new();
        for (key, value) in each_entries(&collection)? {
            let mut inner = ctx.clone();
            inner.declare_var("each", each_object(&key, value));
            let instance = make(Some(key.clone()), &inner)?;
            by_key.insert(key, Value::Object(instance.attrs.clone()));
            instances.push(instance);
        }
        return Ok((instances, Value::Object(by_key)));
    }
    if let Some(count) = attribute(&declaration.body, "count") {
        let count = count
            .evaluate(ctx)
            .map_err(|e| format!("count: {e}"))?
            .as_u64()
            .ok_or("count is not a whole number")?;
        let mut instances = Vec::new();
        let mut list = Vec::new();
        for index in 0..count {
            let mut inner = ctx.clone();
            let mut count_object = Map::new();
            count_object.insert("index".to_owned(), Value::from(index));
            inner.declare_var("count", Value::Object(count_object));
            let instance = make(Some(index.to_string()), &inner)?;
            list.push(Value::Object(instance.attrs.clone()));
            instances.push(instance);
        }
        return Ok((instances, Value::Array(list)));
    }
    let instance = make(None, ctx)?;
    let value = Value::Object(instance.attrs.clone());
    Ok((vec![instance], value))
}

/// (key, value) pairs of a `for_each` collection: a map's entries, or a set of strings whose
/// elements are both key and value.
pub fn each_entries(collection: &Value) -> Result<Vec<(String, Value)>, String> {
    match collection {
        Value::Object(map) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                text(item)
                    .map(|key| (key, item.clone()))
                    .ok_or_else(|| format!("for_each over a set of non-strings: {item}"))
            })
            .collect(),
        other => Err(format!("for_each over {other}")),
    }
}

/// The `each` (or `dynamic` iterator) object.
pub fn each_object(key: &str, value: Value) -> Value {
    let mut each = Map::new();
    each.insert("key".to_owned(), Value::from(key));
    each.insert("value".to_owned(), value);
    Value::Object(each)
}

/// The settings a block body declares: attributes, and nested blocks as arrays of objects
/// (`dynamic` blocks expanded), without Terraform's meta-arguments.
fn eval_body(body: &Body, ctx: &Context) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let push = |out: &mut Map<String, Value>, kind: &str, value: Value| {
        if let Value::Array(items) = out
            .entry(kind.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            items.push(value);
        }
    };
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                if META_ARGUMENTS.contains(&attr.key()) {
                    continue;
                }
                let value = attr
                    .expr()
                    .evaluate(ctx)
                    .map_err(|e| format!("{}: {e}", attr.key()))?;
                out.insert(attr.key().to_owned(), value);
            }
            Structure::Block(block) if META_BLOCKS.contains(&block.identifier()) => {}
            Structure::Block(block) if block.identifier() == "dynamic" => {
                let kind = label(block, 0)?;
                let iterator = match attribute(block.body(), "iterator") {
                    Some(Expression::Variable(v)) => v.as_str().to_owned(),
                    _ => kind.clone(),
                };
                let collection = attribute(block.body(), "for_each")
                    .ok_or_else(|| format!("dynamic {kind} without for_each"))?
                    .evaluate(ctx)
                    .map_err(|e| format!("dynamic {kind} for_each: {e}"))?;
                let content = block
                    .body()
                    .blocks()
                    .find(|b| b.identifier() == "content")
                    .ok_or_else(|| format!("dynamic {kind} without content"))?;
                for (key, value) in each_entries(&collection)? {
                    let mut inner = ctx.clone();
                    inner.declare_var(iterator.as_str(), each_object(&key, value));
                    let item = eval_body(content.body(), &inner)?;
                    push(&mut out, &kind, Value::Object(item));
                }
            }
            Structure::Block(block) => {
                let item = eval_body(block.body(), ctx)?;
                push(&mut out, block.identifier(), Value::Object(item));
            }
        }
    }
    Ok(out)
}

/// The module evaluated for one set of inputs.
pub struct Plan {
    pub resources: Vec<Instance>,
    pub outputs: BTreeMap<String, Value>,
    pub settings: provider::Settings,
    /// Everything expressions can refer to: var, local, data and each resource type.
    roots: Map<String, Value>,
}

impl Plan {
    pub fn of_kind(&self, kind: &str) -> Vec<&Instance> {
        self.resources.iter().filter(|r| r.kind == kind).collect()
    }

    /// The `import` blocks of `body` (e.g. imports.tf.example), evaluated against this plan:
    /// (target address, import id) for each, `for_each` expanded.
    pub fn imports(&self, body: &Body) -> Result<Vec<(String, String)>, String> {
        let ctx = context(&self.roots);
        // Locals of the imports file itself.
        let mut ctx = ctx;
        for block in body.blocks().filter(|b| b.identifier() == "locals") {
            let mut locals = match self.roots.get("local") {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            for attr in block.body().attributes() {
                let value = attr
                    .expr()
                    .evaluate(&ctx)
                    .map_err(|e| format!("local.{}: {e}", attr.key()))?;
                locals.insert(attr.key().to_owned(), value);
            }
            ctx.declare_var("local", Value::Object(locals));
        }

        let mut imports = Vec::new();
        for block in body.blocks() {
            match block.identifier() {
                "locals" => continue,
                "import" => {}
                other => return Err(format!("unexpected `{other}` block among the imports")),
            }
            let to = attribute(block.body(), "to").ok_or("import without `to`")?;
            let id = attribute(block.body(), "id").ok_or("import without `id`")?;
            let entries = match attribute(block.body(), "for_each") {
                Some(for_each) => {
                    let collection = for_each.evaluate(&ctx).map_err(|e| e.to_string())?;
                    each_entries(&collection)?
                        .into_iter()
                        .map(|(k, v)| Some(each_object(&k, v)))
                        .collect()
                }
                None => vec![None],
            };
            for each in entries {
                let mut inner = ctx.clone();
                if let Some(each) = each {
                    inner.declare_var("each", each);
                }
                let address = import_target(to, &inner)?;
                let id = id.evaluate(&inner).map_err(|e| format!("{address}: {e}"))?;
                imports.push((address, text(&id).ok_or("import id is not a string")?));
            }
        }
        Ok(imports)
    }
}

/// The address an import's `to` names, its index evaluated (e.g. `x.y[each.key]`).
fn import_target(to: &Expression, ctx: &Context) -> Result<String, String> {
    let Expression::Traversal(traversal) = to else {
        return Err(format!("import target is not a resource address: {to:?}"));
    };
    let Expression::Variable(kind) = &traversal.expr else {
        return Err("import target does not start with a resource type".into());
    };
    let mut address = kind.as_str().to_owned();
    for operator in &traversal.operators {
        match operator {
            TraversalOperator::GetAttr(name) => {
                address.push('.');
                address.push_str(name.as_str());
            }
            TraversalOperator::Index(index) => {
                let key = index.evaluate(ctx).map_err(|e| e.to_string())?;
                match key {
                    Value::Number(n) => address.push_str(&format!("[{n}]")),
                    other => address.push_str(&format!(
                        "[\"{}\"]",
                        text(&other).ok_or("import key is not a string")?
                    )),
                }
            }
            other => return Err(format!("unexpected {other:?} in an import target")),
        }
    }
    Ok(address)
}

/// Whether `expr` refers to `needle` (a variable or an attribute name) anywhere.
pub fn mentions(expr: &Expression, needle: &str) -> bool {
    match expr {
        Expression::Variable(v) => v.as_str() == needle,
        Expression::Traversal(t) => {
            mentions(&t.expr, needle)
                || t.operators.iter().any(|op| match op {
                    TraversalOperator::GetAttr(name) => name.as_str() == needle,
                    TraversalOperator::Index(index) => mentions(index, needle),
                    _ => false,
                })
        }
        Expression::FuncCall(call) => call.args.iter().any(|a| mentions(a, needle)),
        Expression::Parenthesis(inner) => mentions(inner, needle),
        Expression::Conditional(c) => {
            mentions(&c.cond_expr, needle)
                || mentions(&c.true_expr, needle)
                || mentions(&c.false_expr, needle)
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => mentions(&u.expr, needle),
            Operation::Binary(b) => mentions(&b.lhs_expr, needle) || mentions(&b.rhs_expr, needle),
        },
        Expression::ForExpr(f) => {
            mentions(&f.collection_expr, needle)
                || f.key_expr.as_ref().is_some_and(|k| mentions(k, needle))
                || mentions(&f.value_expr, needle)
                || f.cond_expr.as_ref().is_some_and(|c| mentions(c, needle))
        }
        Expression::Array(items) => items.iter().any(|i| mentions(i, needle)),
        Expression::Object(object) => object.values().any(|v| mentions(v, needle)),
        Expression::TemplateExpr(template) => {
            // Templates are parsed on demand; a mention inside `${...}` shows in the source.
            template.to_string().contains(needle)
        }
        _ => false,
    }
}

impl Module {
    /// The expressions of the outputs, for checks on what they refer to.
    pub fn output_expressions(&self) -> impl Iterator<Item = (&str, &Expression)> {
        self.outputs.iter().map(|(n, e)| (n.as_str(), e))
    }
}
