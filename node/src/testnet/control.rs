//! The control channel of a running testnet: how `ordo testnet kill|pause|resume|restart|nodes`
//! (and `ordo chaos`, through [`apply_fault`] and [`nodes`]) reach the supervisor.
//!
//! Two files in DIR make the rendezvous:
//! - `testnet.sock`, a Unix socket the supervisor listens on. A client sends one JSON request
//!   line and reads one JSON reply line. Only the supervisor ever signals a node, so a client
//!   never needs, and never trusts, a pid.
//! - `testnet.state`, a JSON record of the supervisor's pid and its nodes (for people and
//!   scripts), which the live supervisor holds an exclusive `flock` on. The kernel drops that lock
//!   when the process dies, however it dies, so "the lock is free" is the proof that the file and
//!   the socket are stale: a client that finds them so removes them and says so, and a second
//!   supervisor on a DIR whose lock is held is refused.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use anyhow::{bail, Context};
use ordo_genesis::Genesis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Fault, NodeState, RunState};

/// The supervisor's socket, in DIR.
pub const SOCKET_FILE: &str = "testnet.sock";
/// The supervisor's state record and lock, in DIR.
pub const STATE_FILE: &str = "testnet.state";
/// A request is one short JSON line; anything longer is refused unread.
const CONTROL_REQUEST_MAX_BYTES: u64 = 4096;
/// A reply lists at most every node of a testnet; this is far above any real one.
const CONTROL_REPLY_MAX_BYTES: u64 = 1 << 20;
/// Requests waiting for the supervisor's loop. The listener handles one connection at a time, so
/// at most one request is ever queued; the bound only makes that explicit.
const CONTROL_QUEUE_MAX: usize = 1;
/// How long the listener waits for a client's request line, and for the supervisor's answer
/// (which takes milliseconds unless the supervisor is busy stopping every node).
const CONTROL_IO_TIMEOUT_MS: u64 = 5_000;
/// How long a client waits for the supervisor's reply.
const CONTROL_CLIENT_TIMEOUT_MS: u64 = 15_000;
/// How long `leader` resolution waits for one node's /v1/status: a node that hangs (a paused
/// one, say) must not hold the command up.
const STATUS_QUERY_TIMEOUT_MS: u64 = 2_000;

/// One request from a client to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Apply `fault` to `node` (a name or an index; `leader` is resolved by the client).
    Fault { fault: Fault, node: String },
    /// List the nodes.
    Nodes {},
}

/// The supervisor's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase", deny_unknown_fields)]
pub enum Reply {
    /// The fault was applied to the node named here.
    Done {
        node: String,
    },
    Nodes {
        nodes: Vec<NodeState>,
    },
    /// Nothing was done, for this reason.
    Error {
        message: String,
    },
}

/// A request the listener thread hands to the supervisor's loop, with where to send the reply.
pub struct Job {
    pub request: Request,
    pub reply: SyncSender<Reply>,
}

/// Applies `fault` to `node` (a name, an index or "leader") of the testnet running in `dir`;
/// returns the name of the node acted on.
pub fn apply_fault(dir: &Path, node: &str, fault: Fault) -> anyhow::Result<String> {
    let target = if node == "leader" { leader_name(dir)? } else { node.to_string() };
    match call(dir, &Request::Fault { fault, node: target })? {
        Reply::Done { node } => Ok(node),
        Reply::Error { message } => bail!(message),
        other => bail!("the supervisor answered {fault} with {other:?}"),
    }
}

/// The running testnet's nodes as the supervisor sees them.
pub fn nodes(dir: &Path) -> anyhow::Result<Vec<NodeState>> {
    match call(dir, &Request::Nodes {})? {
        Reply::Nodes { nodes } => Ok(nodes),
        Reply::Error { message } => bail!(message),
        other => bail!("the supervisor answered `nodes` with {other:?}"),
    }
}

