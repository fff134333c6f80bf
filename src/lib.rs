//! `aggregate`: polls feeds, deduplicates and tags their entries, republishes merged feeds.
//!
//! The pipeline, one module a stage: fetch → parse (with normalize) → dedup → tag → store →
//! publish. `pipeline::refresh_feed` runs the stages for one feed; `schedule` decides when and
//! how many at once; `outputs` turns stored stories into files. See ARCHITECTURE.md.

pub mod cli;
pub mod config;
pub mod dedup;
pub mod fetch;
pub mod live;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod opml;
pub mod outputs;
pub mod parse;
pub mod pipeline;
pub mod publish;
pub mod schedule;
pub mod serve;
pub mod store;
pub mod tag;
