//! One long-lived session with one vCenter: connect (service versions, service content,
//! login), re-login once on `NotAuthenticated`, keepalive, logout, and every call's
//! POST (a read sent again once when the connection broke under it). Container views and
//! paged retrievals are `retrieve.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use tracing::{debug, info, warn};

use super::envelope;
use super::error::VsphereError;
use super::objects::MoRef;
use super::transport::{self, Transport};
use super::xml::{self, Tree};
use crate::config::{Secret, TlsPolicy, VcenterConfig};

/// The SOAPAction used when `vimServiceVersions.xml` cannot be read, until the service
/// content tells the real API version. 6.0 has every call vscout makes.
const FALLBACK_VERSION: &str = "6.0";

pub use vscout_wire::inventory::About;

/// The managed objects vscout uses, from `RetrieveServiceContent`.
#[derive(Debug, Clone)]
pub struct ServiceContent {
    pub about: About,
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    pub perf_manager: Option<MoRef>,
    pub custom_fields_manager: Option<MoRef>,
    pub setting: Option<MoRef>,
    pub authorization_manager: Option<MoRef>,
}

/// A session with one vCenter.
#[derive(Debug)]
pub struct Client {
    pub(super) name: String,
    username: String,
    password: Secret,
    pub(super) page_size: u32,
    pub(super) transport: Transport,
    pub(super) soap_action: String,
    pub(super) content: ServiceContent,
    cookie: RwLock<Option<String>>,
    /// Bumped at every login, so concurrent callers that all saw the same expired session
    /// log in once, not once each.
    generation: AtomicU64,
    login_lock: tokio::sync::Mutex<()>,
}