/// The name of the current leader: the one most running nodes name in their /v1/status (a node
/// alone in a higher view, or one that has not heard of a view change yet, is outvoted), mapped
/// from its public key to a name through DIR/genesis.json.
fn leader_name(dir: &Path) -> anyhow::Result<String> {
    let genesis = Genesis::load(&dir.join("genesis.json"))?;
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(STATUS_QUERY_TIMEOUT_MS)).build();
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    let mut answered = 0;
    let running: Vec<NodeState> = nodes(dir)?.into_iter().filter(|n| n.state == RunState::Running).collect();
    if running.is_empty() {
        bail!("no node of {} is running, so there is no leader", dir.display());
    }
    for n in &running {
        let Ok(status) = agent.get(&format!("{}/v1/status", n.api_url)).call() else { continue };
        let Ok(status) = status.into_json::<Value>() else { continue };
        answered += 1;
        if let Some(leader) = status["leader"].as_str() {
            *votes.entry(leader.to_string()).or_default() += 1;
        }
    }
    if answered == 0 {
        bail!("no running node of {} answered /v1/status, so the leader is unknown", dir.display());
    }
    let Some((key, _)) = votes.into_iter().max_by_key(|(_, count)| *count) else {
        bail!("no node of {} knows the leader right now (a view change may be under way); try again", dir.display());
    };
    match genesis.validators.iter().find(|v| v.public_key.to_hex() == key) {
        Some(v) => Ok(v.name.clone()),
        None => bail!("the nodes name leader {key}, which is not a validator of {}/genesis.json", dir.display()),
    }
}

/// Sends one request to the supervisor of `dir` and reads its reply.
fn call(dir: &Path, request: &Request) -> anyhow::Result<Reply> {
    let socket = dir.join(SOCKET_FILE);
    let mut stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            return Err(no_supervisor(dir));
        }
        Err(e) => return Err(e).with_context(|| format!("could not connect to {}", socket.display())),
    };
    let timeout = Some(Duration::from_millis(CONTROL_CLIENT_TIMEOUT_MS));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).with_context(|| format!("could not write to {}", socket.display()))?;
    let mut answer = String::new();
    BufReader::new((&stream).take(CONTROL_REPLY_MAX_BYTES))
        .read_line(&mut answer)
        .with_context(|| format!("no answer from the supervisor on {}", socket.display()))?;
    if answer.is_empty() {
        bail!("the supervisor on {} closed the connection without answering (is it stopping?)", socket.display());
    }
    serde_json::from_str(&answer).with_context(|| format!("the supervisor on {} answered {answer:?}", socket.display()))
}

/// Why nobody answers on DIR's socket, as an error that says what to do; stale state (the lock
/// is free, so its supervisor is dead) is removed on the way.
fn no_supervisor(dir: &Path) -> anyhow::Error {
    let d = dir.display();
    let path = dir.join(STATE_FILE);
    let file = match File::options().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return anyhow::anyhow!(
                "no testnet is running in {d} (no {}); start one with `ordo testnet --dir {d}`",
                path.display()
            );
        }
        Err(e) => return anyhow::anyhow!("could not open {}: {e}", path.display()),
    };
    match try_lock(&file) {
        Ok(true) => {
            let pid = recorded_pid(&file).map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
            // Holding the lock, nobody else can be starting a supervisor on these files.
            let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
            let _ = std::fs::remove_file(&path);
            anyhow::anyhow!("no testnet is running in {d} (stale state from pid {pid} removed); start one with `ordo testnet --dir {d}`")
        }
        Ok(false) => {
            let pid = recorded_pid(&file).map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
            anyhow::anyhow!(
                "the testnet supervisor of {d} (pid {pid}) holds {} but does not answer on {}; it may be starting or \
                 stopping: try again in a moment",
                path.display(),
                dir.join(SOCKET_FILE).display()
            )
        }
        Err(e) => anyhow::anyhow!("could not lock {}: {e}", path.display()),
    }
}

