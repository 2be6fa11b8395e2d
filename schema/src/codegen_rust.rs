//! The Rust client's per-namespace methods (`sdk-rust/src/generated/namespaces.rs`),
//! made from the procedure list: one struct per namespace, reached through an
//! accessor on `Client` and `Session` (`client.api_keys()`), and one method per
//! procedure (`auth.loginWithCode` → `login_with_code`), documented by its
//! summary. Procedures whose params are `Empty` (`NoParams` here) get a
//! method without arguments.
//!
//! Only what every [`Procedure`] has is read (its method name, summary and
//! params type) and its Rust path, from [`type_name`]; the output is already
//! formatted as rustfmt (`rustfmt.toml`: `max_width = 120`) leaves it.

use std::any::{TypeId, type_name};
use std::fmt::Write as _;

use crate::procedure::{Procedure, ProcedureVisitor, for_each_procedure};

/// Where the file goes, from the workspace root.
pub const NAMESPACES_PATH: &str = "sdk-rust/src/generated/namespaces.rs";

/// First line of the generated Rust file (the same note as the TypeScript ones).
pub const RUST_HEADER: &str = crate::codegen::TS_HEADER;

/// The params of a procedure that takes none: its method takes no argument
/// and sends `Default::default()`.
type NoParams = crate::Empty;

/// `max_width` of the workspace's `rustfmt.toml`: a signature longer than
/// this is written the way rustfmt breaks it.
const MAX_WIDTH: usize = 120;

const INDENT: &str = "    ";

/// One procedure's method.
struct Method {
    /// The method's name, `login_with_code`.
    name: String,
    /// The procedure's Rust path, `trellis_schema::auth::LoginWithCode`.
    path: &'static str,
    summary: &'static str,
    no_params: bool,
}

/// One namespace: `apiKeys` is reached by `api_keys()` and is the struct `ApiKeys`.
struct Namespace {
    wire: &'static str,
    accessor: String,
    name: String,
    /// The schema module holding every procedure of the namespace, if one does.
    module: Option<&'static str>,
    methods: Vec<Method>,
}

/// Namespaces in the order the list first names them, methods in list order.
#[derive(Default)]
struct Namespaces(Vec<Namespace>);

impl ProcedureVisitor for Namespaces {
    fn visit<P: Procedure>(&mut self) {
        let (wire, procedure) = P::METHOD
            .split_once('.')
            .unwrap_or_else(|| panic!("{}: a method name is `namespace.procedure`", P::METHOD));
        let path = type_name::<P>();
        assert!(is_path(path), "{}: its type {path} is not a plain path", P::METHOD);
        let module = path.rsplit_once("::").map(|(module, _)| module);
        let method = Method {
            name: ident(&snake_case(procedure)),
            path,
            summary: P::SUMMARY,
            no_params: TypeId::of::<P::Params>() == TypeId::of::<NoParams>(),
        };

        let index = match self.0.iter().position(|ns| ns.wire == wire) {
            Some(index) => index,
            None => {
                self.0.push(Namespace {
                    wire,
                    accessor: ident(&snake_case(wire)),
                    name: ident(&pascal_case(wire)),
                    module,
                    methods: Vec::new(),
                });
                self.0.len() - 1
            }
        };
        let ns = &mut self.0[index];
        assert!(
            ns.methods.iter().all(|m| m.name != method.name),
            "{}: another procedure of `{wire}` also has the method `{}`",
            P::METHOD,
            method.name
        );
        if ns.module != module {
            ns.module = None;
        }
        ns.methods.push(method);
    }
}

