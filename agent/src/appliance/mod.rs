//! The appliance VM's own logic (issue 6): reading the OVF environment vCenter passes to
//! a deployed appliance and turning it into the agent's configuration on first boot.
//! The image build lives in `packaging/appliance/`.

pub mod firstboot;
pub mod ovfenv;
#[cfg(test)]
mod tests;
