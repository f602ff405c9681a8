//! `scimguard validate POLICY`.
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The policy file (JSON).
    pub policy: PathBuf,
    /// Print errors as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &ValidateArgs) -> u8 {
    let text = match crate::read_input(&a.policy) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("scimguard: {e}");
            return 2;
        }
    };
    match scimguard::Engine::from_json(&text) {
        Ok(engine) => {
            println!(
                "{}: valid ({} rules)",
                a.policy.display(),
                engine.policy().rules.len()
            );
            0
        }
        Err(errors) if a.json => {
            println!("{}", serde_json::to_string(&errors).unwrap_or_default());
            1
        }
        Err(errors) => {
            eprint!("{}: {errors}", a.policy.display());
            1
        }
    }
}
