//! A suite's cases as a GitHub Actions matrix (`{"include":[…]}`), for `qemu-test matrix`.

use crate::error::Error;
use crate::plan::Suite;

/// The matrix of the suite's cases named in `names` (all when empty) whose name contains one of
/// `filter` (all when empty): each entry's `case`, `arch` and `runner`.
pub fn matrix(
    suite: &Suite,
    names: &[String],
    filter: &[String],
) -> Result<serde_json::Value, Error> {
    let include: Vec<serde_json::Value> = suite
        .select(names)?
        .into_iter()
        .filter(|c| {
            let name = c.name.as_deref().unwrap_or_default();
            filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
        })
        .map(|c| {
            let merged = c.over(&suite.defaults);
            serde_json::json!({
                "case": merged.name,
                "arch": merged.arch.map(|a| a.name()),
                "runner": merged.runner.unwrap_or_else(|| "ubuntu-latest".into()),
            })
        })
        .collect();
    Ok(serde_json::json!({ "include": include }))
}
