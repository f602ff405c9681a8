//! (in progress)
use super::{Policy, PolicyErrors, PolicyError};
pub fn compile(_text: &str) -> Result<Policy, PolicyErrors> {
    Err(PolicyErrors(vec![PolicyError { rule: None, pointer: String::new(), line: None, message: "compiler not built yet".into(), help: None }]))
}
