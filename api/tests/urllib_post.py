"""Posts one body to a URL N times with Python's urllib, as a plain Python client does, and prints
one JSON line per attempt: {"status": ..., "body": "...", "connection": "..."} for an answer, or
{"error": "..."} when the client failed before it got one (the "[Errno 32] Broken pipe" that
tests/oversized_bodies.rs exists to rule out).

Usage: urllib_post.py URL COUNT length|chunked < BODY
  length   sends the body with its Content-Length, as urllib does for bytes;
  chunked  sends it with Transfer-Encoding: chunked, 64 KiB a chunk, as urllib does for an
           iterable of unknown length.

Standard library only, on purpose: this is the client a user writes first.
"""

import json
import sys
import urllib.error
import urllib.request

CHUNK_BYTES = 64 * 1024


def chunks(body):
    for start in range(0, len(body), CHUNK_BYTES):
        yield body[start : start + CHUNK_BYTES]


def post(opener, url, body, mode):
    data = body if mode == "length" else chunks(body)
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=60) as response:
            return {"status": response.status, "body": response.read().decode(), "connection": response.headers.get("Connection")}
    except urllib.error.HTTPError as answer:
        return {"status": answer.code, "body": answer.read().decode(), "connection": answer.headers.get("Connection")}
    except Exception as failure:  # noqa: BLE001 - any failure to get an answer is what we report
        return {"error": f"{type(failure).__name__}: {failure}"}


def main():
    url, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode not in ("length", "chunked"):
        sys.exit(f"mode must be length or chunked, got {mode!r}")
    body = sys.stdin.buffer.read()
    # No proxy: the server is on loopback, and a proxy from the environment would answer instead.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(count):
        print(json.dumps(post(opener, url, body, mode)), flush=True)


if __name__ == "__main__":
    main()
