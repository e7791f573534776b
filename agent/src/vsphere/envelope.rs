//! Request bodies: the SOAP 1.1 envelope and the few vim25 calls vscout makes, written as
//! text. Element order follows the vim25 WSDL sequences exactly (real vCenter validates
//! it), and every value is XML-escaped.

use std::fmt::Write;

use quick_xml::escape::escape;

use super::MoRef;

/// Wraps a body element in a SOAP envelope.
pub(super) fn envelope(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 320);
    s.push_str(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#,
    );
    s.push_str(body);
    s.push_str("</soapenv:Body></soapenv:Envelope>");
    s
}

fn moref(tag: &str, r: &MoRef) -> String {
    format!(
        r#"<{tag} type="{}">{}</{tag}>"#,
        escape(r.kind.as_str()),
        escape(r.value.as_str())
    )
}

/// `<Method xmlns="urn:vim25"><_this …/>{rest}</Method>`.
pub(super) fn call(method: &str, this: &MoRef, rest: &str) -> String {
    envelope(&format!(
        r#"<{method} xmlns="urn:vim25">{}{rest}</{method}>"#,
        moref("_this", this)
    ))
}

/// AuthorizationManager.HasUserPrivilegeOnEntities: entities, userName, privId (WSDL order).
pub(super) fn has_user_privilege_on_entities(
    auth: &MoRef,
    entity: &MoRef,
    user: &str,
    privileges: &[&str],
) -> String {
    let mut rest = moref("entities", entity);
    let _ = write!(rest, "<userName>{}</userName>", escape(user));
    for p in privileges {
        let _ = write!(rest, "<privId>{}</privId>", escape(*p));
    }
    call("HasUserPrivilegeOnEntities", auth, &rest)
}

pub(super) fn service_instance() -> MoRef {
    MoRef::new("ServiceInstance", "ServiceInstance")
}

pub(super) fn login(session_manager: &MoRef, user: &str, password: &str) -> String {
    call(
        "Login",
        session_manager,
        &format!(
            "<userName>{}</userName><password>{}</password>",
            escape(user),
            escape(password)
        ),
    )
}

pub(super) fn create_container_view(
    view_manager: &MoRef,
    container: &MoRef,
    types: &[&str],
) -> String {
    let mut rest = moref("container", container);
    for t in types {
        let _ = write!(rest, "<type>{}</type>", escape(*t));
    }
    rest.push_str("<recursive>true</recursive>");
    call("CreateContainerView", view_manager, &rest)
}

/// Which properties to read of which type.
#[derive(Debug, Clone)]
pub struct PropertySpec<'a> {
    /// Managed object type, e.g. `VirtualMachine` (also matches subtypes).
    pub type_name: &'a str,
    /// Property paths, e.g. `config.hardware.numCPU`.
    pub paths: &'a [&'a str],
}

/// Where the objects come from.
#[derive(Debug, Clone, Copy)]
pub enum Objects<'a> {
    /// Every object in a ContainerView.
    View(&'a MoRef),
    /// Exactly these objects.
    List(&'a [MoRef]),
}

pub(super) fn retrieve_properties_ex(
    collector: &MoRef,
    props: &[PropertySpec<'_>],
    objects: Objects<'_>,
    max_objects: u32,
) -> String {
    let mut rest = String::from("<specSet>");
    for p in props {
        let _ = write!(
            rest,
            "<propSet><type>{}</type><all>false</all>",
            escape(p.type_name)
        );
        for path in p.paths {
            let _ = write!(rest, "<pathSet>{}</pathSet>", escape(*path));
        }
        rest.push_str("</propSet>");
    }
    match objects {
        Objects::View(view) => {
            rest.push_str("<objectSet>");
            rest.push_str(&moref("obj", view));
            rest.push_str(
                r#"<skip>true</skip><selectSet xsi:type="TraversalSpec"><name>traverseView</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>"#,
            );
        }
        Objects::List(list) => {
            for obj in list {
                rest.push_str("<objectSet>");
                rest.push_str(&moref("obj", obj));
                rest.push_str("<skip>false</skip></objectSet>");
            }
        }
    }
    let _ = write!(
        rest,
        "</specSet><options><maxObjects>{max_objects}</maxObjects></options>"
    );
    call("RetrievePropertiesEx", collector, &rest)
}

pub(super) fn continue_retrieve(collector: &MoRef, token: &str) -> String {
    call(
        "ContinueRetrievePropertiesEx",
        collector,
        &format!("<token>{}</token>", escape(token)),
    )
}

pub(super) fn cancel_retrieve(collector: &MoRef, token: &str) -> String {
    call(
        "CancelRetrievePropertiesEx",
        collector,
        &format!("<token>{}</token>", escape(token)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let body = login(
            &MoRef::new("SessionManager", "SessionManager"),
            "a<b",
            "p&\"w",
        );
        assert!(body.contains("<userName>a&lt;b</userName>"));
        assert!(body.contains("<password>p&amp;&quot;w</password>"));
    }

    #[test]
    fn filter_spec_lists_propset_before_objectset() {
        let view = MoRef::new("ContainerView", "session[1]v");
        let body = retrieve_properties_ex(
            &MoRef::new("PropertyCollector", "propertyCollector"),
            &[PropertySpec {
                type_name: "VirtualMachine",
                paths: &["name"],
            }],
            Objects::View(&view),
            500,
        );
        let p = body.find("<propSet>").expect("propSet");
        let o = body.find("<objectSet>").expect("objectSet");
        assert!(p < o);
        assert!(body.contains("<maxObjects>500</maxObjects>"));
    }
}
