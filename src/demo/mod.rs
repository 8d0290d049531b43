//! The demo sandbox and its sample app. PLACEHOLDER: being written by a helper.

use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SampleAppArgs {
    #[arg(long)]
    pub port: u16,
}

pub fn create(_dir: Option<&Path>) -> Result<PathBuf, String> {
    Err("the demo is being written".into())
}

pub fn sample_app(_args: SampleAppArgs) -> i32 {
    1
}
