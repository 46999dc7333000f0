//! Client ID Metadata Documents the fetch refuses, each in its own test: inside addresses
//! (checked on the resolved address, IPv4-mapped forms included), a name that rebinds, a
//! redirect, an oversize or slow document, an untrusted certificate, and documents that are not
//! their client's. Each refusal is an error page at the authorization endpoint, never a
//! redirect, and reaches no server it should not.
//!
//! No test here sends a packet anywhere but to 127.0.0.1: the inside addresses the resolver
//! answers are refused before any connection.
#![cfg(feature = "client-id-metadata-documents")]

use std::time::{Duration, Instant};

use tower_agent_auth::oauth::document::{AddressKind, DocumentError};

use crate::document_server::{Documents, HOST, Reply};

/// `docs.test` resolves to each of `addresses` in turn (one per fetch of a new document): each
/// is refused as `kind`, before any connection, with an error page that does not name it.
async fn refused_as(allow_loopback: bool, kind: AddressKind, addresses: &[&str]) {
    let documents = Documents::with(allow_loopback, |d| d).await;
    let cookie = documents.oauth.sign_in("alice").await;
    for (n, address) in addresses.iter().enumerate() {
        documents.script.answer(HOST, &[address]);
        let url = documents.serve(&format!("/client-{n}.json"), None);
        match documents.read(&url).await {
            Err(DocumentError::Forbidden {
                address: refused,
                kind: found,
                ..
            }) => {
                assert_eq!(refused, address.parse::<std::net::IpAddr>().unwrap());
                assert_eq!(found, kind, "{address}");
            }
            other => panic!("{address}: {other:?}"),
        }
        let page = documents.authorize_page(&cookie, &url).await;
        Documents::assert_refused_page(&page, "invalid_client");
        assert!(!page.body.contains(address), "the page names {address}");
    }
    assert_eq!(
        documents.server.all_hits(),
        0,
        "a refused address was reached"
    );
}

#[tokio::test]
async fn a_loopback_address_is_refused() {
    refused_as(
        false,
        AddressKind::Loopback,
        &["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"],
    )
    .await;
    // An address in the URL itself is checked the same.
    let documents = Documents::with(false, |d| d).await;
    let url = documents.server.url("127.0.0.1", "/client.json");
    documents
        .server
        .set("/client.json", Reply::Json("{}".into(), None));
    assert!(matches!(
        documents.read(&url).await,
        Err(DocumentError::Forbidden {
            kind: AddressKind::Loopback,
            ..
        })
    ));
    assert_eq!(documents.server.all_hits(), 0);
    assert_eq!(
        documents.script.calls(),
        0,
        "an address needs no resolution"
    );
}

