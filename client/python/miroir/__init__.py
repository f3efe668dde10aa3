"""miroir Python client: the session semantics of the C++ client (client/include/miroir/client.h).

A Session writes and reads through the DataPlane API of a list of workers:

- input is validated before any RPC with the worker's rules (index non-empty,
  pk 1..511 bytes, a put's body a JSON object without "_miroir_*" fields,
  expires_at_ms >= 0): InvalidArgument naming the field, never sent;
- per (index, pk) it keeps the version of the last acknowledged operation and
  passes it as after_version, so sequential operations on a key keep the
  promise of DESIGN §4 whichever worker stamps them;
- acks UNAVAILABLE / ABORTED / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED are
  retried with bounded, jittered exponential backoff; the error ack's version
  raises the key's after_version; other codes are final;
- a broken stream moves the session to the next worker; items sent without an
  ack are retried with after_version raised to the client's clock plus
  clock_skew_allowance (their first attempt's version is unknown);
- get() passes the key's acknowledged version (read your writes).

Stubs (miroir.v1.*_pb2, *_pb2_grpc) are generated at build time from
proto/miroir/v1 into build/python/miroir/v1; run with PYTHONPATH=build/python
and Debian's python3-grpcio and python3-protobuf.
"""

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

import grpc

from miroir.v1 import dataplane_pb2 as pb
from miroir.v1 import dataplane_pb2_grpc as pb_grpc

__all__ = ["Client", "Session", "Mutation", "WriteResult", "ReadResult", "MiroirError",
           "classify_write_ack", "validate_mutation"]

MAX_PK_BYTES = 511  # worker/write_validation.h kMaxPkBytes
RESERVED_PREFIX = "_miroir_"

OK, DEADLINE_EXCEEDED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED = 0, 4, 3, 8
FAILED_PRECONDITION, ABORTED, UNAVAILABLE = 9, 10, 14
RETRYABLE = {UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED}


