//! The Terraform built-in functions `deploy/terraform` uses, re-implemented for evaluation.
//!
//! Only these exist: a configuration calling any other function fails to evaluate, so adding
//! one to the `.tf` files means adding it here, with Terraform's semantics.

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::expr::{Expression, Operation};
use hcl::{Map, Number, Value};

pub fn declare(ctx: &mut Context) {
    let any = || ParamType::Any;
    let string = || ParamType::String;
    let number = || ParamType::Number;
    ctx.declare_func("toset", FuncDef::builder().param(any()).build(toset));
    ctx.declare_func(
        "merge",
        FuncDef::builder().variadic_param(any()).build(merge),
    );
    ctx.declare_func("upper", FuncDef::builder().param(string()).build(upper));
    ctx.declare_func(
        "join",
        FuncDef::builder().param(string()).param(any()).build(join),
    );
    ctx.declare_func("tostring", FuncDef::builder().param(any()).build(tostring));
    ctx.declare_func(
        "contains",
        FuncDef::builder().param(any()).param(any()).build(contains),
    );
    ctx.declare_func(
        "endswith",
        FuncDef::builder()
            .param(string())
            .param(string())
            .build(endswith),
    );
    ctx.declare_func("floor", FuncDef::builder().param(number()).build(floor));
    ctx.declare_func(
        "concat",
        FuncDef::builder().variadic_param(any()).build(concat),
    );
    ctx.declare_func(
        "regex",
        FuncDef::builder()
            .param(string())
            .param(string())
            .build(regex),
    );
    ctx.declare_func(
        "cidrhost",
        FuncDef::builder()
            .param(string())
            .param(number())
            .build(cidrhost),
    );
}

/// A set as Terraform iterates it: distinct elements, sorted (for strings, lexically).
fn toset(args: FuncArgs) -> Result<Value, String> {
    let Value::Array(items) = &args[0] else {
        return Err(format!("toset of {}", args[0]));
    };
    let mut texts: Vec<String> = items
        .iter()
        .map(|v| super::text(v).ok_or_else(|| format!("toset element {v}")))
        .collect::<Result<_, _>>()?;
    texts.sort();
    texts.dedup();
    Ok(Value::Array(texts.into_iter().map(Value::from).collect()))
}

/// Later maps win; null arguments are skipped.
fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut merged = Map::new();
    for arg in args.iter() {
        match arg {
            Value::Null => {}
            Value::Object(map) => {
                for (k, v) in map {
                    merged.insert(k.clone(), v.clone());
                }
            }
            other => return Err(format!("merge of a non-map: {other}")),
        }
    }
    Ok(Value::Object(merged))
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(
        args[0].as_str().unwrap_or_default().to_uppercase(),
    ))
}

/// `join(separator, list)`: the list's strings with the separator between them.
fn join(args: FuncArgs) -> Result<Value, String> {
    let separator = args[0].as_str().unwrap_or_default();
    let Value::Array(items) = &args[1] else {
        return Err(format!("join of a non-list: {}", args[1]));
    };
    let texts: Vec<String> = items
        .iter()
        .map(|v| super::text(v).ok_or_else(|| format!("join element {v}")))
        .collect::<Result<_, _>>()?;
    Ok(Value::from(texts.join(separator)))
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        other => super::text(other)
            .map(Value::from)
            .ok_or_else(|| format!("tostring of {other}")),
    }
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let Value::Array(items) = &args[0] else {
        return Err(format!("contains on a non-list: {}", args[0]));
    };
    Ok(Value::Bool(items.contains(&args[1])))
}

fn endswith(args: FuncArgs) -> Result<Value, String> {
    let (s, suffix) = (args[0].as_str(), args[1].as_str());
    Ok(Value::Bool(
        s.zip(suffix).is_some_and(|(s, suffix)| s.ends_with(suffix)),
    ))
}

fn floor(args: FuncArgs) -> Result<Value, String> {
    let n = args[0].as_number().expect("checked by the parameter type");
    if n.as_i64().is_some() || n.as_u64().is_some() {
        return Ok(Value::Number(*n));
    }
    let f = n.as_f64().ok_or("not a number")?.floor();
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "not finite".into())
}

