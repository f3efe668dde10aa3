#!/usr/bin/python3
"""Writes, deletes and reads with session tokens through the miroir Python client.

    PYTHONPATH=build/python /usr/bin/python3 client/python/examples/example.py \\
        --workers 127.0.0.1:7500,127.0.0.1:7501 --index products --keys 20

Prints one JSON line per key as the session last wrote it (pk, deleted, body,
version, writer) and exits 0 when every read returned that write.
"""
import argparse
import json
import sys

import miroir


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", required=True, help="HOST:PORT,HOST:PORT")
    ap.add_argument("--index", default="products")
    ap.add_argument("--keys", type=int, default=20)
    args = ap.parse_args()

    client = miroir.Client(args.workers.split(","))
    session = client.session()

    # Bad input never leaves the process.
    bad = session.write([miroir.Mutation.put(args.index, "", {"n": 1}),
                         miroir.Mutation.put(args.index, "k", "[1, 2]")])
    assert [r.error for r in bad] == ["pk: must not be empty",
                                      "body: must be a JSON object, got list"], bad
    assert all(r.attempts == 0 for r in bad)

    keys = [f"py:{i}" for i in range(args.keys)]
    last = {}
    # Load every key in one batched write, then rewrite half and delete a quarter.
    results = session.write([miroir.Mutation.put(args.index, k, {"key": k, "round": 0}) for k in keys])
    for k, r in zip(keys, results):
        if not r.ok:
            print(f"error: {k}: {r.error}", file=sys.stderr)
            return 1
        last[k] = (False, json.dumps({"key": k, "round": 0}), r)
    for i, k in enumerate(keys):
        if i % 4 == 0:
            last[k] = (True, "", session.delete(args.index, k))
        elif i % 2 == 0:
            body = json.dumps({"key": k, "round": 1})
            last[k] = (False, body, session.put(args.index, k, body))

    # Read your writes: each read carries the key's token.
    ok = True
    for k in keys:
        deleted, body, ack = last[k]
        got = session.get(args.index, k)
        if got.found == deleted or (not deleted and got.body != body) or got.version < ack.version:
            print(f"error: {k}: read {got} after writing {body or 'a delete'}", file=sys.stderr)
            ok = False
        print(json.dumps({"pk": k, "deleted": deleted, "body": body, "version": ack.version,
                          "writer": ack.writer, "degraded_groups": ack.degraded_groups}))
    client.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
