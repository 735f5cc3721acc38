//! GitHub Actions expressions, the subset a composite action meets: contexts (`inputs`, `steps`,
//! `github`, `runner`), string literals, `true`/`false`/`null`, `==`, `!=` (case-insensitive on
//! strings), `!`, `&&`, `||` (returning an operand, as GitHub does), parentheses, and the status
//! functions. Anything else fails the test, so action.yml cannot quietly rely on what the harness
//! does not model.

use std::collections::BTreeMap;

/// A value of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Bool(bool),
}

impl Value {
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Str(s) => !s.is_empty(),
            Value::Bool(b) => *b,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// What a step has left for later steps.
#[derive(Debug, Clone, Default)]
pub struct StepState {
    pub outputs: BTreeMap<String, String>,
    pub outcome: String,
}

/// What expressions can see.
pub struct Context<'a> {
    pub inputs: &'a BTreeMap<String, String>,
    pub steps: &'a BTreeMap<String, StepState>,
    pub github: &'a BTreeMap<&'static str, String>,
    pub runner: &'a BTreeMap<&'static str, String>,
    /// Whether an earlier step failed (for `success()` / `failure()`).
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Op(&'static str),
}

const OPERATORS: [&str; 7] = ["==", "!=", "&&", "||", "!", "(", ")"];

fn tokenize(expr: &str) -> Vec<Tok> {
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let (s, next) = string_literal(&chars, i + 1, expr);
            toks.push(Tok::Str(s));
            i = next;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_-.".contains(chars[i])) {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..].iter().take(2).collect();
            let op = OPERATORS
                .into_iter()
                .find(|o| rest.starts_with(o))
                .unwrap_or_else(|| panic!("unsupported character `{c}` in `{expr}`"));
            toks.push(Tok::Op(op));
            i += op.len();
        }
    }
    toks
}

/// A `'…'` literal starting after the quote at `start` (`''` is a quote); returns it and the
/// index after the closing quote.
fn string_literal(chars: &[char], start: usize, expr: &str) -> (String, usize) {
    let mut s = String::new();
    let mut i = start;
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (Some('\''), Some('\'')) => {
                s.push('\'');
                i += 2;
            }
            (Some('\''), _) => return (s, i + 1),
            (Some(c), _) => {
                s.push(*c);
                i += 1;
            }
            (None, _) => panic!("unterminated string in `{expr}`"),
        }
    }
}

struct Parser<'a, 'c> {
    toks: &'a [Tok],
    pos: usize,
    ctx: &'a Context<'c>,
}

impl Parser<'_, '_> {
    fn eat(&mut self, op: &'static str) -> bool {
        let hit = self.toks.get(self.pos) == Some(&Tok::Op(op));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn or(&mut self) -> Value {
        let mut v = self.and();
        while self.eat("||") {
            let r = self.and();
            if !v.truthy() {
                v = r;
            }
        }
        v
    }

    fn and(&mut self) -> Value {
        let mut v = self.cmp();
        while self.eat("&&") {
            let r = self.cmp();
            if v.truthy() {
                v = r;
            }
        }
        v
    }

    fn cmp(&mut self) -> Value {
        let l = self.unary();
        let equal = |r: Value| l.text().eq_ignore_ascii_case(&r.text());
        if self.eat("==") {
            Value::Bool(equal(self.unary()))
        } else if self.eat("!=") {
            Value::Bool(!equal(self.unary()))
        } else {
            l
        }
    }

    fn unary(&mut self) -> Value {
        if self.eat("!") {
            Value::Bool(!self.unary().truthy())
        } else {
            self.primary()
        }
    }

    fn primary(&mut self) -> Value {
        if self.eat("(") {
            let v = self.or();
            assert!(self.eat(")"), "missing `)`");
            return v;
        }
        let tok = self
            .toks
            .get(self.pos)
            .cloned()
            .expect("expression ends early");
        self.pos += 1;
        match tok {
            Tok::Str(s) => Value::Str(s),
            Tok::Ident(name) if self.eat("(") => {
                assert!(
                    self.eat(")"),
                    "functions with arguments are not used: {name}"
                );
                self.status_function(&name)
            }
            Tok::Ident(name) => self.lookup(&name),
            Tok::Op(op) => panic!("unexpected `{op}`"),
        }
    }

    fn status_function(&self, name: &str) -> Value {
        match name {
            "always" => Value::Bool(true),
            "success" => Value::Bool(!self.ctx.failed),
            "failure" => Value::Bool(self.ctx.failed),
            "cancelled" => Value::Bool(false),
            other => panic!("unsupported function {other}()"),
        }
    }

    fn lookup(&self, path: &str) -> Value {
        let parts: Vec<&str> = path.split('.').collect();
        let ctx = self.ctx;
        let found = match parts.as_slice() {
            ["true"] => return Value::Bool(true),
            ["false"] => return Value::Bool(false),
            ["null"] => return Value::Null,
            ["inputs", name] => ctx.inputs.get(*name).cloned(),
            ["steps", id, "outputs", name] => ctx
                .steps
                .get(*id)
                .and_then(|s| s.outputs.get(*name).cloned()),
            ["steps", id, "outcome" | "conclusion"] => {
                ctx.steps.get(*id).map(|s| s.outcome.clone())
            }
            ["github", key] => ctx.github.get(key).cloned(),
            ["runner", key] => ctx.runner.get(key).cloned(),
            _ => {
                panic!("context not modelled (and likely not available to composite steps): {path}")
            }
        };
        found.map(Value::Str).unwrap_or(Value::Null)
    }
}

/// Evaluates one expression (without the `${{ }}`).
pub fn evaluate(expr: &str, ctx: &Context) -> Value {
    let toks = tokenize(expr);
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        ctx,
    };
    let v = p.or();
    assert_eq!(p.pos, toks.len(), "trailing tokens in `{expr}`");
    v
}

/// Replaces every `${{ expr }}` in `text` by its value.
pub fn interpolate(text: &str, ctx: &Context) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unterminated ${{") + start;
        out.push_str(&evaluate(&rest[start + 3..end], ctx).text());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A step's `if:`; without a status function GitHub adds `success() &&`.
pub fn condition_holds(cond: Option<&str>, ctx: &Context) -> bool {
    let Some(cond) = cond else {
        return !ctx.failed;
    };
    let expr = cond
        .trim()
        .strip_prefix("${{")
        .and_then(|c| c.strip_suffix("}}"))
        .unwrap_or(cond);
    let has_status = ["always()", "success()", "failure()", "cancelled()"]
        .iter()
        .any(|f| expr.contains(f));
    let v = evaluate(expr, ctx).truthy();
    if has_status { v } else { !ctx.failed && v }
}
