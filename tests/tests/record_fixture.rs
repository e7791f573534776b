//! Writes a real vcsim RetrievePropertiesEx answer (the inventory query) to the path in
//! `$VSCOUT_RECORD_FIXTURE`; without it the test only checks that recording works. Used
//! to refresh `agent/src/vsphere/testdata/retrieve_vcsim.xml`.

use std::sync::atomic::Ordering;

use vscout::vsphere::Client;
use vscout_e2e::proxy::Proxy;
use vscout_e2e::{vcenter_config, Estate, SimOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_inventory_answer() {
    let e = Estate::start(&SimOptions::default()).expect("vcsim");
    let proxy = Proxy::start(&e.sim.url, &e.certs, 0).await.expect("proxy");
    let path = std::env::var_os("VSCOUT_RECORD_FIXTURE")
        .map_or_else(|| e.dir.path().join("answer.xml"), Into::into);
    *proxy.state.record_to.lock().expect("lock") = Some(path.clone());
    let client = Client::connect(&vcenter_config("sim", &proxy.url, e.pin(), 500).expect("cfg"))
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
