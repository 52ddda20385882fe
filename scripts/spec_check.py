#!/usr/bin/env python3
"""An independent implementation of Ordo's external contract, protocol §3-§6, written from SPEC.md alone.

It shares no code with the Rust node: it exists to prove that a client written in another language
from the SPEC text can sign transactions the node accepts, and verify everything the node serves.
It needs Python 3.11 and the `cryptography` package (`python3 -m pip install cryptography`) for
ed25519; everything else is the standard library.

Subcommands:
  sign --seed HEX --chain-id ID --nonce N (--put K V | --delete K)
      prints the signed transaction as JSON (protocol §3).
  verify-tx [--chain-id ID]
      reads a transaction's JSON on stdin, verifies it strictly and prints its tx_id;
      exits 1 with the reason if it is rejected.
  check-vectors FILE
      re-derives every hash in docs/test-vectors.json, verifies every signature and certificate,
      replays the chain, and checks that every negative case is rejected; exits 1 at the first
      mismatch with the JSON path of the offending value.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("spec_check.py needs the `cryptography` package: python3 -m pip install cryptography\n")
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Errors


class Rejected(Exception):
    """An input the SPEC says to reject; `code` is the node's snake_case error code (protocol §7)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Mismatch(Exception):
    """A value in the vectors file that differs from what this implementation derives."""


# ---------------------------------------------------------------------------------------------
# Encoding primitives (SPEC conventions): big-endian integers, str(x) = u16 len || UTF-8 bytes.


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def u8(v: int) -> bytes:
    return struct.pack(">B", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)


