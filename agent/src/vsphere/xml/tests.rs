//! Parser tests: vcsim's and vCenter's attribute spellings, faults, and hostile input.

use super::*;

const VCSIM_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>tok-1</token><objects><obj type="VirtualMachine">vm-42</obj><propSet><name>name</name><val XMLSchema-instance:type="xsd:string">web &amp; db &#x41;</val></propSet><propSet><name>runtime.host</name><val XMLSchema-instance:type="ManagedObjectReference" type="HostSystem">host-7</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

fn collect(body: &str, depth: usize) -> Result<Vec<Tree>, VsphereError> {
    let mut out = Vec::new();
    parse_response(body.as_bytes(), "Test", depth, |n| {
        out.push(n);
        Ok(())
    })?;
    Ok(out)
}

fn nth(n: Node<'_>, i: usize) -> Node<'_> {
    n.children().nth(i).expect("child")
}

#[test]
fn vcsim_prefix_and_entities() {
    let trees = collect(VCSIM_PAGE, 4).expect("parse");
    assert_eq!(trees.len(), 2);
    assert_eq!(trees[0].root().name(), "token");
    assert_eq!(trees[0].root().text(), "tok-1");
    let obj = trees[1].root();
    let name = nth(nth(obj, 1), 1);
    assert_eq!(name.xsi_type(), Some("string"));
    assert_eq!(name.text(), "web & db A");
    let host = nth(nth(obj, 2), 1);
    assert_eq!(host.xsi_type(), Some("ManagedObjectReference"));
    assert_eq!(host.moref_type(), Some("HostSystem"));
    assert_eq!(obj.at("propSet/name").map(Node::text), Some("name"));
    let names: Vec<&str> = obj.children().map(Node::name).collect();
    assert_eq!(names, ["obj", "propSet", "propSet"]);
}

#[test]
fn vcenter_xsi_prefix_is_the_same() {
    let body = VCSIM_PAGE
        .replace("xmlns:XMLSchema-instance", "xmlns:xsi")
        .replace("XMLSchema-instance:type", "xsi:type");
    assert_eq!(
        collect(&body, 4).expect("parse"),
        collect(VCSIM_PAGE, 4).expect("parse")
    );
}

#[test]
fn fault_becomes_typed_error() {
    let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Permission to perform this operation was denied.</faultstring><detail><NoPermissionFault xsi:type="NoPermission"><privilegeId>System.View</privilegeId></NoPermissionFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
    match collect(body, 3) {
        Err(VsphereError::Fault {
            fault_type,
            message,
            ..
        }) => {
            assert_eq!(fault_type, "NoPermission");
            assert!(message.contains("denied"));
        }
        other => panic!("expected fault, got {other:?}"),
    }
    let na = body
        .replace(
            r#"NoPermissionFault xsi:type="NoPermission""#,
            "NotAuthenticatedFault",
        )
        .replace("</NoPermissionFault>", "</NotAuthenticatedFault>");
    assert!(matches!(
        collect(&na, 3),
        Err(VsphereError::NotAuthenticated { .. })
    ));
    let unknown = body.replace("NoPermission\"", "BrandNewFault2031\"");
    assert!(
        matches!(collect(&unknown, 3), Err(VsphereError::Fault { fault_type, .. }) if fault_type == "BrandNewFault2031")
    );
}

#[test]
fn truncated_input_is_an_error_at_every_cut() {
    for cut in [10, 100, 300, VCSIM_PAGE.len() - 30, VCSIM_PAGE.len() - 1] {
        let err = collect(&VCSIM_PAGE[..cut], 4).expect_err("truncated");
        assert!(
            matches!(
                err,
                VsphereError::Truncated { .. } | VsphereError::Malformed { .. }
            ),
            "cut {cut}: {err:?}"
        );
    }
}

#[test]
fn malformed_and_non_soap_inputs_are_errors() {
    assert!(matches!(
        collect("<html><body>proxy error</body></html>", 3),
        Err(VsphereError::NotSoap { .. })
    ));
    assert!(matches!(collect("", 3), Err(VsphereError::NotSoap { .. })));
    let bad = VCSIM_PAGE.replace("</propSet>", "</propset>");
    assert!(collect(&bad, 4).is_err());
    let entity = VCSIM_PAGE.replace("&amp;", "&bogus;");
    assert!(matches!(
        collect(&entity, 4),
        Err(VsphereError::Malformed { .. })
    ));
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    let mut body = String::from(r#"<Envelope><Body><R><returnval>"#);
    body.push_str(&"<a>".repeat(100_000));
    let err = collect(&body, 3).expect_err("too deep");
    assert!(
        matches!(err, VsphereError::Malformed { ref reason, .. } if reason.contains("deeper")),
        "{err:?}"
    );
}

#[test]
fn unexpected_elements_are_ignored_not_fatal() {
    let body = VCSIM_PAGE.replace("<token>", "<futureThing>x</futureThing><token>");
    let trees = collect(&body, 4).expect("parse");
    assert_eq!(trees.len(), 3);
}

/// Issue 12: one endless text node grew the parser's buffer to the answer's byte cap
/// (535 MB at the default). A run longer than `MAX_RUN_BYTES` is refused as it streams.
#[test]
fn an_endless_text_node_is_refused_at_the_run_cap() {
    let head = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><R><returnval><val>"#;
    // Served in small pieces, as from the network.
    let body = head
        .bytes()
        .chain(std::iter::repeat_n(b'A', MAX_RUN_BYTES + 1024 * 1024))
        .collect::<Vec<u8>>();
    let input = std::io::BufReader::with_capacity(16 * 1024, &body[..]);
    let err = parse_response(input, "Test", 3, |_| Ok(())).expect_err("refused");
    assert!(err.to_string().contains("longer than"), "{err}");
    // Long but under the cap, split by markup: accepted.
    let text = "B".repeat(1 << 20);
    let ok = format!(
        "{head}{text}</val><val>{text}</val></returnval></R></soapenv:Body></soapenv:Envelope>"
    );
    let trees = collect(&ok, 3).expect("parse");
    let second = trees[0].root().children().nth(1).expect("second val");
    assert_eq!(second.text().len(), 1 << 20);
}

#[test]
fn a_huge_fault_message_is_cut_to_a_line() {
    let message = "x".repeat(5 << 20);
    let body = format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{message}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
    );
    let err = collect(&body, 3).expect_err("fault");
    let text = err.to_string();
    assert!(text.len() < 1200, "{} bytes", text.len());
    assert!(
        text.contains("5242880 bytes in all"),
        "{}",
        &text[text.len() - 60..]
    );
}

/// The tape keeps each element's text in one piece even when a child element interrupts
/// it, and links children in order across nesting and pruned elements.
#[test]
fn text_around_children_and_pruned_elements_keep_their_places() {
    let body = r#"<Envelope xmlns:xsi="x"><Body><R><returnval><a>x<b>y&amp;</b>z<c xsi:type="Skip"><d>no</d></c><e/>w</a></returnval></R></Body></Envelope>"#;
    let mut trees = Vec::new();
    parse_response_pruned(body.as_bytes(), "Test", 3, &["Skip"], |t| {
        trees.push(t);
        Ok(())
    })
    .expect("parse");
    let a = trees[0].root().child("a").expect("a");
    assert_eq!(a.text(), "xzw");
    let kids: Vec<(&str, &str)> = a.children().map(|c| (c.name(), c.text())).collect();
    assert_eq!(kids, [("b", "y&"), ("e", "")], "the pruned c is not there");
    assert!(a.at("c/d").is_none());
}

/// Attributes are read by our own tokenizer: quoting, spacing and prefixes as XML allows,
/// and a malformed attribute is an error, not a guess.
#[test]
fn attributes_in_every_legal_spelling_and_malformed_ones() {
    let page = |attrs: &str| {
        format!(
            r#"<Envelope><Body><R><returnval><val {attrs}>v</val></returnval></R></Body></Envelope>"#
        )
    };
    let types = |attrs: &str| {
        let trees = collect(&page(attrs), 3).expect("parse");
        let v = trees[0].root().child("val").expect("val");
        (
            v.xsi_type().map(str::to_owned),
            v.moref_type().map(str::to_owned),
        )
    };
    assert_eq!(
        types(r#"xsi:type = 'xsd:int'  type="Host&amp;System" other="type=x""#),
        (Some("int".into()), Some("Host&System".into()))
    );
    assert_eq!(types("\n\ttypes=\"no\""), (None, None));
    for bad in [r#"type"#, r#"type=unquoted"#, r#"type="open"#] {
        assert!(
            matches!(
                collect(&page(bad), 3),
                Err(VsphereError::Malformed { .. }) | Err(VsphereError::Truncated { .. })
            ),
            "{bad}"
        );
    }
}
