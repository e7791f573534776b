//! Writes a real vcsim RetrievePropertiesEx answer (the inventory query) to the path in
//! `$VSCOUT_RECORD_FIXTURE`; without it the test only checks that recording works. Used
//! to refresh `agent/src/vsphere/testdata/retrieve_vcsim.xml`.

use std::sync::atomic::Ordering;

use vscout::vsphere::Client;
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{vcenter_config, Certs, SimOptions, Trust, Vcsim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_inventory_answer() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = Certs::generate(dir.path()).expect("certs");
    let sim = Vcsim::start(&SimOptions::default(), &certs).expect("vcsim");
    let proxy = Proxy::start(&sim.url, &certs, 0).await.expect("proxy");
    let path = std::env::var_os("VSCOUT_RECORD_FIXTURE")
        .map_or_else(|| dir.path().join("answer.xml"), Into::into);
    *proxy.state.record_to.lock().expect("lock") = Some(path.clone());
    let client = Client::connect(
        &vcenter_config("sim", &proxy.url, Trust::Pin(certs.thumbprint.clone()), 500).expect("cfg"),
    )
    .await
    .expect("connect");
    vscout::inventory::collect(&client)
        .await
        .expect("inventory");
    client.logout().await.expect("logout");
    assert!(proxy.state.retrieves.load(Ordering::SeqCst) >= 1);
    let text = std::fs::read_to_string(&path).expect("recorded");
    assert_eq!(text.matches(r#"<obj type="VirtualMachine">"#).count(), 4);
}
