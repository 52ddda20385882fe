//! The askama templates of the explorer, one struct per page (`api/templates/*.html`). askama
//! checks them at compile time, embeds them in the binary and escapes every value they write;
//! only the embedded stylesheet and scripts (constants of [`crate::explorer::assets`]) are
//! written raw.
//!
//! Every page extends `base.html`, which reads `chain_id` for the header, so every struct has it.

use askama::Template;

use crate::explorer::chart::Chart;
use crate::explorer::view::{BlockRow, BlockView, TxView, ValidatorRow};

/// `/`: the dashboard.
#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chain_id: String,
    /// The name of the validator serving the page.
    pub node_name: String,
    pub consensus: &'static str,
    /// `View` (PBFT) or `Term` (Raft).
    pub round_label: &'static str,
    pub round: u64,
    pub height: u64,
    /// The leader's name (`none` while no leader is known).
    pub leader: String,
    /// The leader's key, empty while none is known.
    pub leader_key: String,
    pub mempool_txs: usize,
    pub mempool_bytes: usize,
    pub ready: bool,
    pub validators: Vec<ValidatorRow>,
    pub blocks: Vec<BlockRow>,
    /// How many rows the recent-blocks table keeps as blocks arrive.
    pub rows_max: usize,
    pub chart: Chart,
    pub tx_per_sec: String,
    pub block_interval_ms: String,
}

/// `/blocks?before=H`: one keyset page of blocks, newest first.
#[derive(Template)]
#[template(path = "blocks.html")]
pub struct BlocksPage {
    pub chain_id: String,
    pub blocks: Vec<BlockRow>,
    /// The newest and oldest height on this page; `None` when it is empty.
    pub range: Option<(u64, u64)>,
    /// The `before` of the next (older) page; `None` once genesis is on this page.
    pub older: Option<u64>,
    /// The link to the page of newer blocks; `None` on the newest page.
    pub newer_href: Option<String>,
    /// The `before` this page was asked for, to say what an empty page means.
    pub before: Option<u64>,
}

/// `/blocks/{height}`.
#[derive(Template)]
#[template(path = "block.html")]
pub struct BlockPage {
    pub chain_id: String,
    pub block: BlockView,
}

/// `/tx/{tx_id}`.
#[derive(Template)]
#[template(path = "tx.html")]
pub struct TxPage {
    pub chain_id: String,
    pub tx: TxView,
}

/// `/state/{key}`.
#[derive(Template)]
#[template(path = "state.html")]
pub struct StatePage {
    pub chain_id: String,
    pub key: String,
    pub value: String,
    pub height: u64,
}

/// `/validators`.
#[derive(Template)]
#[template(path = "validators.html")]
pub struct ValidatorsPage {
    pub chain_id: String,
    pub validators: Vec<ValidatorRow>,
    /// Faults tolerated, from the node's status.
    pub f: usize,
}

/// The page of a failed request: 404 (unknown block, transaction or key, or a search that
/// found nothing), 400 (a malformed height, id or query), or the node's own failure.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chain_id: String,
    /// `Not found`, `Bad request` or `Error`: the title and the heading.
    pub heading: &'static str,
    pub message: String,
    /// What was searched for, on a search that found nothing.
    pub searched: Option<String>,
}