def str16(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 0xFFFF:
        raise Rejected("malformed", "string longer than a u16 length can count")
    return struct.pack(">H", len(b)) + b


def bytes32(b: bytes) -> bytes:
    return u32(len(b)) + b


ZERO32 = bytes(32)


def unhex(value: object, n: int, what: str) -> bytes:
    """Decodes exactly n bytes of lowercase hex, as every hash, key and signature in JSON is."""
    if not isinstance(value, str) or len(value) != 2 * n or value != value.lower():
        raise Rejected("bad_hex", f"{what} must be {2 * n} lowercase hex characters, got {value!r}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Rejected("bad_hex", f"{what} is not hex: {value!r}") from None


# ---------------------------------------------------------------------------------------------
# Strict ed25519 (protocol §1). The `cryptography` package checks the signature equation; the extra
# rules of strict verification (canonical encodings, no small-order key or R, S < L) are checked
# here with a few lines of curve arithmetic (RFC 8032 §5.1), because OpenSSL does not reject
# small-order keys.

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _decode_point(b: bytes):
    """RFC 8032 §5.1.3 point decoding in extended coordinates; None if b is not a canonical point."""
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    sign = b[31] >> 7
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            return None
        x = 0
    else:
        x = pow(x2, (P + 3) // 8, P)
        if (x * x - x2) % P != 0:
            x = x * SQRT_M1 % P
        if (x * x - x2) % P != 0:
            return None
        if (x & 1) != sign:
            x = P - x
    return (x, y, 1, x * y % P)


def _point_add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _has_small_order(pt) -> bool:
    """True when [8]pt is the identity, i.e. pt lies in the 8-torsion subgroup."""
    for _ in range(3):
        pt = _point_add(pt, pt)
    return pt[0] % P == 0 and (pt[1] - pt[2]) % P == 0


def strict_verify_reason(public_key: bytes, message: bytes, signature: bytes) -> str | None:
    """None if the signature verifies strictly, else why it does not."""
    a = _decode_point(public_key)
    if a is None:
        return "public key is not a canonically encoded curve point"
    if _has_small_order(a):
        return "public key has small order"
    r = _decode_point(signature[:32])
    if r is None:
        return "R is not a canonically encoded curve point"
    if _has_small_order(r):
        return "R has small order"
    if int.from_bytes(signature[32:], "little") >= L:
        return "S is not reduced modulo L"
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return "signature does not verify"
    return None


def public_from_seed(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign_with_seed(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


# ---------------------------------------------------------------------------------------------
# Transactions (protocol §3)

TX_FIELDS = {"chain_id", "sender", "nonce", "op", "signature"}
TAG_PUT, TAG_DELETE = 1, 2


def _exact_fields(obj: object, want: set[str], what: str) -> dict:
    if not isinstance(obj, dict):
        raise Rejected("malformed", f"{what} must be a JSON object")
    if set(obj) != want:
        raise Rejected("malformed", f"{what} must have exactly the fields {sorted(want)}, got {sorted(obj)}")
    return obj


def _string(v: object, what: str) -> str:
    if not isinstance(v, str):
        raise Rejected("malformed", f"{what} must be a string")
    return v


def _uint(v: object, what: str, bits: int = 64) -> int:
    """A JSON integer that fits the SPEC's u64 (or u32) field; booleans are not integers here."""
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**bits:
        raise Rejected("malformed", f"{what} must be an integer in 0..2^{bits}-1, got {v!r}")
    return v


def parse_tx(obj: object) -> dict:
    """Checks the JSON shape of a transaction and returns it with its byte fields decoded."""
    tx = _exact_fields(obj, TX_FIELDS, "transaction")
    nonce = _uint(tx["nonce"], "nonce")
    op = tx["op"]
    if not isinstance(op, dict) or op.get("type") not in ("put", "delete"):
        raise Rejected("malformed", f"op must be a put or a delete, got {op!r}")
    if op["type"] == "put":
        _exact_fields(op, {"type", "key", "value"}, "put op")
        _string(op["value"], "op.value")
    else:
        _exact_fields(op, {"type", "key"}, "delete op")
    _string(op["key"], "op.key")
    return {
        "chain_id": _string(tx["chain_id"], "chain_id"),
        "sender": unhex(tx["sender"], 32, "sender"),
        "nonce": nonce,
        "op": op,
        "signature": unhex(tx["signature"], 64, "signature"),
    }


def op_bytes(op: dict) -> bytes:
    """u8 tag || u32 len(K) || K || [u32 len(V) || V]: shared by signing bytes and state writes."""
    key = op["key"].encode("utf-8")
    if op["type"] == "put":
        return u8(TAG_PUT) + bytes32(key) + bytes32(op["value"].encode("utf-8"))
    return u8(TAG_DELETE) + bytes32(key)


def signing_bytes(chain_id: str, sender: bytes, nonce: int, op: dict) -> bytes:
    return b"ordo/tx/v1" + str16(chain_id) + sender + u64(nonce) + op_bytes(op)


def tx_signing_bytes(tx: dict) -> bytes:
    return signing_bytes(tx["chain_id"], tx["sender"], tx["nonce"], tx["op"])


def verify_tx(obj: object, chain_id: str | None) -> bytes:
    """Returns the tx_id of a valid transaction; raises Rejected with the node's error code."""
    tx = parse_tx(obj)
    if chain_id is not None and tx["chain_id"] != chain_id:
        raise Rejected("wrong_chain_id", f"this chain is {chain_id!r}, the transaction names {tx['chain_id']!r}")
    msg = tx_signing_bytes(tx)
    reason = strict_verify_reason(tx["sender"], msg, tx["signature"])
    if reason is not None:
        raise Rejected("bad_signature", f"transaction {H(msg).hex()}: {reason}")
    return H(msg)


def make_tx(seed: bytes, chain_id: str, nonce: int, op: dict) -> dict:
    sender = public_from_seed(seed)
    sig = sign_with_seed(seed, signing_bytes(chain_id, sender, nonce, op))
    return {"chain_id": chain_id, "sender": sender.hex(), "nonce": nonce, "op": op, "signature": sig.hex()}


# ---------------------------------------------------------------------------------------------
# Blocks, state and certificates (protocol §4-§6)


def tx_root(ids: list[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash: H("") when empty, leaves H(0x00||id), nodes H(0x01||l||r)."""
    if not ids:
        return H(b"")
    if len(ids) == 1:
        return H(b"\x00" + ids[0])
    k = 1
    while k * 2 < len(ids):
        k *= 2
    return H(b"\x01" + tx_root(ids[:k]) + tx_root(ids[k:]))


def leaf_hash(tx_id: bytes) -> bytes:
    return H(b"\x00" + tx_id)


def batch_digest(chain_id: str, height: int, timestamp_ms: int, proposer: bytes, root: bytes, count: int) -> bytes:
    return H(b"ordo/batch/v1" + str16(chain_id) + u64(height) + u64(timestamp_ms) + proposer + root + u32(count))


def block_hash(prev_hash: bytes, digest: bytes, state: bytes) -> bytes:
    return H(b"ordo/block/v1" + prev_hash + digest + state)


def state_hash(prev: bytes, writes: bytes) -> bytes:
    return H(b"ordo/state/v1" + prev + H(writes))


def genesis_writes(state: dict) -> bytes:
    """writes0: the genesis state as puts sorted by key (bytewise, which is code-point order)."""
    return b"".join(op_bytes({"type": "put", "key": k, "value": state[k]}) for k in sorted(state))


def pbft_commit_bytes(chain_id: str, view: int, height: int, digest: bytes) -> bytes:
    return b"ordo/pbft/commit/v1" + str16(chain_id) + u64(view) + u64(height) + digest


def check_pbft_certificate(cert: object, chain_id: str, validators: list[bytes], height: int, digest: bytes) -> None:
    """protocol §6: signatures of at least 2f+1 distinct validators over the COMMIT signing bytes."""
    if not isinstance(cert, dict) or cert.get("kind") != "pbft":
        raise Rejected("bad_certificate", f"block {height}: expected a PBFT certificate, got {cert!r}")
    _exact_fields(cert, {"kind", "view", "height", "batch_digest", "signatures"}, "certificate")
    _uint(cert["view"], "certificate view")
    if not isinstance(cert["signatures"], list):
        raise Rejected("malformed", "certificate signatures must be a list")
    if cert["height"] != height:
        raise Rejected("bad_certificate", f"certificate is for height {cert['height']}, the block is {height}")
    if unhex(cert["batch_digest"], 32, "certificate batch_digest") != digest:
        raise Rejected("bad_certificate", f"block {height}: certificate names another batch digest")
    f = (len(validators) - 1) // 3
    msg = pbft_commit_bytes(chain_id, cert["view"], height, digest)
    seen: set[bytes] = set()
    for s in cert["signatures"]:
        _exact_fields(s, {"validator", "signature"}, "certificate signature")
        who = unhex(s["validator"], 32, "validator")
        if who not in validators:
            raise Rejected("bad_certificate", f"block {height}: signed by {who.hex()}, who is not a validator")
        if who in seen:
            raise Rejected("bad_certificate", f"block {height}: two signatures from {who.hex()}")
        seen.add(who)
        reason = strict_verify_reason(who, msg, unhex(s["signature"], 64, "certificate signature"))
        if reason is not None:
            raise Rejected("bad_certificate", f"block {height}: signature of {who.hex()}: {reason}")
    if len(seen) < 2 * f + 1:
        raise Rejected("bad_certificate", f"block {height}: {len(seen)} signatures, a quorum is 2f+1 = {2 * f + 1}")


BLOCK_FIELDS = {
    "height", "hash", "prev_hash", "batch_digest", "state_hash", "timestamp_ms",
    "proposer", "tx_root", "tx_count", "txs", "certificate",
}


def check_block(
    chain_id: str, validators: list[bytes], prev: dict, block: dict, committed: set[bytes]
) -> tuple[bytes, set[bytes]]:
    """Re-derives and checks block JSON `block` on top of `prev`, given the tx_ids committed before
    it. Returns the block's writes and the committed set after it; raises Rejected otherwise."""
    _exact_fields(block, BLOCK_FIELDS, "block")
    height = _uint(block["height"], "height")
    _uint(block["timestamp_ms"], "timestamp_ms")
    _uint(block["tx_count"], "tx_count", 32)
    if not isinstance(block["txs"], list):
        raise Rejected("malformed", "block txs must be a list")

    def mismatch(what: str, expected: object, got: object) -> Rejected:
        return Rejected("block_mismatch", f"block {height}: {what} is {got}, expected {expected}")

    if height != prev["height"] + 1:
        raise mismatch("height", prev["height"] + 1, height)
    if block["prev_hash"] != prev["hash"]:
        raise mismatch("prev_hash", prev["hash"], block["prev_hash"])
    if block["tx_count"] != len(block["txs"]):
        raise mismatch("tx_count", len(block["txs"]), block["tx_count"])
    ids, writes, after = [], b"", set(committed)
    for t in block["txs"]:
        body = {k: v for k, v in t.items() if k not in ("tx_id", "result")}
        tx_id = verify_tx(body, chain_id)
        if t.get("tx_id") != tx_id.hex():
            raise mismatch("tx_id", tx_id.hex(), t.get("tx_id"))
        ids.append(tx_id)
        # protocol §4: a tx_id already committed, earlier in the chain or in this block, is a duplicate.
        result = "duplicate" if tx_id in after else "applied"
        if t.get("result") != result:
            raise mismatch(f"result of {tx_id.hex()}", result, t.get("result"))
        if result == "applied":
            after.add(tx_id)
            writes += op_bytes(t["op"])
    root = tx_root(ids)
    if block["tx_root"] != root.hex():
        raise mismatch("tx_root", root.hex(), block["tx_root"])
    digest = batch_digest(
        chain_id, height, block["timestamp_ms"], unhex(block["proposer"], 32, "proposer"), root, len(ids)
    )
    if block["batch_digest"] != digest.hex():
        raise mismatch("batch_digest", digest.hex(), block["batch_digest"])
    sh = state_hash(unhex(prev["state_hash"], 32, "state_hash"), writes)
    if block["state_hash"] != sh.hex():
        raise mismatch("state_hash", sh.hex(), block["state_hash"])
    bh = block_hash(unhex(prev["hash"], 32, "hash"), digest, sh)
    if block["hash"] != bh.hex():
        raise mismatch("block_hash", bh.hex(), block["hash"])
    check_pbft_certificate(block["certificate"], chain_id, validators, height, digest)
    return writes, after


# ---------------------------------------------------------------------------------------------
# check-vectors


class Checker:
    """Compares derived values with the file's, naming the JSON path of each."""

    def __init__(self) -> None:
        self.count = 0

    def same(self, path: str, file_value: object, derived: object) -> None:
        if isinstance(derived, bytes):
            derived = derived.hex()
        if file_value != derived:
            raise Mismatch(f"{path}: the file has {file_value!r}, the SPEC gives {derived!r}")
        self.count += 1


def check_vectors(v: dict) -> int:
    c = Checker()
    chain_id = v["chain_id"]

    seeds: dict[str, bytes] = {}
    for group in ("clients", "validators"):
        for i, k in enumerate(v["keys"][group]):
            seed = unhex(k["seed"], 32, "seed")
            c.same(f"/keys/{group}/{i}/public_key", k["public_key"], public_from_seed(seed))
            seeds[k["name"]] = seed
    print(f"ok    keys: {len(seeds)} public keys derived from their seeds")

    for i, t in enumerate(v["transactions"]):
        at = f"/transactions/{i}"
        tx = parse_tx(t["tx"])
        msg = tx_signing_bytes(tx)
        c.same(f"{at}/signing_bytes", t["signing_bytes"], msg)
        c.same(f"{at}/tx_id", t["tx_id"], H(msg))
        c.same(f"{at}/signature", t["signature"], t["tx"]["signature"])
        try:
            c.same(f"{at} verified tx_id", t["tx_id"], verify_tx(t["tx"], chain_id))
        except Rejected as e:
            raise Mismatch(f"{at} ({t['name']}) does not verify: {e}") from None
        seed = seeds[t["signer"]]
        c.same(f"{at}/tx/sender", t["tx"]["sender"], public_from_seed(seed))
        # Ed25519 signatures are deterministic, so signing again must give the same bytes.
        c.same(f"{at} re-signed", t["signature"], sign_with_seed(seed, msg))
    print(f"ok    transactions: {len(v['transactions'])} signing bytes, tx_ids and signatures")

    for i, r in enumerate(v["tx_roots"]):
        at = f"/tx_roots/{i}"
        ids = [unhex(x, 32, "tx_id") for x in r["tx_ids"]]
        c.same(f"{at}/leaves", r["leaves"], len(ids))
        c.same(f"{at}/leaf_hashes", r["leaf_hashes"], [leaf_hash(x).hex() for x in ids])
        c.same(f"{at}/root", r["root"], tx_root(ids))
    print(f"ok    tx_roots: {len(v['tx_roots'])} Merkle roots")

    g = v["chain"]["genesis"]
    c.same("/chain/genesis/chain_id", g["chain_id"], chain_id)
    validators = [unhex(x["public_key"], 32, "validator public_key") for x in g["validators"]]
    entries = v["chain"]["blocks"]
    blocks: list[dict] = []
    committed_after: list[set[bytes]] = []
    committed: set[bytes] = set()
    for h, e in enumerate(entries):
        at = f"/chain/blocks/{h}"
        b = e["block"]
        c.same(f"{at}/height", e["height"], h)
        if h == 0:
            # protocol §2: the genesis block.
            writes = genesis_writes(g["state"])
            root = H(b"")
            digest = batch_digest(chain_id, 0, g["genesis_time_ms"], ZERO32, root, 0)
            sh = state_hash(ZERO32, writes)
            bh = block_hash(ZERO32, digest, sh)
            expected = {
                "height": 0, "hash": bh.hex(), "prev_hash": ZERO32.hex(), "batch_digest": digest.hex(),
                "state_hash": sh.hex(), "timestamp_ms": g["genesis_time_ms"], "proposer": ZERO32.hex(),
                "tx_root": root.hex(), "tx_count": 0, "txs": [], "certificate": None,
            }
            c.same(f"{at}/block", b, expected)
        else:
            try:
                writes, committed = check_block(chain_id, validators, blocks[-1], b, committed)
            except Rejected as err:
                raise Mismatch(f"{at} is rejected: {err}") from None
            commit = pbft_commit_bytes(chain_id, e["commit_view"], h, unhex(b["batch_digest"], 32, "batch_digest"))
            c.same(f"{at}/commit_view", e["commit_view"], b["certificate"]["view"])
            c.same(f"{at}/commit_signing_bytes", e["commit_signing_bytes"], commit)
        c.same(f"{at}/writes", e["writes"], writes)
        c.same(f"{at}/writes_hash", e["writes_hash"], H(writes))
        for name in ("state_hash", "batch_digest", "tx_root"):
            c.same(f"{at}/{name}", e[name], b[name])
        c.same(f"{at}/block_hash", e["block_hash"], b["hash"])
        blocks.append(b)
        committed_after.append(set(committed))
    print(f"ok    chain: genesis and {len(entries) - 1} blocks, every hash and certificate")

    for i, n in enumerate(v["negative"]["transactions"]):
        at = f"/negative/transactions/{i}"
        try:
            verify_tx(n["tx"], chain_id)
        except Rejected as e:
            c.same(f"{at}/error", n["error"], e.code)
        else:
            raise Mismatch(f"{at} ({n['name']}) verifies, but the file says it must be rejected")
    for i, n in enumerate(v["negative"]["blocks"]):
        at = f"/negative/blocks/{i}"
        parent = n["parent_height"]
        try:
            check_block(chain_id, validators, blocks[parent], n["block"], committed_after[parent])
        except Rejected as e:
            c.same(f"{at}/error", n["error"], e.code)
        else:
            raise Mismatch(f"{at} ({n['name']}) is accepted, but the file says it must be rejected")
    negatives = len(v["negative"]["transactions"]) + len(v["negative"]["blocks"])
    print(f"ok    negative cases: {negatives} rejected with the stated error code")
    return c.count


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str]) -> int:
    sys.stdout.reconfigure(encoding="utf-8")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sign", help="sign a transaction and print its JSON")
    p.add_argument("--seed", required=True, help="the 32-byte ed25519 seed, 64 hex characters")
    p.add_argument("--chain-id", required=True)
    p.add_argument("--nonce", required=True, type=int)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--put", nargs=2, metavar=("KEY", "VALUE"))
    what.add_argument("--delete", metavar="KEY")

    p = sub.add_parser("verify-tx", help="verify a transaction JSON read on stdin and print its tx_id")
    p.add_argument("--chain-id", help="also require this chain id")

    p = sub.add_parser("check-vectors", help="re-derive and check every value of a test-vectors file")
    p.add_argument("file")

    args = parser.parse_args(argv)
    try:
        if args.command == "sign":
            if not 0 <= args.nonce < 2**64:
                raise Rejected("malformed", "--nonce must be in 0..2^64-1")
            op = (
                {"type": "put", "key": args.put[0], "value": args.put[1]}
                if args.put
                else {"type": "delete", "key": args.delete}
            )
            print(json.dumps(make_tx(unhex(args.seed, 32, "--seed"), args.chain_id, args.nonce, op), ensure_ascii=False))
        elif args.command == "verify-tx":
            try:
                obj = json.loads(sys.stdin.buffer.read().decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise Rejected("malformed_json", str(e)) from None
            print(verify_tx(obj, args.chain_id).hex())
        else:
            with open(args.file, encoding="utf-8") as fh:
                vectors = json.load(fh)
            n = check_vectors(vectors)
            print(f"all {n} checks passed: {args.file} agrees with this independent implementation of protocol §3-§6")
    except Rejected as e:
        sys.stderr.write(f"rejected: {e}\n")
        return 1
    except Mismatch as e:
        sys.stderr.write(f"MISMATCH {e}\n")
        return 1
    except (KeyError, IndexError, TypeError) as e:
        sys.stderr.write(f"MISMATCH: the vectors file is missing or misshapes a field: {e!r}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
