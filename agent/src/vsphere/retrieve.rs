//! Paged, streamed `RetrievePropertiesEx` through container views: views are destroyed on
//! every path, pages are parsed as they arrive and handed to an `ObjectSink` object by
//! object, a retrieval that fails part-way is cancelled.

use tracing::{debug, warn};

use std::future::Future;
use std::io::BufReader;

use super::client::{connection_lost, idempotent, Client};
use super::envelope::{self, Objects, PropertySpec};
use super::error::VsphereError;
use super::objects::{MoRef, ObjectContent};
use super::xml;

/// Receives the objects of a retrieval one at a time, as they are parsed.
pub trait ObjectSink {
    fn accept(&mut self, object: ObjectContent) -> Result<(), VsphereError>;
}

impl<F> ObjectSink for F
where
    F: FnMut(ObjectContent) -> Result<(), VsphereError>,
{
    fn accept(&mut self, object: ObjectContent) -> Result<(), VsphereError> {
        self(object)
    }
}

/// A sink that keeps every object: for small retrievals (a few managed objects).
#[derive(Debug, Default)]
pub struct CollectAll(pub Vec<ObjectContent>);

impl ObjectSink for CollectAll {
    fn accept(&mut self, object: ObjectContent) -> Result<(), VsphereError> {
        self.0.push(object);
        Ok(())
    }
}

/// Counts from one paged retrieval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetrieveStats {
    pub objects: u64,
    pub pages: u64,
}

impl Client {
    /// Creates a recursive ContainerView of `types` under the root folder, runs `f` with it,
    /// and destroys it whatever `f` returned.
    pub async fn with_container_view<T, F, Fut>(
        &self,
        types: &[&str],
        f: F,
    ) -> Result<T, VsphereError>
    where
        F: FnOnce(MoRef) -> Fut,
        Fut: Future<Output = Result<T, VsphereError>>,
    {
        let body = envelope::create_container_view(
            &self.content.view_manager,
            &self.content.root_folder,
            types,
        );
        let vals = self.invoke("CreateContainerView", body).await?;
        let view = vals
            .first()
            .and_then(|v| MoRef::from_node(v.root()))
            .ok_or_else(|| VsphereError::Protocol {
                method: "CreateContainerView",
                reason: "no view reference in the answer".into(),
            })?;
        let result = f(view.clone()).await;
        let destroy = envelope::call("DestroyView", &view, "");
        match self.invoke("DestroyView", destroy).await {
            Ok(_) => {}
            // The session (and with it the view) is gone already.
            Err(VsphereError::NotAuthenticated { .. }) => {}
            Err(e) => {
                warn!(vcenter = %self.name, view = %view, error = %e, "could not destroy container view")
            }
        }
        result
    }