/// Takes the exclusive flock on `file` without waiting: `Ok(false)` when another process holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own, with valid flags, has no memory effects.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The supervisor pid a state file records, if it records one.
fn recorded_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["supervisor_pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}

/// What `testnet.state` holds.
#[derive(Serialize)]
struct StateRecord<'a> {
    supervisor_pid: u32,
    socket: &'a str,
    nodes: &'a [NodeState],
}

/// The supervisor's hold on DIR: `testnet.state`, flock-ed for as long as the supervisor lives.
pub struct StateFile {
    file: File,
    path: PathBuf,
}

impl StateFile {
    /// Takes DIR for this process, or refuses when a live supervisor holds it. Returns the pid of
    /// a dead supervisor whose state was left behind, if any.
    pub fn acquire(dir: &Path) -> anyhow::Result<(StateFile, Option<u32>)> {
        let path = dir.join(STATE_FILE);
        loop {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("could not open {}", path.display()))?;
            if !try_lock(&file).with_context(|| format!("could not lock {}", path.display()))? {
                let pid = recorded_pid(&file).map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
                bail!(
                    "a testnet is already running in {} (supervisor pid {pid}); stop it first (Ctrl-C in its terminal, \
                     or `kill -INT {pid}`), or use another --dir",
                    dir.display()
                );
            }
            // A client that found this file stale may have removed it between our open and our
            // lock: then we locked an orphaned inode, and must start again on the new path.
            let same = match std::fs::metadata(&path) {
                Ok(m) => {
                    let held = file.metadata()?;
                    m.ino() == held.ino() && m.dev() == held.dev()
                }
                Err(_) => false,
            };
            if same {
                let stale = recorded_pid(&file);
                return Ok((StateFile { file, path }, stale));
            }
        }
    }

    /// Rewrites the record in place (a rename would replace the inode, and with it the lock).
    pub fn write(&mut self, socket: &Path, nodes: &[NodeState]) -> io::Result<()> {
        let record =
            StateRecord { supervisor_pid: std::process::id(), socket: socket.to_str().unwrap_or(SOCKET_FILE), nodes };
        let mut text = serde_json::to_string_pretty(&record).map_err(io::Error::other)?;
        text.push('\n');
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())
    }

    /// Removes the record at a clean stop, while still holding the lock.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on DIR/testnet.sock (a stale socket file is replaced: the caller holds the state
/// lock, so no live supervisor owns it) and hands every request to the returned queue from a
/// thread of its own, one connection at a time.
pub fn serve(dir: &Path) -> anyhow::Result<(Receiver<Job>, PathBuf)> {
    let path = dir.join(SOCKET_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("could not remove the stale {}", path.display())),
    }
    let listener = UnixListener::bind(&path).with_context(|| {
        format!("could not listen on {} (a Unix socket path must be shorter than 108 bytes)", path.display())
    })?;
    let (jobs, queue) = mpsc::sync_channel(CONTROL_QUEUE_MAX);
    std::thread::Builder::new().name("testnet-control".into()).spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if !answer(stream, &jobs) {
                return; // The supervisor's loop is gone.
            }
        }
    })?;
    Ok((queue, path))
}