impl Client {
    /// Connects and logs in.
    pub async fn connect(cfg: &VcenterConfig) -> Result<Self, VsphereError> {
        if cfg.tls == TlsPolicy::Insecure {
            warn!(vcenter = %cfg.name, url = %cfg.url, "tls.insecure = true: the vCenter certificate is NOT verified; pin its thumbprint instead");
        }
        let transport = Transport::new(cfg)?;
        let discovered = match transport.get_sibling("vimServiceVersions.xml").await {
            Ok(body) => parse_service_versions(&body),
            Err(
                e @ (VsphereError::Connect { .. }
                | VsphereError::TlsUntrusted { .. }
                | VsphereError::Timeout { .. }),
            ) => return Err(e),
            Err(e) => {
                debug!(vcenter = %cfg.name, error = %e, "no vimServiceVersions.xml; using the service content's API version");
                None
            }
        };
        let action = |v: &str| format!("urn:vim25/{v}");
        let first_action = action(discovered.as_deref().unwrap_or(FALLBACK_VERSION));
        let content = retrieve_service_content(&transport, &first_action).await?;
        let soap_action = match discovered {
            Some(_) => first_action,
            None if !content.about.api_version.is_empty() => action(&content.about.api_version),
            None => first_action,
        };
        let client = Self {
            name: cfg.name.clone(),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            page_size: cfg.page_size,
            transport,
            soap_action,
            content,
            cookie: RwLock::new(None),
            generation: AtomicU64::new(0),
            login_lock: tokio::sync::Mutex::new(()),
        };
        client.login().await?;
        info!(
            vcenter = %client.name,
            product = %client.content.about.full_name,
            api = %client.soap_action,
            "logged in to {} as {}",
            client.transport.url(),
            client.username
        );
        Ok(client)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        self.transport.url()
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn service_content(&self) -> &ServiceContent {
        &self.content
    }

    /// The SOAPAction in use, e.g. `urn:vim25/6.5`.
    pub fn soap_action(&self) -> &str {
        &self.soap_action
    }

    /// The session cookie's value (`vmware_soap_session=…`); tests use it to find and
    /// terminate this session.
    pub fn session_cookie(&self) -> Option<String> {
        self.cookie.read().ok().and_then(|c| c.clone())
    }

    /// Logs in (again), replacing the session cookie.
    pub async fn login(&self) -> Result<(), VsphereError> {
        let body = envelope::login(
            &self.content.session_manager,
            &self.username,
            self.password.expose(),
        );
        let resp = self
            .transport
            .post("Login", &self.soap_action, None, body)
            .await?;
        let cookie = transport::session_cookie(resp.headers());
        let bytes = self.transport.read_all(resp, "Login").await?;
        let result = collect_returnvals(&bytes, "Login");
        match result {
            Ok(_) => {}
            Err(VsphereError::Fault { fault_type, .. }) if fault_type == "InvalidLogin" => {
                return Err(VsphereError::InvalidLogin {
                    url: self.url().to_owned(),
                    user: self.username.clone(),
                })
            }
            Err(e) => return Err(e),
        }
        let cookie = cookie.ok_or_else(|| VsphereError::Protocol {
            method: "Login",
            reason: "no session cookie in the answer".into(),
        })?;
        if let Ok(mut slot) = self.cookie.write() {
            *slot = Some(cookie);
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Ends the session. A session that is already gone is not an error.
    pub async fn logout(&self) -> Result<(), VsphereError> {
        if self.session_cookie().is_none() {
            return Ok(());
        }
        let body = envelope::call("Logout", &self.content.session_manager, "");
        let result = self.invoke("Logout", body).await;
        if let Ok(mut slot) = self.cookie.write() {
            *slot = None;
        }
        match result {
            Ok(_) | Err(VsphereError::NotAuthenticated { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// vCenter's clock (`CurrentTime`), also the keepalive call: any call resets vCenter's
    /// idle timer, and this one is the cheapest.
    /// Which of `privileges` the logged-in user holds on `entity`
    /// (AuthorizationManager.HasUserPrivilegeOnEntities, vSphere 6.5 and later). `None`
    /// when the server has no AuthorizationManager.
    pub async fn user_privileges(
        &self,
        entity: &MoRef,
        privileges: &[&str],
    ) -> Result<Option<Vec<(String, bool)>>, VsphereError> {
        let Some(auth) = self.content.authorization_manager.clone() else {
            return Ok(None);
        };
        self.with_session(|| async {
            let body =
                envelope::has_user_privilege_on_entities(&auth, entity, &self.username, privileges);
            let vals = self.invoke("HasUserPrivilegeOnEntities", body).await?;
            let mut out = Vec::new();
            for v in &vals {
                for p in v.root().children_named("privAvailability") {
                    if let (Some(id), Some(granted)) = (p.text_at("privId"), p.bool_at("isGranted"))
                    {
                        out.push((id.to_owned(), granted));
                    }
                }
            }
            Ok(Some(out))
        })
        .await
    }

    pub async fn current_time(&self) -> Result<String, VsphereError> {
        self.with_session(|| async {
            let body = envelope::call("CurrentTime", &envelope::service_instance(), "");
            let vals = self.invoke("CurrentTime", body).await?;
            vals.into_iter()
                .next()
                .map(|n| n.root().text().trim().to_owned())
                .ok_or_else(|| VsphereError::Protocol {
                    method: "CurrentTime",
                    reason: "no returnval".into(),
                })
        })
        .await
    }

    /// Runs `op`; if it fails because the session is gone, logs in again once and reruns
    /// it from the start (so views it creates are created anew in the new session).
    pub async fn with_session<T, F, Fut>(&self, mut op: F) -> Result<T, VsphereError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, VsphereError>>,
    {
        let seen = self.generation.load(Ordering::SeqCst);
        match op().await {
            Err(e) if e.is_not_authenticated() => {
                warn!(vcenter = %self.name, "session expired or was terminated; logging in again");
                self.relogin(seen).await?;
                op().await
            }
            other => other,
        }
    }

    /// Logins so far (the first one and every re-login).
    pub fn logins(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    async fn relogin(&self, seen_generation: u64) -> Result<(), VsphereError> {
        let _guard = self.login_lock.lock().await;
        if self.generation.load(Ordering::SeqCst) != seen_generation {
            return Ok(()); // another task already logged in again
        }
        self.login().await
    }

    /// Sends a small call and returns its `returnval` elements.
    pub(super) async fn invoke(
        &self,
        method: &'static str,
        body: String,
    ) -> Result<Vec<Tree>, VsphereError> {
        let mut out = Vec::new();
        self.invoke_each(method, body, |n| {
            out.push(n);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Sends a call and hands each `returnval` element to `each` as soon as it is parsed,
    /// so a large answer (QueryPerf for 256 entities) is never held as one tree.
    pub(super) async fn invoke_each(
        &self,
        method: &'static str,
        body: String,
        each: impl FnMut(Tree) -> Result<(), VsphereError>,
    ) -> Result<(), VsphereError> {
        let bytes = if idempotent(method) {
            match self.post_read(method, body.clone()).await {
                Err(e) if connection_lost(&e) => {
                    warn!(vcenter = %self.name, method, error = %e, "connection lost; retrying the read once");
                    self.post_read(method, body).await?
                }
                other => other?,
            }
        } else {
            self.post_read(method, body).await?
        };
        xml::parse_response(&bytes[..], method, 3, each)
    }

    /// One POST and its whole answer.
    async fn post_read(
        &self,
        method: &'static str,
        body: String,
    ) -> Result<transport::Answer, VsphereError> {
        let cookie = self.session_cookie();
        let resp = self
            .transport
            .post(method, &self.soap_action, cookie.as_deref(), body)
            .await?;
        self.transport.read_all(resp, method).await
    }
}

fn collect_returnvals(body: &[u8], method: &'static str) -> Result<Vec<Tree>, VsphereError> {
    let mut out = Vec::new();
    xml::parse_response(body, method, 3, |n| {
        out.push(n);
        Ok(())
    })?;
    Ok(out)
}

async fn retrieve_service_content(
    transport: &Transport,
    action: &str,
) -> Result<ServiceContent, VsphereError> {
    let method = "RetrieveServiceContent";
    let body = envelope::call(method, &envelope::service_instance(), "");
    let resp = transport.post(method, action, None, body).await?;
    let bytes = transport.read_all(resp, method).await?;
    let vals = collect_returnvals(&bytes, method)?;
    let sc = vals
        .first()
        .ok_or_else(|| VsphereError::Protocol {
            method,
            reason: "no returnval".into(),
        })?
        .root();
    let req = |name: &str| {
        sc.child(name)
            .and_then(MoRef::from_node)
            .ok_or_else(|| VsphereError::Protocol {
                method,
                reason: format!("service content has no {name}"),
            })
    };
    let opt = |name: &str| sc.child(name).and_then(MoRef::from_node);
    let a = sc.child("about");
    let t = |k: &str| a.and_then(|a| a.text_at(k)).unwrap_or("").to_owned();
    Ok(ServiceContent {
        about: About {
            name: t("name"),
            full_name: t("fullName"),
            vendor: t("vendor"),
            version: t("version"),
            build: t("build"),
            os_type: t("osType"),
            product_line_id: t("productLineId"),
            api_type: t("apiType"),
            api_version: t("apiVersion"),
            instance_uuid: t("instanceUuid"),
        },
        root_folder: req("rootFolder")?,
        property_collector: req("propertyCollector")?,
        view_manager: req("viewManager")?,
        session_manager: req("sessionManager")?,
        perf_manager: opt("perfManager"),
        custom_fields_manager: opt("customFieldsManager"),
        setting: opt("setting"),
        authorization_manager: opt("authorizationManager"),
    })
}

/// Reads the `urn:vim25` version from `vimServiceVersions.xml`.
fn parse_service_versions(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut name = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => path.push(e.local_name().as_ref().to_vec()),
            Event::End(_) => {
                if path.last().is_some_and(|p| p == b"namespace") {
                    name.clear();
                }
                path.pop();
            }
            Event::Text(t) => {
                let text = t.decode().ok()?.trim().to_owned();
                let under = |a: &[u8], b: &[u8]| {
                    path.len() >= 2 && path[path.len() - 1] == a && path[path.len() - 2] == b
                };
                if under(b"name", b"namespace") {
                    name = text;
                } else if under(b"version", b"namespace") && name == "urn:vim25" && !text.is_empty()
                {
                    return Some(text);
                }
            }
            Event::Eof => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// Calls that only read, so sending one again after a lost connection cannot do anything
/// twice. Not Login, Logout, view creation or destruction, nor Continue/Cancel of a paged
/// retrieval (a continuation vCenter already served would skip a page).
pub(super) fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "RetrievePropertiesEx"
            | "RetrieveServiceContent"
            | "CurrentTime"
            | "QueryPerf"
            | "QueryPerfCounter"
            | "QueryOptions"
            | "HasUserPrivilegeOnEntities"
    )
}

/// A connection that broke under the request (reset, closed by a load balancer between
/// keep-alive requests, an answer cut short), as opposed to an answer or a timeout.
pub(super) fn connection_lost(e: &VsphereError) -> bool {
    matches!(
        e,
        VsphereError::Connect { .. } | VsphereError::Truncated { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_versions_are_read() {
        let doc = br#"<?xml version="1.0"?><namespaces version="1.0"><namespace><name>urn:vim25</name><version>8.0.2.0</version><priorVersions><version>6.0</version></priorVersions></namespace></namespaces>"#;
        assert_eq!(parse_service_versions(doc).as_deref(), Some("8.0.2.0"));
        assert_eq!(parse_service_versions(b"<html>nope</html>"), None);
    }
}
