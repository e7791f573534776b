//! The appliance VM's own logic (issue 6): reading the OVF environment vCenter passes to
//! a deployed appliance and turning it into the agent's configuration on first boot, and
//! in all-in-one mode (issue 18) the collector's too.
//! The image build lives in `packaging/appliance/`.

pub mod all_in_one;
pub mod firstboot;
pub mod ovfenv;
#[cfg(test)]
mod tests;
