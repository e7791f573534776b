//! The assessment: what each VM becomes in Azure and AWS, whether it is ready, and what it
//! costs there.
//!
//! - `catalog`: sizes, disk offers and list prices per cloud and region, dated and
//!   sourced; the shipped one or a file, validated at load.
//! - `need`: a VM's requirements: allocation × utilization × comfort, or as on premises
//!   (and the fallback for a VM without performance data). Pure.
//! - `guest`: what each cloud says of a guest OS family, by vSphere's guest id. Pure.
//! - `readiness`: Ready / Conditionally ready / Not ready / Unknown, with reasons. Pure.
//! - `sizing`: one VM's requirements against one cloud's catalog: the size, each disk's
//!   offer, the cost, and every refused size with its reason. Pure.

pub mod catalog;
pub mod cli;
pub mod estate;
pub mod guest;
pub mod need;
pub mod readiness;
pub mod report;
pub mod settings;
pub mod sizing;
pub mod utilization;