class _Broken(Exception):
    def __init__(self, code: int, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class MiroirError(Exception):
    """A final error: `code` is the gRPC status code number, `message` one line."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{grpc_code_name(code)}: {message}")
        self.code = code
        self.message = message


def grpc_code_name(code: int) -> str:
    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c.name
    return str(code)


@dataclass
class Mutation:
    index: str
    pk: str
    body: Optional[Union[str, dict]] = None  # None: a delete
    expires_at_ms: int = 0

    @staticmethod
    def put(index: str, pk: str, body: Union[str, dict], expires_at_ms: int = 0) -> "Mutation":
        return Mutation(index, pk, body if body is not None else "", expires_at_ms)

    @staticmethod
    def delete(index: str, pk: str) -> "Mutation":
        return Mutation(index, pk, None)

    @property
    def is_delete(self) -> bool:
        return self.body is None

    def body_text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


@dataclass
class WriteResult:
    code: int = UNAVAILABLE
    error: str = "not sent"
    version: int = 0
    writer: int = 0
    degraded_groups: List[str] = field(default_factory=list)
    shard: int = 0
    epoch: int = 0
    attempts: int = 0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.code == OK


@dataclass
class ReadResult:
    found: bool
    body: str
    version: int
    writer: int
    node: str
    worker: str


def classify_write_ack(code: int) -> str:
    """'done', 'retry' or 'final' (the C++ ClassifyWriteAck)."""
    if code == OK:
        return "done"
    return "retry" if code in RETRYABLE else "final"


def validate_mutation(m: Mutation) -> Optional[str]:
    """None, or the one-line INVALID_ARGUMENT message naming the field."""
    if not m.index:
        return "index: must not be empty"
    pk_bytes = len(m.pk.encode("utf-8"))
    if pk_bytes == 0:
        return "pk: must not be empty"
    if pk_bytes > MAX_PK_BYTES:
        return f"pk: {pk_bytes} bytes is over the limit of {MAX_PK_BYTES}"
    if m.is_delete:
        return None
    if m.expires_at_ms < 0:
        return "expires_at_ms: must not be negative"
    try:
        doc = json.loads(m.body_text())
    except ValueError:
        return "body: malformed JSON"
    if not isinstance(doc, dict):
        return f"body: must be a JSON object, got {type(doc).__name__}"
    for k in doc:
        if k.startswith(RESERVED_PREFIX):
            return f"body: field '{k}' is reserved (_miroir_* fields are not allowed)"
    return None


def _backoff(retry: int, initial: float, maximum: float) -> float:
    d = min(maximum, initial * (2 ** min(retry - 1, 30)))
    return d - d * random.random() / 2


class Client:
    """Channels to the workers; shared by its sessions."""

    def __init__(self, workers: Sequence[str], call_timeout: float = 10.0, max_attempts: int = 6,
                 initial_backoff: float = 0.05, max_backoff: float = 2.0,
                 max_batch_items: int = 256, max_batches_in_flight: int = 4,
                 clock_skew_allowance: float = 0.5):
        if not workers:
            raise MiroirError(INVALID_ARGUMENT, "workers: at least one HOST:PORT")
        if max_attempts < 1:
            raise MiroirError(INVALID_ARGUMENT, "max_attempts: must be >= 1")
        if not 1 <= max_batch_items <= 10000:
            raise MiroirError(INVALID_ARGUMENT, "max_batch_items: must be in 1..10000")
        if max_batches_in_flight < 1:
            raise MiroirError(INVALID_ARGUMENT, "max_batches_in_flight: must be >= 1")
        self.workers = list(workers)
        self.call_timeout = call_timeout
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_batch_items = max_batch_items
        self.max_batches_in_flight = max_batches_in_flight
        self.clock_skew_allowance = clock_skew_allowance
        opts = [("grpc.keepalive_time_ms", 10000), ("grpc.keepalive_timeout_ms", 5000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)]
        self._channels = [grpc.insecure_channel(w, options=opts) for w in self.workers]
        self._stubs = [pb_grpc.DataPlaneStub(c) for c in self._channels]

    def session(self) -> "Session":
        return Session(self)

    def close(self) -> None:
        for c in self._channels:
            c.close()


class Session:
    """Per-key tokens over the client's workers. Thread-safe; ops on one key must be sequential."""

    def __init__(self, client: Client):
        self._c = client
        self._mu = threading.Lock()
        self._acked = {}  # (index, pk) -> last acknowledged version (the read token)
        self._after = {}  # (index, pk) -> what the next write passes (>= acked)
        self._current = 0

    # ---- tokens ----
    def acked_version(self, index: str, pk: str) -> int:
        with self._mu:
            return self._acked.get((index, pk), 0)

    def after_version(self, index: str, pk: str) -> int:
        with self._mu:
            return self._after.get((index, pk), 0)

    def current_worker(self) -> str:
        with self._mu:
            return self._c.workers[self._current]

    def _acknowledged(self, key, version: int) -> None:
        with self._mu:
            self._acked[key] = max(self._acked.get(key, 0), version)
            self._after[key] = max(self._after.get(key, 0), version)

    def _raise_after(self, key, version: int) -> None:
        with self._mu:
            self._after[key] = max(self._after.get(key, 0), version)

    def _fail_over(self, failed: int) -> None:
        with self._mu:
            if self._current == failed:
                self._current = (self._current + 1) % len(self._c.workers)

    # ---- writes ----
    def write(self, mutations: Sequence[Mutation]) -> List[WriteResult]:
        results = [WriteResult() for _ in mutations]
        pending, seen = [], set()
        for i, m in enumerate(mutations):
            err = validate_mutation(m)
            if err is None and (m.index, m.pk) in seen:
                err = (f"pk: '{m.pk}' appears more than once in one write (operations on a key "
                       f"must be sequential: write it again after this call)")
            if err is not None:
                results[i].code, results[i].error = INVALID_ARGUMENT, err
                continue
            seen.add((m.index, m.pk))
            pending.append(i)
        for attempt in range(1, self._c.max_attempts + 1):
            if not pending:
                break
            if attempt > 1:
                time.sleep(_backoff(attempt - 1, self._c.initial_backoff, self._c.max_backoff))
            with self._mu:
                w = self._current
            pending, broken = self._round(w, mutations, pending, results)
            if broken:
                self._fail_over(w)
        return results

    def _item(self, m: Mutation) -> pb.WriteItem:
        it = pb.WriteItem(after_version=self.after_version(m.index, m.pk))
        if m.is_delete:
            it.delete.index, it.delete.pk = m.index, m.pk
        else:
            it.put.index, it.put.pk = m.index, m.pk
            it.put.body, it.put.expires_at_ms = m.body_text(), m.expires_at_ms
        return it

    def _round(self, w: int, mutations, items: List[int], results: List[WriteResult]):
        c = self._c
        per = c.max_batch_items
        batches = [items[i:i + per] for i in range(0, len(items), per)]
        window = threading.Semaphore(c.max_batches_in_flight)
        built = [0]  # batches handed to gRPC
        stop = threading.Event()

        def requests():
            for b, idx in enumerate(batches):
                while not window.acquire(timeout=0.1):  # back-pressure: bounded in flight
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                batch = pb.WriteBatch(batch_id=b, items=[self._item(mutations[i]) for i in idx])
                for i in idx:
                    results[i].attempts += 1
                    results[i].worker = c.workers[w]
                built[0] = b + 1
                yield batch

        retry, acked = [], 0
        call = c._stubs[w].Write(requests(), timeout=c.call_timeout * len(batches))
        try:
            for acks in call:
                idx = batches[acked]
                if acks.batch_id != acked or len(acks.acks) != len(idx):
                    call.cancel()
                    raise _Broken(UNAVAILABLE, "acks out of protocol")
                for i, ack in zip(idx, acks.acks):
                    r, key = results[i], (mutations[i].index, mutations[i].pk)
                    r.code, r.error = ack.code, ack.error
                    kind = classify_write_ack(ack.code)
                    if kind == "done":
                        r.error, r.version, r.writer = "", ack.version, ack.writer
                        r.degraded_groups, r.shard, r.epoch = list(ack.degraded_groups), ack.shard, ack.epoch
                        self._acknowledged(key, ack.version)
                    else:
                        self._raise_after(key, ack.version)
                        if kind == "retry":
                            retry.append(i)
                acked += 1
                window.release()
                if acked == len(batches):
                    break
            if acked < len(batches):
                raise _Broken(UNAVAILABLE, "stream ended before every batch was acknowledged")
            return retry, False
        except (grpc.RpcError, _Broken) as e:
            stop.set()
            if isinstance(e, _Broken):
                code, detail = e.code, e.detail
            else:
                code, detail = e.code().value[0], e.details()
            floor = int((time.time() + c.clock_skew_allowance) * 1000) << 16
            again = code in RETRYABLE
            for b in range(acked, len(batches)):
                for i in batches[b]:
                    r = results[i]
                    r.code = code
                    if b < built[0]:
                        self._raise_after((mutations[i].index, mutations[i].pk), floor)
                        r.error = f"outcome unknown: stream to worker {c.workers[w]} failed: {detail}"
                    else:
                        r.error = f"not sent: stream to worker {c.workers[w]} failed: {detail}"
                    if again:
                        retry.append(i)
            return retry, True

    def put(self, index: str, pk: str, body: Union[str, dict], expires_at_ms: int = 0) -> WriteResult:
        r = self.write([Mutation.put(index, pk, body, expires_at_ms)])[0]
        if not r.ok:
            raise MiroirError(r.code, r.error)
        return r

    def delete(self, index: str, pk: str) -> WriteResult:
        r = self.write([Mutation.delete(index, pk)])[0]
        if not r.ok:
            raise MiroirError(r.code, r.error)
        return r

    # ---- reads ----
    def get(self, index: str, pk: str) -> ReadResult:
        err = validate_mutation(Mutation.delete(index, pk))
        if err is not None:
            raise MiroirError(INVALID_ARGUMENT, err)
        c, key = self._c, (index, pk)
        last = MiroirError(UNAVAILABLE, "no attempt")
        for attempt in range(1, c.max_attempts + 1):
            if attempt > 1:
                time.sleep(_backoff(attempt - 1, c.initial_backoff, c.max_backoff))
            with self._mu:
                w = self._current
            req = pb.GetRequest(index=index, pk=pk, after_version=self.acked_version(index, pk))
            try:
                resp = c._stubs[w].Get(req, timeout=c.call_timeout)
            except grpc.RpcError as e:
                code = e.code().value[0]
                last = MiroirError(code, e.details())
                if code == FAILED_PRECONDITION:
                    continue  # the read set does not hold the token yet
                if code not in RETRYABLE:
                    raise last
                self._fail_over(w)
                continue
            d = resp.document
            if d.version:
                self._acknowledged(key, d.version)  # monotonic reads
            return ReadResult(resp.found, d.body if resp.found else "", d.version, d.writer,
                              resp.node, c.workers[w])
        raise last
