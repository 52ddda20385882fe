//! The fault scenarios of the Raft simulation: what the network does, which nodes crash and
//! how, for committees of 3, 4 and 5. Raft tolerates crashes only, so nothing here lies; a
//! node may lose what it had not synced, stop between any two actions, or be cut off.

use crate::raft::RaftFaults;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftPartition {
    None,
    /// Random symmetric link cuts, re-drawn every few hundred milliseconds.
    RandomSymmetric,
    /// Random one-way link cuts.
    RandomOneWay,
    /// The current leader is cut off from everyone (2 times in 3), repeatedly.
    IsolateLeader,
    /// A minority and a majority that cannot talk, re-drawn now and then.
    Split,
}

#[derive(Debug, Clone)]
pub struct RaftScenario {
    pub name: &'static str,
    pub n: usize,
    pub drop_percent: u32,
    pub duplicate_percent: u32,
    pub delay_max_ms: u64,
    pub partition: RaftPartition,
    /// How many crashes (each followed by a restart 100–600 ms later) the fault phase holds.
    pub crashes: usize,
    /// How long a crashed node stays down, in ms (a range).
    pub crash_down_ms: (u64, u64),
    /// Whether a crash strikes between two actions of one action list (after a random number
    /// of them) rather than between inputs.
    pub crash_mid_actions: bool,
    /// Times the leader is cut off from all but one follower, so its newest entries reach only a
    /// minority, and then crashes.
    pub leader_minority_crashes: usize,
    /// One follower is cut off for most of the fault phase, so the others compact past it.
    pub lagger: bool,
    /// The harness plays a group-committing node: a `PersistLog` is written without a sync, and
    /// the pending writes are synced right before the next action that lets anything out (a
    /// message, a commit, a fetch). A crash in between loses the unsynced writes, and nothing
    /// that depended on them has left.
    pub group_commit: bool,
    /// Engine switches on every node (planted bugs, or the stale-proposal stress).
    pub faults: RaftFaults,
    pub txs: usize,
    /// When the faults stop and the network heals.
    pub fault_phase_ms: u64,
}

impl RaftScenario {
    fn base(name: &'static str, n: usize) -> Self {
        RaftScenario {
            name,
            n,
            drop_percent: 0,
            duplicate_percent: 0,
            delay_max_ms: 10,
            partition: RaftPartition::None,
            crashes: 0,
            crash_down_ms: (100, 600),
            crash_mid_actions: false,
            leader_minority_crashes: 0,
            lagger: false,
            group_commit: false,
            faults: RaftFaults::default(),
            txs: 24,
            fault_phase_ms: 2000,
        }
    }
}

/// Every scenario, in a fixed order (the CI test and the soak cycle through them).
pub fn all() -> Vec<RaftScenario> {
    let b = RaftScenario::base;
    vec![
        b("calm_n3", 3),
        RaftScenario { drop_percent: 20, duplicate_percent: 10, delay_max_ms: 60, ..b("lossy_n4", 4) },
        RaftScenario { partition: RaftPartition::RandomSymmetric, drop_percent: 5, ..b("partition_symmetric_n5", 5) },
        RaftScenario { partition: RaftPartition::RandomOneWay, drop_percent: 5, ..b("partition_one_way_n4", 4) },
        RaftScenario { partition: RaftPartition::IsolateLeader, ..b("isolate_leader_n3", 3) },
        RaftScenario { partition: RaftPartition::Split, ..b("split_minority_n5", 5) },
        RaftScenario { crashes: 4, drop_percent: 5, ..b("crash_restart_n3", 3) },
        RaftScenario { crashes: 6, crash_mid_actions: true, group_commit: true, ..b("crash_mid_actions_n5", 5) },
        RaftScenario { crashes: 5, crash_mid_actions: true, duplicate_percent: 10, ..b("crash_mid_actions_n3", 3) },
        RaftScenario { leader_minority_crashes: 3, ..b("leader_minority_crash_n5", 5) },
        RaftScenario {
            leader_minority_crashes: 2,
            crashes: 2,
            crash_mid_actions: true,
            ..b("leader_minority_crash_n3", 3)
        },
        RaftScenario { lagger: true, txs: 64, ..b("lagger_past_compaction_n3", 3) },
        RaftScenario { lagger: true, txs: 64, crashes: 2, drop_percent: 5, ..b("lagger_past_compaction_n4", 4) },
        RaftScenario {
            faults: RaftFaults { stale_proposals: true, ..Default::default() },
            partition: RaftPartition::IsolateLeader,
            drop_percent: 5,
            ..b("stale_duplicates_n4", 4)
        },
        // Elections under crashes: the leader is cut off again and again while nodes crash for
        // a few tens of ms and messages are slow, so a node often restarts in the middle of an
        // election it already voted in.
        RaftScenario {
            partition: RaftPartition::IsolateLeader,
            crashes: 16,
            crash_down_ms: (5, 60),
            delay_max_ms: 40,
            ..b("election_crashes_n3", 3)
        },
        RaftScenario {
            partition: RaftPartition::IsolateLeader,
            crashes: 20,
            crash_down_ms: (5, 60),
            delay_max_ms: 40,
            duplicate_percent: 5,
            ..b("election_crashes_n5", 5)
        },
        RaftScenario {
            partition: RaftPartition::RandomSymmetric,
            drop_percent: 10,
            duplicate_percent: 5,
            delay_max_ms: 40,
            crashes: 4,
            crash_mid_actions: true,
            group_commit: true,
            leader_minority_crashes: 1,
            txs: 32,
            ..b("chaos_n5", 5)
        },
    ]
}

pub fn by_name(name: &str) -> Option<RaftScenario> {
    all().into_iter().find(|s| s.name == name)
}