/// Reads one request from `stream`, has the supervisor's loop handle it and writes the reply.
/// Returns false once the loop no longer takes jobs.
fn answer(mut stream: UnixStream, jobs: &SyncSender<Job>) -> bool {
    let timeout = Some(Duration::from_millis(CONTROL_IO_TIMEOUT_MS));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return true;
    }
    let mut line = String::new();
    let read = BufReader::new((&stream).take(CONTROL_REQUEST_MAX_BYTES)).read_line(&mut line);
    let reply = match read {
        Err(e) => Reply::Error { message: format!("could not read the request: {e}") },
        Ok(_) if !line.ends_with('\n') => {
            Reply::Error { message: format!("a request is one JSON line of at most {CONTROL_REQUEST_MAX_BYTES} bytes") }
        }
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Error { message: format!("malformed request: {e}") },
            Ok(request) => {
                let (reply, answered) = mpsc::sync_channel(1);
                if jobs.send(Job { request, reply }).is_err() {
                    return false;
                }
                answered.recv_timeout(Duration::from_millis(CONTROL_IO_TIMEOUT_MS)).unwrap_or_else(|_| Reply::Error {
                    message: format!(
                        "the supervisor did not answer within {CONTROL_IO_TIMEOUT_MS} ms (is it stopping the \
                         testnet?); `ordo testnet nodes` shows what it did"
                    ),
                })
            }
        },
    };
    let mut text = serde_json::to_string(&reply).expect("a reply serializes");
    text.push('\n');
    let _ = stream.write_all(text.as_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_one_tagged_json_object() {
        let kill = Request::Fault { fault: Fault::Kill, node: "node2".into() };
        assert_eq!(serde_json::to_string(&kill).unwrap(), r#"{"op":"fault","fault":"kill","node":"node2"}"#);
        assert_eq!(serde_json::to_string(&Request::Nodes {}).unwrap(), r#"{"op":"nodes"}"#);
        assert!(serde_json::from_str::<Request>(r#"{"op":"fault","fault":"explode","node":"node2"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"nodes","extra":1}"#).is_err());
        let nodes = Reply::Nodes {
            nodes: vec![NodeState {
                name: "node1".into(),
                index: 1,
                api_url: "http://127.0.0.1:8081".into(),
                state: RunState::Stopped { status: "signal 9: SIGKILL".into() },
                pid: None,
            }],
        };
        let text = serde_json::to_string(&nodes).unwrap();
        assert!(text.contains(r#""state":{"kind":"stopped","status":"signal 9: SIGKILL"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), nodes);
    }

    #[test]
    fn a_live_supervisor_holds_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut held, stale) = StateFile::acquire(dir.path()).unwrap();
        assert_eq!(stale, None, "a fresh directory has no stale state");
        held.write(&dir.path().join(SOCKET_FILE), &[]).unwrap();
        let refused = StateFile::acquire(dir.path()).err().expect("a second supervisor is refused").to_string();
        assert!(refused.contains(&format!("already running in {}", dir.path().display())), "{refused}");
        assert!(refused.contains(&format!("supervisor pid {}", std::process::id())), "{refused}");
        // Without a socket, a client finds the lock held: it reports, and removes nothing.
        let err = nodes(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not answer"), "{err}");
        assert!(dir.path().join(STATE_FILE).exists());
        held.remove();
        assert!(!dir.path().join(STATE_FILE).exists());
        let (again, stale) = StateFile::acquire(dir.path()).unwrap();
        assert_eq!(stale, None);
        drop(again);
    }

    #[test]
    fn state_left_by_a_dead_supervisor_is_reported_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let err = apply_fault(dir.path(), "node1", Fault::Kill).unwrap_err().to_string();
        assert!(err.starts_with(&format!("no testnet is running in {} (no ", dir.path().display())), "{err}");

        // A record whose lock nobody holds, and the socket file a dead listener left.
        let state = dir.path().join(STATE_FILE);
        std::fs::write(&state, r#"{"supervisor_pid": 4242, "socket": "x", "nodes": []}"#).unwrap();
        drop(UnixListener::bind(dir.path().join(SOCKET_FILE)).unwrap());
        assert!(dir.path().join(SOCKET_FILE).exists());
        let err = apply_fault(dir.path(), "node1", Fault::Kill).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "no testnet is running in {d} (stale state from pid 4242 removed); start one with `ordo testnet --dir {d}`",
                d = dir.path().display()
            )
        );
        assert!(!state.exists() && !dir.path().join(SOCKET_FILE).exists(), "the stale files are gone");

        // A new supervisor takes over stale state, and learns whose it was.
        std::fs::write(&state, r#"{"supervisor_pid": 4243}"#).unwrap();
        let (_held, stale) = StateFile::acquire(dir.path()).unwrap();
        assert_eq!(stale, Some(4243));
    }
}