/// `concat(list, ...)`: the elements of every list, in order.
fn concat(args: FuncArgs) -> Result<Value, String> {
    let mut all = Vec::new();
    for arg in args.iter() {
        let Value::Array(items) = arg else {
            return Err(format!("concat of a non-list: {arg}"));
        };
        all.extend(items.iter().cloned());
    }
    Ok(Value::Array(all))
}

/// `regex(pattern, string)`: the first match (with unnamed capture groups, the list of the
/// groups, unmatched ones null), an error when there is none, which is what
/// `can(regex(...))` checks. The `regex` crate implements Terraform's RE2 syntax; named groups
/// (Terraform returns a map) are not needed here and refused.
fn regex(args: FuncArgs) -> Result<Value, String> {
    let pattern = args[0].as_str().unwrap_or_default();
    let text = args[1].as_str().unwrap_or_default();
    let re = regex::Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?}: {e}"))?;
    if re.capture_names().flatten().next().is_some() {
        return Err(format!(
            "regex {pattern:?}: named groups are not implemented here"
        ));
    }
    let captures = re
        .captures(text)
        .ok_or_else(|| format!("pattern {pattern:?} does not match {text:?}"))?;
    if captures.len() == 1 {
        return Ok(Value::from(&captures[0]));
    }
    Ok(Value::Array(
        captures
            .iter()
            .skip(1)
            .map(|group| group.map_or(Value::Null, |m| Value::from(m.as_str())))
            .collect(),
    ))
}

/// cidrhost for IPv4 only: the address of host `n` in the prefix (an error for anything that
/// is not an a.b.c.d/len prefix, which is what `can(cidrhost(...))` checks).
fn cidrhost(args: FuncArgs) -> Result<Value, String> {
    let prefix = args[0].as_str().unwrap_or_default();
    let (address, length) = prefix
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR address {prefix:?}"))?;
    let address: std::net::Ipv4Addr = address
        .parse()
        .map_err(|_| format!("invalid CIDR address {prefix:?}"))?;
    let length: u32 = length
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("invalid prefix length in {prefix:?}"))?;
    let host = args[1]
        .as_number()
        .and_then(Number::as_u64)
        .ok_or("host number must be a whole number")?;
    let host_bits = 32 - length;
    if host_bits < 64 && host >= 1u64 << host_bits {
        return Err(format!("prefix {prefix} has no host {host}"));
    }
    let mask = if length == 0 {
        0
    } else {
        u32::MAX << host_bits
    };
    let base = u32::from(address) & mask;
    Ok(Value::from(
        std::net::Ipv4Addr::from(base + host as u32).to_string(),
    ))
}

/// `can(x)` is true when `x` evaluates without error. hcl-rs evaluates arguments before
/// calling a function, so an error would escape; instead each `can(...)` call is replaced by
/// its result before the expression is evaluated.
pub fn resolve_can(expr: &Expression, ctx: &Context) -> Expression {
    match expr {
        Expression::FuncCall(call) if call.name.name.as_str() == "can" => {
            Expression::Bool(call.args.first().is_some_and(|a| a.evaluate(ctx).is_ok()))
        }
        Expression::Parenthesis(inner) => {
            Expression::Parenthesis(Box::new(resolve_can(inner, ctx)))
        }
        Expression::Operation(op) => {
            let resolved = match op.as_ref() {
                Operation::Unary(u) => {
                    let mut u = u.clone();
                    u.expr = resolve_can(&u.expr, ctx);
                    Operation::Unary(u)
                }
                Operation::Binary(b) => {
                    let mut b = b.clone();
                    b.lhs_expr = resolve_can(&b.lhs_expr, ctx);
                    b.rhs_expr = resolve_can(&b.rhs_expr, ctx);
                    Operation::Binary(b)
                }
            };
            Expression::Operation(Box::new(resolved))
        }
        other => other.clone(),
    }
}
