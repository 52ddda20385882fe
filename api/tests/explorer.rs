//! The block explorer (protocol §7.2) over real HTTP, in front of the in-process node of the
//! harness (`common`), which commits real signed blocks.
//!
//! Each page is checked for its status, its content type and the data it shows (through the
//! stable element ids the browser tests rely on); then keyset paging, the 404 and 400 pages,
//! every kind of search redirect, escaping of client-written keys and values, and that no page
//! loads anything from outside the node.

mod common;

use common::*;
use ordo_api::explorer::assets;
use ordo_api::explorer::format::utc_time;
use ordo_chain::{Block, Hash, Op, Transaction};
use reqwest::StatusCode;

// ---------------------------------------------------------------------------------------------
// Reading the pages

/// A fetched page: status, headers and body.
struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn page(h: &Harness, path: &str) -> Page {
    let resp = h.get(path).await;
    Page { status: resp.status(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
}

impl Page {
    /// Asserts an HTML answer with `status`, served with the explorer's policy.
    fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(self.headers["content-security-policy"], assets::content_security_policy());
        assert!(self.body.starts_with("<!doctype html>"), "{}", &self.body[..self.body.len().min(200)]);
        self
    }

    /// The text of the element with this id (up to its first child tag).
    fn text(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\"");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {}", self.body));
        let start = at + self.body[at..].find('>').unwrap() + 1;
        let end = start + self.body[start..].find('<').unwrap();
        self.body[start..end].to_string()
    }

    fn has_id(&self, id: &str) -> bool {
        self.body.contains(&format!("id=\"{id}\""))
    }

    /// The markup of the element that starts with `open` (e.g. `<table id="txs"`), up to `close`.
    fn section(&self, open: &str, close: &str) -> &str {
        let start = self.body.find(open).unwrap_or_else(|| panic!("no {open} in {}", self.body));
        let end = start + self.body[start..].find(close).unwrap();
        &self.body[start..end]
    }

    /// The `data-height` of every row of the table `table_id`, in order.
    fn row_heights(&self, table_id: &str) -> Vec<u64> {
        attr_values(self.section(&format!("<table id=\"{table_id}\""), "</table>"), "data-height")
            .into_iter()
            .map(|v| v.parse().unwrap())
            .collect()
    }

    fn title(&self) -> &str {
        self.section("<title>", "</title>").trim_start_matches("<title>")
    }
}

/// Every value of `attr="..."` in `html`.
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let marker = format!(" {attr}=\"");
    html.match_indices(&marker)
        .map(|(at, _)| {
            let start = at + marker.len();
            html[start..start + html[start..].find('"').unwrap()].to_string()
        })
        .collect()
}

/// A client that does not follow redirects, to see the search's 303s.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap()
}

async fn search(h: &Harness, q: &str) -> reqwest::Response {
    no_redirects().get(h.url("/search")).query(&[("q", q)]).send().await.unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    resp.headers()["location"].to_str().unwrap().to_string()
}

fn delete(nonce: u64, key: &str) -> Transaction {
    Transaction::sign(CHAIN, &client(), nonce, Op::Delete { key: key.into() })
}

/// Genesis plus `n` empty blocks.
fn empty_blocks(h: &Harness, n: usize) -> Vec<Block> {
    (0..n).map(|_| h.commit_block(&[])).collect()
}

// ---------------------------------------------------------------------------------------------
// The pages

