//! The fault scenarios the simulation runs. Each names what the network does, which replicas
//! crash, and which validators are Byzantine (at most f, a Twins pair counting as one).

/// How a Byzantine replica misbehaves; several may be combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Byzantine {
    /// As primary, sends different batches for one height to different backups.
    pub equivocate: bool,
    /// Sends a second PREPARE/COMMIT for a different digest alongside every honest one.
    pub double_vote: bool,
    /// Re-sends old messages (of old views) at random.
    pub replay: bool,
    /// Sends VIEW-CHANGEs for absurdly high views.
    pub huge_view: bool,
    /// Sends nothing at all.
    pub silent: bool,
    /// Corrupts the signature of some of its messages.
    pub bad_signatures: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    None,
    /// Random symmetric link cuts, re-drawn every few hundred milliseconds.
    RandomSymmetric,
    /// Random one-way link cuts.
    RandomOneWay,
    /// The primary of the current view is cut off from everyone, repeatedly.
    IsolatePrimary,
    /// Two halves that cannot talk, re-drawn now and then.
    Split,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    /// Number of validators (3f+1).
    pub n: usize,
    pub drop_percent: u32,
    pub duplicate_percent: u32,
    pub delay_max_ms: u64,
    pub partition: Partition,
    /// Honest replicas crash and restart from their store during the fault phase.
    pub crashes: bool,
    /// How many times one replica (the same, drawn per run) stalls during the fault phase: for
    /// 400–900 ms (longer than the view-change timeout) it processes nothing, its inbound messages and client requests queue
    /// up, and when it resumes its clock has jumped. This is a replica overloaded by its own
    /// backlog (or paused): it takes its own lag for a faulty primary and asks alone for a view
    /// change while the others keep committing.
    pub stalls: usize,
    /// After every transaction committed, let the run settle for two view-change timeouts and
    /// require every honest replica in one view, in normal mode, at one tip.
    pub converge: bool,
    /// Validator indexes that are Byzantine, and how.
    pub byzantine: Vec<(usize, Byzantine)>,
    /// Validator index run as two honest copies (Twins), counted as the faulty one.
    pub twins: Option<usize>,
    pub txs: usize,
    /// When the faults stop and the network heals.
    pub fault_phase_ms: u64,
}

impl Scenario {
    fn base(name: &'static str) -> Self {
        Scenario {
            name,
            n: 4,
            drop_percent: 0,
            duplicate_percent: 0,
            delay_max_ms: 10,
            partition: Partition::None,
            crashes: false,
            stalls: 0,
            converge: false,
            byzantine: Vec::new(),
            twins: None,
            txs: 24,
            fault_phase_ms: 2000,
        }
    }

    pub fn f(&self) -> usize {
        (self.n - 1) / 3
    }
}

/// Every scenario, in a fixed order (the CI test and the soak cycle through them).
pub fn all() -> Vec<Scenario> {
    let b = Scenario::base;
    let byz = |flags: Byzantine| vec![(0usize, flags)];
    vec![
        b("calm"),
        Scenario { drop_percent: 20, duplicate_percent: 10, delay_max_ms: 60, ..b("lossy") },
        Scenario { partition: Partition::RandomSymmetric, drop_percent: 5, ..b("partition_symmetric") },
        Scenario { partition: Partition::RandomOneWay, drop_percent: 5, ..b("partition_one_way") },
        Scenario { partition: Partition::IsolatePrimary, ..b("isolate_primary") },
        Scenario { partition: Partition::Split, ..b("split_2_2") },
        Scenario { crashes: true, drop_percent: 5, ..b("crash_restart") },
        Scenario {
            byzantine: byz(Byzantine { equivocate: true, ..Default::default() }),
            drop_percent: 5,
            ..b("byz_equivocating_primary")
        },
        Scenario {
            byzantine: vec![(1, Byzantine { double_vote: true, ..Default::default() })],
            drop_percent: 10,
            partition: Partition::IsolatePrimary,
            ..b("byz_double_vote")
        },
        Scenario {
            byzantine: byz(Byzantine { replay: true, ..Default::default() }),
            partition: Partition::IsolatePrimary,
            ..b("byz_replay")
        },
        Scenario {
            byzantine: vec![(2, Byzantine { huge_view: true, ..Default::default() })],
            drop_percent: 5,
            ..b("byz_huge_view")
        },
        Scenario { byzantine: byz(Byzantine { silent: true, ..Default::default() }), ..b("byz_silent_primary") },
        Scenario {
            byzantine: byz(Byzantine { bad_signatures: true, ..Default::default() }),
            drop_percent: 5,
            ..b("byz_bad_signatures")
        },
        Scenario {
            byzantine: byz(Byzantine { equivocate: true, double_vote: true, replay: true, ..Default::default() }),
            partition: Partition::RandomSymmetric,
            drop_percent: 10,
            ..b("byz_all_in")
        },
        Scenario { twins: Some(0), partition: Partition::Split, ..b("twins_primary") },
        Scenario { twins: Some(2), crashes: true, drop_percent: 10, ..b("twins_crash") },
        Scenario {
            n: 7,
            byzantine: vec![
                (0, Byzantine { equivocate: true, double_vote: true, ..Default::default() }),
                (3, Byzantine { replay: true, huge_view: true, bad_signatures: true, ..Default::default() }),
            ],
            drop_percent: 10,
            duplicate_percent: 5,
            delay_max_ms: 40,
            partition: Partition::RandomSymmetric,
            txs: 32,
            ..b("n7_byzantine_lossy")
        },
        Scenario {
            n: 7,
            crashes: true,
            partition: Partition::IsolatePrimary,
            drop_percent: 5,
            txs: 32,
            ..b("n7_crash_isolate")
        },
        // A replica alone in a higher view under load: steady client load (a transaction every
        // ~25 ms) while one replica stalls three times; each time it asks alone for the next view,
        // must never escalate further, must rejoin the committee's view as an observer, and at
        // the end every honest replica is in one view, in normal mode, at one tip.
        Scenario { stalls: 3, converge: true, txs: 96, fault_phase_ms: 3000, ..b("lone_higher_view") },
    ]
}

pub fn by_name(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}
