"""Every Redis key eventmill uses, in one place.

All keys live under one prefix (`em:` by default) so several environments can share a
server. Values are orjson unless noted. The writer of each key is named so ownership
stays obvious when reading a MONITOR trace.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "em:"

    # --- registry (broker/registry.py) -------------------------------------------
    @property
    def functions(self) -> str:
        """SET of function names."""
        return f"{self.prefix}fns"

    def function(self, name: str) -> str:
        """STRING: orjson FunctionConfig (includes EventInvokeConfig and concurrency)."""
        return f"{self.prefix}fn:{name}"

    # --- event source mappings (broker/mappings.py; pollers settle their state) ---
    @property
    def mappings(self) -> str:
        """SET of event source mapping UUIDs."""
        return f"{self.prefix}esms"

    @property
    def mappings_changed(self) -> str:
        """Pub/sub channel: a mapping's UUID each time one is written, so pollers react at once."""
        return f"{self.prefix}esms:changed"

    def mapping(self, uuid: str) -> str:
        """STRING: orjson EventSourceMapping (written by the API / deploy, state moved by pollers)."""
        return f"{self.prefix}esm:{uuid}"

    # --- async event path (invoker/events.py, invoker/dispatch.py) -----------------
    def event(self, request_id: str) -> str:
        """STRING: orjson AsyncEvent record (payload, attempt, received time...). Deleted when final."""
        return f"{self.prefix}ev:{request_id}"

    @property
    def event_schedule(self) -> str:
        """ZSET request_id -> time (ms) the event may next be dispatched.

        The single source of truth for every accepted, unfinished async event: new
        events score "now"; a dispatched or running event scores its lease deadline, so a
        crashed worker's event simply becomes due again; retries and throttle back-offs
        score their run-at time (arq's idea: delay, retry and recovery are one ZSET).
        """
        return f"{self.prefix}async:schedule"

    @property
    def async_wake(self) -> str:
        """LIST of tokens: a producer pushes one so an idle dispatcher wakes at once (trimmed)."""
        return f"{self.prefix}async:wake"

    def notify(self, name: str) -> str:
        """LIST: final outcomes of async events that asked for notification (replay runs)."""
        return f"{self.prefix}notify:{name}"

    # --- sync invocations (broker/api, invoker/jobs.py) ---------------------------
    def sync_request(self, request_id: str) -> str:
        """STRING with TTL: orjson sync request (function, payload, client context) written by the API."""
        return f"{self.prefix}syncreq:{request_id}"

    @property
    def sync_pending(self) -> str:
        """LIST of sync request ids waiting for a dispatcher to hand them to a worker."""
        return f"{self.prefix}sync:pending"

    def sync_reply(self, request_id: str) -> str:
        """LIST: the worker LPUSHes the orjson outcome of a sync invoke; the API BLPOPs it."""
        return f"{self.prefix}sync:{request_id}"

    # --- concurrency (invoker/concurrency.py) -------------------------------------
    def concurrency(self, function: str) -> str:
        """ZSET slot holder (request id) -> lease deadline ms: running invocations of a function."""
        return f"{self.prefix}conc:{function}"

    # --- results and DLQ (invoker/results.py) -------------------------------------
    def result(self, request_id: str) -> str:
        """STRING with TTL: orjson invocation result."""
        return f"{self.prefix}res:{request_id}"

    def results_index(self, function: str) -> str:
        """ZSET request_id -> finish time ms, trimmed to the configured count."""
        return f"{self.prefix}resx:{function}"

    def logs(self, request_id: str) -> str:
        """STRING with TTL: the invocation's full log text (bounded)."""
        return f"{self.prefix}log:{request_id}"

    def dlq(self, function: str) -> str:
        """ZSET request_id -> discard time ms: our own DLQ index per function."""
        return f"{self.prefix}dlq:{function}"

    def dlq_record(self, request_id: str) -> str:
        """STRING: orjson DLQ record (original event + failure), kept until purged or redriven."""
        return f"{self.prefix}dlqr:{request_id}"

    def destination_list(self, name: str) -> str:
        """LIST: records delivered to a Redis-only destination (`redis:NAME`)."""
        return f"{self.prefix}dest:{name}"

    # --- metrics (invoker/metrics.py) ---------------------------------------------
    def metrics(self, scope: str) -> str:
        """HASH metric name -> number (counters and sums) for a function or mapping."""
        return f"{self.prefix}m:{scope}"

    @property
    def metric_scopes(self) -> str:
        """SET of scopes that have metrics."""
        return f"{self.prefix}m:scopes"

    # --- pollers (pollers/sqs.py) -------------------------------------------------
    def sqs_sequence(self, queue_arn: str) -> str:
        """STRING counter: SequenceNumbers eventmill synthesises for a FIFO queue whose emulator returns none."""
        return f"{self.prefix}sqsseq:{queue_arn}"

    def sqs_sequence_ids(self, queue_arn: str) -> str:
        """HASH message id -> the SequenceNumber synthesised for it, so a redelivery keeps its number."""
        return f"{self.prefix}sqsseqid:{queue_arn}"

    def sqs_turn_acks(self, queue_arn: str) -> str:
        """ZSET token -> expiry ms: deletes waiting for a turn on an emulated queue; receives let them go first."""
        return f"{self.prefix}sqsturnacks:{queue_arn}"

    def sqs_turn(self, queue_arn: str) -> str:
        """STRING with PX (redis-py Lock): the poll loop whose turn it is to call an emulated queue (pollers/sqs_queue.py)."""
        return f"{self.prefix}sqsturn:{queue_arn}"

    # --- stream mappings (pollers/leases.py, pollers/checkpoints.py) ---------------
    def stream_leases(self, mapping: str) -> str:
        """ZSET shard id -> lease deadline ms (Redis TIME): who may work a shard, renewed by heartbeat."""
        return f"{self.prefix}esm:{mapping}:lease"

    def stream_lease_owners(self, mapping: str) -> str:
        """HASH shard id -> owner (pollers process id) of the lease in stream_leases."""
        return f"{self.prefix}esm:{mapping}:leaseowner"

    def stream_owners(self, mapping: str) -> str:
        """ZSET owner -> heartbeat deadline ms: live pollers processes sharing a mapping's shards."""
        return f"{self.prefix}esm:{mapping}:owners"

    def stream_checkpoints(self, mapping: str) -> str:
        """HASH shard id -> last done sequence number, or SHARD_END; written owner-checked. Also
        `<shard>/window/<lane>` (tumbling-window state, pollers/stream_window.py) and
        `<shard>/start` (where LATEST resolved, before any checkpoint; pollers/stream_shard.py)."""
        return f"{self.prefix}esm:{mapping}:ckpt"

    def stream_inflight(self, mapping: str) -> str:
        """HASH shard id -> ms until which a batch of that shard may still run in a worker."""
        return f"{self.prefix}esm:{mapping}:inflight"

    def stream_backlog(self, mapping: str) -> str:
        """HASH shard id -> records read but not yet checkpointed (backlog estimate)."""
        return f"{self.prefix}esm:{mapping}:backlog"

    # --- workers -----------------------------------------------------------------
    @property
    def workers(self) -> str:
        """ZSET worker name -> heartbeat deadline ms."""
        return f"{self.prefix}workers"

    @property
    def rq_queue(self) -> str:
        """Name (not key) of the rq queue that carries invocation jobs."""
        return f"{self.prefix}invoke"