/// Tests may allow loopback; nothing else inside is allowed with it.
#[tokio::test]
async fn a_private_address_is_refused() {
    refused_as(
        true,
        AddressKind::Private,
        &[
            "10.0.0.1",
            "10.255.255.254",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.0.1",
            "::ffff:10.0.0.1",
            "::ffff:172.20.0.1",
            "::ffff:192.168.1.1",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_link_local_address_is_refused() {
    refused_as(
        true,
        AddressKind::LinkLocal,
        &[
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
        ],
    )
    .await;
}

#[tokio::test]
async fn an_ipv6_unique_local_address_is_refused() {
    refused_as(
        true,
        AddressKind::UniqueLocal,
        &["fc00::1", "fd12:3456:789a::1", "fdff::1"],
    )
    .await;
}

/// A name whose answers mix an allowed address with an inside one is refused whole: the fetch
/// does not pick the allowed one and hope.
#[tokio::test]
async fn a_name_with_one_inside_address_among_others_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1", "10.0.0.1"]);
    let url = documents.serve("/client.json", None);
    assert!(matches!(
        documents.read(&url).await,
        Err(DocumentError::Forbidden {
            kind: AddressKind::Private,
            ..
        })
    ));
    assert_eq!(documents.server.all_hits(), 0);
}

/// DNS rebinding: the name first resolves to an allowed address (127.0.0.1 stands for a public
/// one: the tests allow loopback, and reach nothing outside), then to a private one. The fetch
/// resolves once, checks, and connects to the address it checked: the first document arrives
/// from the server it was checked for, with one resolution. The next fetch resolves anew, gets
/// the private answer, and is refused without connecting.
#[tokio::test]
async fn a_name_that_resolves_public_then_private_is_refused() {
    let documents = Documents::new().await;
    documents
        .script
        .answer(HOST, &["127.0.0.1"])
        .answer(HOST, &["10.0.0.1"]);
    let first = documents.serve("/first.json", None);
    let client = documents.read(&first).await.unwrap();
    assert_eq!(client.id, first);
    assert_eq!(documents.script.calls(), 1, "one resolution per fetch");
    assert_eq!(documents.server.hits("/first.json"), 1);

    let second = documents.serve("/second.json", None);
    assert!(matches!(
        documents.read(&second).await,
        Err(DocumentError::Forbidden {
            kind: AddressKind::Private,
            ..
        })
    ));
    assert_eq!(documents.script.calls(), 2);
    assert_eq!(documents.server.hits("/second.json"), 0);
    let cookie = documents.oauth.sign_in("alice").await;
    let page = documents.authorize_page(&cookie, &second).await;
    Documents::assert_refused_page(&page, "invalid_client");
}

#[tokio::test]
async fn a_redirect_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let real = documents.serve("/real.json", None);
    let cookie = documents.oauth.sign_in("alice").await;
    for status in [301, 302, 303, 307, 308] {
        let path = format!("/moved-{status}.json");
        documents
            .server
            .set(&path, Reply::Redirect(status, real.clone()));
        let url = documents.url(&path);
        assert_eq!(
            documents.read(&url).await.unwrap_err(),
            DocumentError::Redirect(status)
        );
        let page = documents.authorize_page(&cookie, &url).await;
        Documents::assert_refused_page(&page, "invalid_client");
        assert!(page.body.contains("redirect"), "{}", page.body);
    }
    assert_eq!(
        documents.server.hits("/real.json"),
        0,
        "a redirect was followed"
    );
}

#[tokio::test]
async fn an_oversize_document_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let padded = |path: &str, size: usize| {
        let mut document = documents.document(path);
        document["padding"] = serde_json::json!("");
        let room = size - document.to_string().len();
        document["padding"] = serde_json::json!("x".repeat(room));
        let text = document.to_string();
        assert_eq!(text.len(), size);
        text
    };
    let limit = tower_agent_auth::oauth::document::MAX_SIZE;
    // At the limit: read. One byte more, declared or streamed: refused.
    documents
        .server
        .set("/at.json", Reply::Json(padded("/at.json", limit), None));
    documents.read(&documents.url("/at.json")).await.unwrap();
    documents.server.set(
        "/over.json",
        Reply::Json(padded("/over.json", limit + 1), None),
    );
    documents.server.set(
        "/streamed.json",
        Reply::Chunked(padded("/streamed.json", 64 * 1024)),
    );
    let cookie = documents.oauth.sign_in("alice").await;
    for path in ["/over.json", "/streamed.json"] {
        let url = documents.url(path);
        assert_eq!(
            documents.read(&url).await.unwrap_err(),
            DocumentError::TooLarge,
            "{path}"
        );
        let page = documents.authorize_page(&cookie, &url).await;
        Documents::assert_refused_page(&page, "invalid_client");
    }
}

#[tokio::test]
async fn a_document_that_answers_slowly_is_refused() {
    let documents = Documents::with(true, |d| d.timeout(Duration::from_millis(500))).await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let late = documents.document("/late.json").to_string();
    let slow = documents.document("/slow.json").to_string();
    let wait = Duration::from_secs(3);
    documents.server.set("/late.json", Reply::Late(wait, late));
    documents
        .server
        .set("/slow.json", Reply::SlowBody(wait, slow));
    for path in ["/late.json", "/slow.json"] {
        let started = Instant::now();
        assert_eq!(
            documents.read(&documents.url(path)).await.unwrap_err(),
            DocumentError::Timeout(Duration::from_millis(500)),
            "{path}"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    // The limit is 5 s at most, whatever is asked.
    let capped = tower_agent_auth::oauth::document::MetadataDocuments::new()
        .timeout(Duration::from_secs(60));
    assert!(format!("{capped:?}").contains("timeout: 5s"), "{capped:?}");
}

#[tokio::test]
async fn a_document_whose_client_id_differs_from_its_url_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let cookie = documents.oauth.sign_in("alice").await;
    // Another document's id; the same URL spelled otherwise (localhost, upper case, a slash).
    let url = documents.url("/client.json");
    for claimed in [
        documents.url("/other.json"),
        documents.server.url("localhost", "/client.json"),
        url.replace("docs.test", "DOCS.test"),
        format!("{url}/"),
    ] {
        let mut document = documents.document("/client.json");
        document["client_id"] = serde_json::json!(claimed);
        documents
            .server
            .set("/client.json", Reply::Json(document.to_string(), None));
        assert_eq!(
            documents.read(&url).await.unwrap_err(),
            DocumentError::ClientIdMismatch,
            "{claimed}"
        );
        let page = documents.authorize_page(&cookie, &url).await;
        Documents::assert_refused_page(&page, "invalid_client");
    }
    // None of them was kept: the fixed document is read at once.
    documents.serve("/client.json", None);
    documents.read(&url).await.unwrap();
}

#[tokio::test]
async fn a_document_with_a_secret_based_method_or_a_bad_redirect_uri_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let url = documents.url("/client.json");
    for (field, value) in [
        (
            "token_endpoint_auth_method",
            serde_json::json!("client_secret_basic"),
        ),
        (
            "token_endpoint_auth_method",
            serde_json::json!("client_secret_post"),
        ),
        (
            "token_endpoint_auth_method",
            serde_json::json!("private_key_jwt"),
        ),
        ("client_secret", serde_json::json!("a-secret")),
        (
            "redirect_uris",
            serde_json::json!(["https://app.example/cb#x"]),
        ),
        (
            "redirect_uris",
            serde_json::json!(["http://app.example/cb"]),
        ),
        ("redirect_uris", serde_json::json!([])),
    ] {
        let mut document = documents.document("/client.json");
        document[field] = value.clone();
        documents
            .server
            .set("/client.json", Reply::Json(document.to_string(), None));
        let error = documents.read(&url).await.unwrap_err();
        assert!(
            matches!(
                error,
                DocumentError::AuthMethod(_) | DocumentError::RedirectUri(_)
            ),
            "{field} {value}: {error:?}"
        );
    }
}