/// `sdk-rust/src/generated/namespaces.rs`.
pub fn namespaces() -> String {
    let mut namespaces = Namespaces::default();
    for_each_procedure(&mut namespaces);
    let namespaces = namespaces.0;
    {
        let mut accessors: Vec<&str> = namespaces.iter().map(|ns| ns.accessor.as_str()).collect();
        accessors.sort_unstable();
        accessors.dedup();
        assert_eq!(accessors.len(), namespaces.len(), "two namespaces have the same accessor");
    }

    let mut out = String::from(RUST_HEADER);
    out.push_str(concat!(
        "\n",
        "//! One struct per namespace and one method per procedure of `trellis_schema::all_procedures!`,\n",
        "//! with the accessors of [`Client`] and [`Session`]. `namespaces.rs` holds the hand-written rest.\n",
        "\n",
        "use trellis_schema::Procedure;\n",
        "\n",
        "use super::{Caller, Output};\n",
        "\n",
        "use crate::{Client, Session};\n",
    ));

    // Writing to a String cannot fail.
    for ns in &namespaces {
        let name = &ns.name;
        out.push('\n');
        match ns.module {
            Some(module) => {
                let _ = writeln!(out, "/// The `{}.*` procedures ([`{module}`]).", ns.wire);
            }
            None => {
                let _ = writeln!(out, "/// The `{}.*` procedures.", ns.wire);
            }
        }
        let _ = writeln!(out, "#[derive(Debug)]");
        let _ = writeln!(out, "pub struct {name}<'a, C>(&'a C);");
        out.push('\n');
        let _ = writeln!(out, "impl<C> Clone for {name}<'_, C> {{");
        let _ = writeln!(out, "{INDENT}fn clone(&self) -> Self {{");
        let _ = writeln!(out, "{INDENT}{INDENT}*self");
        let _ = writeln!(out, "{INDENT}}}");
        let _ = writeln!(out, "}}");
        out.push('\n');
        let _ = writeln!(out, "impl<C> Copy for {name}<'_, C> {{}}");
        out.push('\n');
        let _ = writeln!(out, "impl<C: Caller> {name}<'_, C> {{");
        for (i, m) in ns.methods.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            write_method(&mut out, m);
        }
        let _ = writeln!(out, "}}");
    }

    for (owner, note) in [("Client", ""), ("Session", ", called as this session")] {
        out.push('\n');
        let _ = writeln!(out, "impl {owner} {{");
        for (i, ns) in namespaces.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "{INDENT}/// The `{}.*` procedures{note}.", ns.wire);
            let _ = writeln!(out, "{INDENT}pub fn {}(&self) -> {}<'_, Self> {{", ns.accessor, ns.name);
            let _ = writeln!(out, "{INDENT}{INDENT}{}(self)", ns.name);
            let _ = writeln!(out, "{INDENT}}}");
        }
        let _ = writeln!(out, "}}");
    }

    out.push('\n');
    out.push_str("/// Every procedure with a method here: (namespace accessor, the procedure's method name).\n");
    out.push_str("#[cfg(test)]\n");
    let entries: Vec<String> = namespaces
        .iter()
        .flat_map(|ns| {
            ns.methods.iter().map(move |m| format!("(\"{}\", <{} as Procedure>::METHOD)", ns.accessor, m.path))
        })
        .collect();
    let head = "pub(crate) const COVERED: &[(&str, &str)] = &[";
    let one_line = format!("{head}{}];", entries.join(", "));
    if one_line.len() <= MAX_WIDTH {
        let _ = writeln!(out, "{one_line}");
    } else {
        let _ = writeln!(out, "{head}");
        for entry in &entries {
            let _ = writeln!(out, "{INDENT}{entry},");
        }
        let _ = writeln!(out, "];");
    }
    out
}

/// One method: the summary, a link to the procedure, and a call of it.
fn write_method(out: &mut String, m: &Method) {
    for line in m.summary.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "{INDENT}/// {line}");
    }
    if !m.summary.trim().is_empty() {
        let _ = writeln!(out, "{INDENT}///");
    }
    let _ = writeln!(out, "{INDENT}/// Calls [`{}`].", m.path);

    let params = if m.no_params { None } else { Some(format!("params: <{} as Procedure>::Params", m.path)) };
    let output = format!("Output<{}>", m.path);
    let mut args = vec!["self".to_owned()];
    args.extend(params);
    let one_line = format!("{INDENT}pub async fn {}({}) -> {output} {{", m.name, args.join(", "));
    if one_line.len() <= MAX_WIDTH {
        let _ = writeln!(out, "{one_line}");
    } else {
        // rustfmt's break: one parameter a line, the result type after the `)`.
        let _ = writeln!(out, "{INDENT}pub async fn {}(", m.name);
        for arg in &args {
            let _ = writeln!(out, "{INDENT}{INDENT}{arg},");
        }
        let _ = writeln!(out, "{INDENT}) -> {output} {{");
    }
    let arg = if m.no_params { "Default::default()" } else { "params" };
    let _ = writeln!(out, "{INDENT}{INDENT}self.0.call::<{}>({arg}).await", m.path);
    let _ = writeln!(out, "{INDENT}}}");
}

