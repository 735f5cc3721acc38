//! Turning inputs (flags, `INPUT_*` environment, suite files) into typed cases before anything runs.