/// Not 200, not JSON, or signed by a CA nobody trusts.
#[tokio::test]
async fn an_error_answer_html_or_an_untrusted_certificate_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    documents.server.set("/gone.json", Reply::Status(404));
    documents
        .server
        .set("/page.json", Reply::Html("<html></html>".into()));
    assert_eq!(
        documents
            .read(&documents.url("/gone.json"))
            .await
            .unwrap_err(),
        DocumentError::Status(404)
    );
    assert!(matches!(
        documents.read(&documents.url("/page.json")).await,
        Err(DocumentError::NotJson(_))
    ));
    // Another server, whose CA this one was not told of.
    let stranger = crate::document_server::DocumentServer::start().await;
    let url = stranger.url(HOST, "/client.json");
    stranger.set(
        "/client.json",
        Reply::Json(
            serde_json::json!({"client_id": url, "redirect_uris": [crate::oauth_support::REDIRECT]})
                .to_string(),
            None,
        ),
    );
    assert!(matches!(
        documents.read(&url).await,
        Err(DocumentError::Unreachable(why)) if why.contains("TLS")
    ));
    assert_eq!(stranger.all_hits(), 0);
}

/// A `client_id` that cannot be a document's URL is `invalid_request`, on a page, with no
/// resolution and no fetch.
#[tokio::test]
async fn a_client_id_that_is_no_document_url_is_invalid_request() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let cookie = documents.oauth.sign_in("alice").await;
    let port = documents.server.port;
    for client_id in [
        format!("https://{HOST}:{port}"),
        format!("https://{HOST}:{port}/"),
        format!("https://{HOST}:{port}/client.json?v=2"),
        format!("https://{HOST}:{port}/a/../client.json"),
        format!("https://user@{HOST}:{port}/client.json"),
    ] {
        let page = documents.authorize_page(&cookie, &client_id).await;
        Documents::assert_refused_page(&page, "invalid_request");
    }
    assert_eq!(documents.script.calls(), 0);
    assert_eq!(documents.server.all_hits(), 0);
}

/// At most `MAX_FETCHES` fetches run at once; one more is refused at once
/// (`temporarily_unavailable`), not queued behind slow servers.
#[tokio::test]
async fn fetches_beyond_the_limit_are_refused_not_queued() {
    use tower_agent_auth::oauth::document::MAX_FETCHES;
    let documents = Documents::with(true, |d| d.timeout(Duration::from_millis(800))).await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let urls: Vec<String> = (0..=MAX_FETCHES)
        .map(|n| {
            let path = format!("/slow-{n}.json");
            let late = documents.document(&path).to_string();
            documents
                .server
                .set(&path, Reply::Late(Duration::from_secs(3), late));
            documents.url(&path)
        })
        .collect();
    let started = Instant::now();
    let answers = futures_join_all(urls.iter().map(|url| documents.read(url))).await;
    let busy = answers
        .iter()
        .filter(|a| matches!(a, Err(DocumentError::Busy)))
        .count();
    let timed_out = answers
        .iter()
        .filter(|a| matches!(a, Err(DocumentError::Timeout(_))))
        .count();
    assert_eq!((busy, timed_out), (1, MAX_FETCHES), "{answers:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        DocumentError::Busy.code(),
        tower_agent_auth::oauth::ErrorCode::TemporarilyUnavailable
    );
}

/// Runs the futures together, in one task, and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}