/// `loginWithCode` → `login_with_code`, `listAPIKeys` → `list_api_keys`.
fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `apiKeys` → `ApiKeys`.
fn pascal_case(camel: &str) -> String {
    let mut chars = camel.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// A name as a Rust identifier: a keyword becomes a raw identifier (`r#type`).
fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
        "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
        "move", "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    assert!(
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(char::is_numeric),
        "{name:?} cannot be a Rust name"
    );
    assert!(!matches!(name, "self" | "Self" | "super" | "crate"), "{name:?} cannot be a Rust name, even raw");
    if KEYWORDS.contains(&name) { format!("r#{name}") } else { name.to_owned() }
}

/// Whether a type name is a path of identifiers (no generics, references or
/// closures), which the generated code can name as it is.
fn is_path(name: &str) -> bool {
    name.split("::").count() > 1
        && name.split("::").all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rust_conventions() {
        assert_eq!(snake_case("loginWithCode"), "login_with_code");
        assert_eq!(snake_case("me"), "me");
        assert_eq!(snake_case("apiKeys"), "api_keys");
        assert_eq!(snake_case("listAPIKeys"), "list_api_keys");
        assert_eq!(snake_case("enrollTotp"), "enroll_totp");
        assert_eq!(pascal_case("apiKeys"), "ApiKeys");
        assert_eq!(pascal_case("auth"), "Auth");
        assert_eq!(ident("type"), "r#type");
        assert_eq!(ident("list"), "list");
        assert!(is_path("trellis_schema::auth::Login"));
        assert!(!is_path("Login"));
        assert!(!is_path("trellis_schema::list::Page<trellis_schema::audit::AuditEvent>"));
    }

    #[test]
    fn every_procedure_has_a_method_in_its_namespace() {
        let file = namespaces();
        for p in crate::procedure::procedures() {
            let (ns, procedure) = p.method.split_once('.').expect("namespace.procedure");
            let name = ident(&snake_case(procedure));
            let ty = pascal_case(ns);
            let block = file
                .split(&format!("impl<C: Caller> {ty}<'_, C> {{\n"))
                .nth(1)
                .and_then(|rest| rest.split("\n}\n").next())
                .unwrap_or_else(|| panic!("no methods for `{ns}`"));
            assert!(block.contains(&format!("    pub async fn {name}(")), "{}: no method {name}", p.method);
            assert!(file.contains(&format!("    pub fn {}(&self) -> {ty}<'_, Self> {{\n", snake_case(ns))));
        }
    }

    #[test]
    fn procedures_without_params_take_no_argument() {
        let file = namespaces();
        assert!(file.contains(
            "    pub async fn check(self) -> Output<trellis_schema::health::Check> {\n        \
             self.0.call::<trellis_schema::health::Check>(Default::default()).await\n"
        ));
        assert!(file.contains("    pub async fn me(self) -> Output<trellis_schema::auth::Me> {\n"));
        assert!(file.contains("    /// Calls [`trellis_schema::api_keys::UsageReport`].\n    pub async fn usage("));
    }

    #[test]
    fn output_is_as_rustfmt_leaves_it() {
        let file = namespaces();
        assert!(file.starts_with(RUST_HEADER));
        assert!(file.ends_with("];\n") && !file.contains("\n\n\n"));
        for line in file.lines() {
            assert!(
                line.len() <= MAX_WIDTH || line.trim_start().starts_with("//"),
                "wider than rustfmt allows: {line}"
            );
            assert_eq!(line, line.trim_end(), "trailing space");
        }
        // A signature too long for one line is broken as rustfmt breaks it.
        assert!(file.contains(
            "    pub async fn login(\n        self,\n        \
             params: <trellis_schema::auth::Login as Procedure>::Params,\n    \
             ) -> Output<trellis_schema::auth::Login> {\n"
        ));
    }
}