#[tokio::test]
async fn dashboard_shows_the_chain_live_elements_and_recent_blocks() {
    let h = Harness::start().await;
    h.commit_block(&[put(1, "a", "1"), put(2, "b", "2")]);
    h.commit_block(&[]);
    let top = h.commit_block(&[put(3, "c", "3")]);
    // One transaction left pending in the mempool.
    let pending = put(4, "d", "4");
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(&pending).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let p = page(&h, "/").await.expect(StatusCode::OK);
    assert!(p.title().starts_with("Dashboard"), "{}", p.title());
    assert_eq!(p.text("height"), "3");
    assert_eq!(p.text("view"), "0");
    assert_eq!(p.text("leader"), "node0");
    assert_eq!(p.text("mempool"), "1");
    assert_eq!(p.text("consensus"), "pbft");
    assert_eq!(p.text("chain-id"), CHAIN);
    // Stale until the script hears from the event stream.
    assert_eq!(p.text("live"), "stale");
    assert!(p.body.contains(r#"id="live" class="badge" data-state="stale""#));
    // Newest first, genesis included, each row linking its block.
    assert_eq!(p.row_heights("recent-blocks"), vec![3, 2, 1, 0]);
    let recent = p.section("<table id=\"recent-blocks\"", "</table>");
    for height in 0..=3 {
        assert!(recent.contains(&format!("href=\"/blocks/{height}\"")), "{recent}");
    }
    assert!(recent.contains(&top.hash.to_hex()), "the full hash is in the row's title");
    assert!(recent.contains(&utc_time(top.header.timestamp_ms)));
    // Validators: node0..node2 signed every block, node3 none.
    let validators = p.section("<table id=\"validators\"", "</table>");
    assert!(validators.contains(r#"<tr data-name="node0""#), "{validators}");
    let row = |name: &str| {
        let start = validators.find(&format!("data-name=\"{name}\"")).unwrap();
        let end = start + validators[start..].find("</tr>").unwrap();
        validators[start..end].to_string()
    };
    assert!(row("node1").contains(r#"data-height="3""#), "{}", row("node1"));
    assert!(row("node3").contains("last-signed num\">—<"), "{}", row("node3"));
    assert!(row("node0").contains(">leader<") && !row("node1").contains(">leader<"));
    assert!(row("node2").contains("connected yes"));
    // The chart: every recent block in its series, two panels with points.
    let chart = p.section("<svg id=\"chart\"", "</svg>");
    assert_eq!(
        attr_values(chart, "data-series"),
        vec![format!(
            "0:{}:0,1:{}:2,2:{}:0,3:{}:1",
            1_764_288_000_000u64, 1_764_288_000_001u64, 1_764_288_000_002u64, 1_764_288_000_003u64
        )]
    );
    assert_eq!(attr_values(chart, "points").len(), 2);
    assert!(attr_values(chart, "points").iter().all(|p| p.split(' ').count() == 3), "{chart}");
    // 3 transactions in the 3 ms from block 0 to block 3.
    assert_eq!(p.text("tps"), "1000");
    assert_eq!(p.text("interval"), "1.0");
    // Browsers ask for an icon; the answer is an empty success, not an error.
    assert_eq!(h.get("/favicon.ico").await.status(), StatusCode::NO_CONTENT);
    // The live script is inline and is exactly the one the policy allows.
    assert!(p.body.contains(&format!("<script>{}</script>", assets::DASHBOARD_JS)));
}

#[tokio::test]
async fn dashboard_lists_twenty_blocks_and_charts_the_recent_ring() {
    let h = Harness::start().await;
    empty_blocks(&h, 130);
    let p = page(&h, "/").await.expect(StatusCode::OK);
    assert_eq!(p.row_heights("recent-blocks"), (111..=130).rev().collect::<Vec<u64>>());
    let series = attr_values(p.section("<svg id=\"chart\"", "</svg>"), "data-series").remove(0);
    let heights: Vec<u64> = series.split(',').map(|s| s.split(':').next().unwrap().parse().unwrap()).collect();
    assert_eq!(heights, (11..=130).collect::<Vec<u64>>(), "the 120 newest, oldest first");
    assert_eq!(p.text("height"), "130");
}

#[tokio::test]
async fn blocks_pages_walk_down_to_genesis_without_gap_or_duplicate() {
    let h = Harness::start().await;
    empty_blocks(&h, 60);
    let mut seen = Vec::new();
    let mut path = "/blocks".to_string();
    let mut pages = 0;
    loop {
        let p = page(&h, &path).await.expect(StatusCode::OK);
        assert!(p.title().starts_with("Blocks"), "{}", p.title());
        let heights = p.row_heights("blocks");
        assert!(heights.len() == 25 || !p.has_id("older"), "{path}: {} rows", heights.len());
        if pages == 0 {
            assert!(!p.has_id("newer"), "the newest page has no newer link");
        } else {
            assert!(p.has_id("newer"));
        }
        seen.extend(heights);
        pages += 1;
        if !p.has_id("older") {
            break;
        }
        let older = attr_values(&p.body, "href").into_iter().find(|v| v.starts_with("/blocks?before=")).unwrap();
        path = older;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..=60).rev().collect::<Vec<u64>>());

    // The second page's newer link leads back to the first; the third's to the second.
    let second = page(&h, "/blocks?before=36").await.expect(StatusCode::OK);
    assert_eq!(second.row_heights("blocks"), (11..=35).rev().collect::<Vec<u64>>());
    assert!(second.body.contains(r#"id="newer" href="/blocks""#));
    let third = page(&h, "/blocks?before=11").await.expect(StatusCode::OK);
    assert!(third.body.contains(r#"id="newer" href="/blocks?before=36""#), "{}", third.body);
    // Below genesis: an empty page that says so.
    let empty = page(&h, "/blocks?before=0").await.expect(StatusCode::OK);
    assert!(empty.body.contains("No blocks below height 0."));
    // Past the tip: the newest page.
    assert_eq!(page(&h, "/blocks?before=99999").await.expect(StatusCode::OK).row_heights("blocks")[0], 60);
}

#[tokio::test]
async fn a_malformed_before_is_a_400_page() {
    let h = Harness::start().await;
    for bad in ["abc", "-1", "1.5", "", "18446744073709551616"] {
        let p = page(&h, &format!("/blocks?before={bad}")).await.expect(StatusCode::BAD_REQUEST);
        assert!(p.body.contains("<h1>Bad request</h1>"), "{bad}: {}", p.body);
        assert!(p.text("message").contains("before"), "{bad}");
    }
}

#[tokio::test]
async fn block_page_shows_every_header_field_the_certificate_and_the_transactions() {
    let h = Harness::start().await;
    let genesis = h.node.chain.store().block(0).unwrap().unwrap();
    let first = h.commit_block(&[put(1, "user:1", "Ada"), delete(2, "greeting")]);
    // The same put again: committed as a duplicate.
    h.commit_block(&[put(1, "user:1", "Ada")]);

    let p = page(&h, "/blocks/1").await.expect(StatusCode::OK);
    assert!(p.title().starts_with("Block 1 "), "{}", p.title());
    assert_eq!(p.text("block-height"), "1");
    assert_eq!(p.text("block-hash"), first.hash.to_hex());
    assert_eq!(p.text("prev-hash"), genesis.hash.to_hex());
    assert!(p.body.contains(&format!("<a href=\"/blocks/0\"><code id=\"prev-hash\">{}", genesis.hash)));
    assert_eq!(p.text("batch-digest"), first.batch_digest.to_hex());
    assert_eq!(p.text("state-hash"), first.state_hash.to_hex());
    assert_eq!(p.text("timestamp-ms"), first.header.timestamp_ms.to_string());
    assert_eq!(p.text("timestamp-utc"), "2025-11-28 00:00:00.001 UTC");
    assert_eq!(p.text("proposer-name"), "node0");
    assert_eq!(p.text("proposer"), validator_keys()[0].public().to_hex());
    assert_eq!(p.text("tx-root"), first.header.tx_root.to_hex());
    assert_eq!(p.text("tx-count"), "2");
    // The certificate: kind, view, height, digest, and each signer's name and key.
    let cert = p.section("<section id=\"certificate\"", "</section>");
    assert!(cert.contains("<dd>pbft</dd>") && cert.contains("<dt>View</dt><dd>0</dd>"), "{cert}");
    assert!(cert.contains(&first.batch_digest.to_hex()));
    for (i, key) in validator_keys().iter().enumerate() {
        let signed = i < 3;
        assert_eq!(cert.contains(&format!(">node{i}<")), signed, "node{i}: {cert}");
        assert_eq!(cert.contains(&key.public().to_hex()), signed, "node{i}");
    }
    // The transactions, each linking its page.
    let txs = p.section("<table id=\"txs\"", "</table>");
    for id in &first.tx_ids {
        assert!(txs.contains(&format!("href=\"/tx/{id}\"")), "{txs}");
    }
    assert!(txs.contains("<td>put</td>") && txs.contains("<td>delete</td>"));
    assert!(txs.contains("<code>Ada</code>") && txs.contains("href=\"/state/user%3A1\""));
    assert!(txs.contains("<td>applied</td>") && !txs.contains("duplicate"));
    assert!(p.body.contains(r#"<a href="/blocks/2" rel="next">"#), "block 2 exists");

    let second = page(&h, "/blocks/2").await.expect(StatusCode::OK);
    assert!(second.section("<table id=\"txs\"", "</table>").contains("<td>duplicate</td>"));
    assert!(!second.body.contains("rel=\"next\""), "block 2 is the tip");

    let g = page(&h, "/blocks/0").await.expect(StatusCode::OK);
    assert_eq!(g.text("prev-hash"), Hash::ZERO.to_hex());
    assert!(g.section("<section id=\"certificate\"", "</section>").contains("Genesis carries no certificate"));
    assert!(g.body.contains("No transactions in this block."));
}

#[tokio::test]
async fn tx_page_shows_a_pending_then_a_committed_transaction() {
    let h = Harness::start().await;
    let tx = put(7, "user:2", "Grace Hopper");
    let id = tx.tx_id().to_hex();
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(&tx).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let p = page(&h, &format!("/tx/{id}")).await.expect(StatusCode::OK);
    assert!(p.title().starts_with("Transaction "), "{}", p.title());
    assert_eq!(p.text("tx-id"), id);
    assert_eq!(p.text("tx-status"), "pending");
    assert!(!p.has_id("tx-block"), "no block while pending");
    assert!(p.body.contains(&format!("<script>{}</script>", assets::TX_PENDING_JS)), "waits for the commit");

    h.commit_block(&[put(8, "other", "x"), tx.clone()]);
    let p = page(&h, &format!("/tx/{id}")).await.expect(StatusCode::OK);
    assert_eq!(p.text("tx-status"), "committed");
    assert_eq!(p.text("tx-block"), "1");
    assert!(p.body.contains(r#"<a id="tx-block" href="/blocks/1">"#));
    assert_eq!(p.text("tx-index"), "1");
    assert_eq!(p.text("tx-result"), "applied");
    assert_eq!(p.text("tx-op"), "put");
    assert_eq!(p.text("tx-key"), "user:2");
    assert_eq!(p.text("tx-value"), "Grace Hopper");
    assert_eq!(p.text("tx-sender"), client().public().to_hex());
    assert_eq!(p.text("tx-nonce"), "7");
    assert_eq!(p.text("tx-signature"), tx.signature.to_hex());
    assert!(!p.body.contains("<script>"), "a committed transaction's page has nothing to wait for");
}

#[tokio::test]
async fn state_page_shows_the_value_and_the_height_read_at() {
    let h = Harness::start().await;
    h.commit_block(&[put(1, "dir/sub/key", "v1"), put(2, "..", "dots"), put(3, "50% off?", "yes")]);
    for path in ["/state/dir/sub/key", "/state/dir%2Fsub%2Fkey"] {
        let p = page(&h, path).await.expect(StatusCode::OK);
        assert!(p.title().starts_with("State dir/sub/key"), "{}", p.title());
        assert_eq!(p.text("state-key"), "dir/sub/key");
        assert_eq!(p.text("state-value"), "v1");
        assert_eq!(p.text("state-height"), "1");
    }
    let p = page(&h, "/state?key=..").await.expect(StatusCode::OK);
    assert_eq!(p.text("state-value"), "dots");
    let p = page(&h, "/state/50%25%20off%3F").await.expect(StatusCode::OK);
    assert_eq!(p.text("state-value"), "yes");
    let genesis = page(&h, "/state/greeting").await.expect(StatusCode::OK);
    assert_eq!(genesis.text("state-value"), "hello");
}

#[tokio::test]
async fn validators_page_lists_names_keys_addresses_and_connectivity() {
    let h = Harness::start().await;
    h.commit_block(&[]);
    let p = page(&h, "/validators").await.expect(StatusCode::OK);
    assert!(p.title().starts_with("Validators"), "{}", p.title());
    let table = p.section("<table id=\"validators\"", "</table>");
    for (i, key) in validator_keys().iter().enumerate() {
        assert!(table.contains(&format!("data-name=\"node{i}\"")), "{table}");
        assert!(table.contains(&format!("<code>{}</code>", key.public())));
        assert!(table.contains(&format!("<code>/ip4/127.0.0.1/tcp/{}</code>", 7000 + i)));
        assert!(table.contains(&format!("<code>http://127.0.0.1:{}</code>", 8080 + i)));
    }
    assert_eq!(table.matches("connected yes").count(), 4);
    assert_eq!(table.matches("<a href=\"/blocks/1\">1</a>").count(), 3, "three signers of block 1");
    assert!(table.contains("(this node)"));
}

// ---------------------------------------------------------------------------------------------
// Not found, bad requests, search

#[tokio::test]
async fn unknown_block_tx_or_key_is_a_404_page() {
    let h = Harness::start().await;
    let unknown_tx = format!("/tx/{}", Hash::ZERO);
    for path in ["/blocks/1", "/blocks/18446744073709551615", unknown_tx.as_str(), "/state/nope", "/state?key=nope"] {
        let p = page(&h, path).await.expect(StatusCode::NOT_FOUND);
        assert!(p.title().starts_with("Not found"), "{path}: {}", p.title());
        assert!(p.body.contains("<h1>Not found</h1>"), "{path}");
        assert!(p.has_id("search"), "{path}: every page has the search box");
    }
    assert!(page(&h, "/blocks/5").await.body.contains("ends at height 0"));
}

#[tokio::test]
async fn malformed_ids_are_400_pages() {
    let h = Harness::start().await;
    for path in
        ["/blocks/abc", "/blocks/-1", "/tx/xyz", "/tx/00", "/search", "/search?q=", "/search?q=%20%20", "/state"]
    {
        let p = page(&h, path).await.expect(StatusCode::BAD_REQUEST);
        assert!(p.body.contains("<h1>Bad request</h1>"), "{path}: {}", p.body);
        assert!(!p.text("message").is_empty());
    }
}

#[tokio::test]
async fn search_redirects_to_each_kind_of_page() {
    let h = Harness::start().await;
    let tx = put(1, "user/1", "Ada");
    let block = h.commit_block(std::slice::from_ref(&tx));
    h.commit_block(&[put(2, "42", "a key that looks like a height")]);

    assert_eq!(location(&search(&h, "1").await), "/blocks/1");
    assert_eq!(location(&search(&h, " 0 ").await), "/blocks/0");
    assert_eq!(location(&search(&h, &block.hash.to_hex()).await), "/blocks/1");
    assert_eq!(location(&search(&h, &block.hash.to_hex().to_uppercase()).await), "/blocks/1");
    assert_eq!(location(&search(&h, &tx.tx_id().to_hex()).await), format!("/tx/{}", tx.tx_id()));
    assert_eq!(location(&search(&h, "user/1").await), "/state/user%2F1");
    assert_eq!(location(&search(&h, "greeting").await), "/state/greeting");
    // Height 42 does not exist; the key "42" does.
    assert_eq!(location(&search(&h, "42").await), "/state/42");

    // Following a redirect lands on the page.
    let followed = h.get("/search?q=user%2F1").await;
    assert_eq!(followed.status(), StatusCode::OK);
    assert!(followed.text().await.unwrap().contains(r#"<code id="state-value">Ada</code>"#));

    for q in ["nothing-here", "999", &"ab".repeat(32)] {
        let resp = search(&h, q).await;
        let p = Page { status: resp.status(), headers: resp.headers().clone(), body: resp.text().await.unwrap() }
            .expect(StatusCode::NOT_FOUND);
        assert!(p.body.contains("<h1>Not found</h1>"), "{q}");
        assert_eq!(p.text("searched"), *q, "the page says what was searched");
    }
}

// ---------------------------------------------------------------------------------------------
// Escaping and outside resources

/// Decodes the character references an HTML escaper writes (named and numeric), to compare
/// what a reader sees with what the client wrote.
fn unescape(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').expect("a reference ends with ;");
        let name = &rest[1..end];
        let decoded = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ if name.starts_with("#x") || name.starts_with("#X") => {
                char::from_u32(u32::from_str_radix(&name[2..], 16).unwrap()).unwrap()
            }
            _ if name.starts_with('#') => char::from_u32(name[1..].parse().unwrap()).unwrap(),
            _ => panic!("unknown reference &{name};"),
        };
        out.push(decoded);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn client_written_keys_and_values_render_as_text() {
    let h = Harness::start().await;
    let key = "<script>alert(1)</script>";
    let value = "<img src=x onerror=alert(2)>\"'&";
    let tx = put(1, key, value);
    h.commit_block(std::slice::from_ref(&tx));
    let paths = [
        format!("/tx/{}", tx.tx_id()),
        "/blocks/1".to_string(),
        format!("/state/{}", ordo_api::explorer::format::percent_encode(key)),
    ];
    for path in &paths {
        let p = page(&h, path).await.expect(StatusCode::OK);
        assert!(!p.body.contains("<script>alert"), "{path}: the key is raw");
        assert!(!p.body.contains("<img"), "{path}: the value is raw");
        assert!(!p.body.contains("\"'&"), "{path}: quotes and ampersand are raw");
    }
    // What a reader sees is exactly what the client wrote.
    let tx_page = page(&h, &paths[0]).await;
    assert_eq!(unescape(&tx_page.text("tx-key")), key);
    assert_eq!(unescape(&tx_page.text("tx-value")), value);
    let state = page(&h, &paths[2]).await;
    assert_eq!(unescape(&state.text("state-key")), key);
    assert_eq!(unescape(&state.text("state-value")), value);
    assert_eq!(unescape(state.title()), format!("State {key} · {CHAIN} · Ordo explorer"));
    let block = page(&h, &paths[1]).await;
    let txs = unescape(block.section("<table id=\"txs\"", "</table>"));
    assert!(txs.contains(&format!("<code>{key}</code>")) && txs.contains(&format!("<code>{value}</code>")));
    // The search's 404 page echoes the query, escaped.
    let resp = search(&h, "<b>nope</b>").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = resp.text().await.unwrap();
    assert!(!body.contains("<b>"), "{body}");
    let searched = Page { status: StatusCode::NOT_FOUND, headers: Default::default(), body };
    assert_eq!(unescape(&searched.text("searched")), "<b>nope</b>");
}

#[tokio::test]
async fn no_page_loads_anything_from_outside_the_node() {
    let h = Harness::start().await;
    let tx = put(1, "k", "v");
    h.commit_block(std::slice::from_ref(&tx));
    let pending = put(2, "p", "q");
    h.post_json("/v1/transactions", &serde_json::to_value(&pending).unwrap()).await;
    let paths = [
        "/".to_string(),
        "/blocks".to_string(),
        "/blocks/0".to_string(),
        "/blocks/1".to_string(),
        format!("/tx/{}", tx.tx_id()),
        format!("/tx/{}", pending.tx_id()),
        "/state/k".to_string(),
        "/validators".to_string(),
        "/blocks/99".to_string(),
        "/search?q=nothing".to_string(),
    ];
    for path in &paths {
        let resp = h.get(path).await;
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.starts_with("default-src 'none';") && csp.contains("connect-src 'self'"), "{csp}");
        let body = resp.text().await.unwrap();
        for attr in ["src", "href", "action", "xlink:href", "srcset", "poster", "data"] {
            for v in attr_values(&body, attr) {
                assert!(v.starts_with('/') && !v.starts_with("//"), "{path}: {attr}=\"{v}\" leaves the node");
            }
        }
        let style = &body[body.find("<style>").unwrap()..body.find("</style>").unwrap()];
        assert_eq!(style, format!("<style>{}", assets::STYLE), "{path}: only the embedded stylesheet");
        assert!(!style.contains("url(") && !style.contains("@import"), "{path}: the stylesheet loads nothing");
        // Only the embedded scripts, and nothing but them is written raw.
        for (at, _) in body.match_indices("<script") {
            let script = &body[at..];
            assert!(
                script.starts_with(&format!("<script>{}</script>", assets::DASHBOARD_JS))
                    || script.starts_with(&format!("<script>{}</script>", assets::TX_PENDING_JS)),
                "{path}: unexpected script"
            );
        }
    }
}