    /// Retrieves properties page by page (`maxObjects` = page size, following
    /// continuation tokens), streaming each page through the parser on a blocking thread.
    /// `sink` sees every object once; it is handed back with the counts.
    pub async fn retrieve<S>(
        &self,
        props: &[PropertySpec<'_>],
        objects: Objects<'_>,
        sink: S,
    ) -> Result<(S, RetrieveStats), VsphereError>
    where
        S: ObjectSink + Send + 'static,
    {
        self.retrieve_pruned(props, objects, &[], sink).await
    }

    /// As [`Client::retrieve`], skipping values whose `xsi:type` is in `prune` while
    /// parsing (see [`xml::parse_response_pruned`]).
    pub async fn retrieve_pruned<S>(
        &self,
        props: &[PropertySpec<'_>],
        objects: Objects<'_>,
        prune: &'static [&'static str],
        mut sink: S,
    ) -> Result<(S, RetrieveStats), VsphereError>
    where
        S: ObjectSink + Send + 'static,
    {
        let pc = &self.content.property_collector;
        let mut body = envelope::retrieve_properties_ex(pc, props, objects, self.page_size);
        let mut method = "RetrievePropertiesEx";
        let mut stats = RetrieveStats::default();
        loop {
            let page = self.stream_page(method, body, prune, sink).await;
            let (returned, token, count) = match page {
                Ok(p) => p,
                Err((e, token)) => {
                    if let Some(t) = token {
                        self.cancel_retrieve(&t).await;
                    }
                    return Err(e);
                }
            };
            sink = returned;
            stats.pages += 1;
            stats.objects += count;
            match token {
                Some(t) => {
                    body = envelope::continue_retrieve(pc, &t);
                    method = "ContinueRetrievePropertiesEx";
                }
                None => return Ok((sink, stats)),
            }
        }
    }

    async fn cancel_retrieve(&self, token: &str) {
        let body = envelope::cancel_retrieve(&self.content.property_collector, token);
        if let Err(e) = self.invoke("CancelRetrievePropertiesEx", body).await {
            debug!(vcenter = %self.name, error = %e, "could not cancel a paged retrieval");
        }
    }

    #[allow(clippy::type_complexity)]
    async fn stream_page<S>(
        &self,
        method: &'static str,
        body: String,
        prune: &'static [&'static str],
        sink: S,
    ) -> Result<(S, Option<String>, u64), (VsphereError, Option<String>)>
    where
        S: ObjectSink + Send + 'static,
    {
        let cookie = self.session_cookie();
        let mut sent = self
            .transport
            .post(method, &self.soap_action, cookie.as_deref(), body.clone())
            .await;
        // Only before any object reached the sink, and only for the first page: a
        // continuation that vCenter processed before the connection broke has moved on.
        if let Err(e) = sent.as_ref().map(|_| ()) {
            if idempotent(method) && connection_lost(e) {
                warn!(vcenter = %self.name, method, error = %e, "connection lost; retrying the read once");
                sent = self
                    .transport
                    .post(method, &self.soap_action, cookie.as_deref(), body)
                    .await;
            }
        }
        let resp = sent.map_err(|e| (e, None))?;
        let reader = self.transport.stream(resp);
        let joined = tokio::task::spawn_blocking(move || {
            let mut sink = sink;
            let mut token = None;
            let mut count = 0u64;
            let input = BufReader::with_capacity(64 * 1024, reader);
            let result = parse_stream(input, method, prune, &mut token, &mut count, &mut sink);
            (sink, token, count, result)
        })
        .await;
        let (sink, token, count, result) = joined.map_err(|e| {
            (
                VsphereError::Protocol {
                    method,
                    reason: format!("parser task failed: {e}"),
                },
                None,
            )
        })?;
        match result {
            Ok(()) => Ok((sink, token, count)),
            Err(e) => Err((e, token)),
        }
    }
}

/// Parses one page: tokens and objects at depth 4 (Envelope/Body/Response/returnval/…).
fn parse_stream<R: std::io::BufRead, S>(
    input: R,
    method: &'static str,
    prune: &[&str],
    token: &mut Option<String>,
    count: &mut u64,
    sink: &mut S,
) -> Result<(), VsphereError>
where
    S: ObjectSink,
{
    xml::parse_response_pruned(input, method, 4, prune, |tree| {
        match tree.root().name() {
            "token" => *token = Some(tree.root().text().trim().to_owned()),
            "objects" => {
                let oc = ObjectContent::from_tree(tree)
                    .map_err(|reason| VsphereError::Protocol { method, reason })?;
                // vcsim answers a call without a valid session with HTTP 200 and a
                // NotAuthenticated missingSet instead of a fault.
                if oc.not_authenticated() {
                    return Err(VsphereError::NotAuthenticated { method });
                }
                *count += 1;
                sink.accept(oc)?;
            }
            _ => {}
        }
        Ok(())
    })
}

/// In-memory variant of the page parser (benchmarks, fuzzing, tests).
pub(super) fn parse_page(
    body: &[u8],
    method: &'static str,
    prune: &[&str],
    mut sink: impl ObjectSink,
) -> Result<Option<String>, VsphereError> {
    let mut token = None;
    let mut count = 0;
    parse_stream(body, method, prune, &mut token, &mut count, &mut sink)?;
    Ok(token)
}
