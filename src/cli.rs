//! Command-line definition (clap) and dispatch to the pipeline.
