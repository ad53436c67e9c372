-- The broker's durable state. The store is the truth: the scheduler's
-- in-memory state is rebuilt from these tables at start.

-- Modules (tasks and reducers), stored once per sha256.
CREATE TABLE modules (
    sha256      TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    size        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    -- sha256 of the bearer token; the token itself is never stored.
    token_sha256   TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    os             TEXT NOT NULL,
    arch           TEXT NOT NULL,
    cores          INTEGER NOT NULL,
    memory_bytes   INTEGER NOT NULL,
    slots          INTEGER NOT NULL,
    version        TEXT NOT NULL,
    registered_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL
);

-- state: running | done | failed | cancelled
CREATE TABLE workloads (
    id                TEXT PRIMARY KEY,
    issuer            TEXT NOT NULL,
    name              TEXT NOT NULL,
    module_sha256     TEXT NOT NULL REFERENCES modules (sha256),
    reducer_sha256    TEXT REFERENCES modules (sha256),
    memory_bytes      INTEGER NOT NULL,
    fuel              INTEGER NOT NULL,
    wall_time_ms      INTEGER NOT NULL,
    max_output_bytes  INTEGER NOT NULL,
    max_stack_bytes   INTEGER NOT NULL,
    replicas          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    credits_per_fuel  REAL NOT NULL,
    task_count        INTEGER NOT NULL,
    state             TEXT NOT NULL,
    error             TEXT,
    result            BLOB,
    reduced           INTEGER NOT NULL DEFAULT 0,
    created_ms        INTEGER NOT NULL,
    finished_ms       INTEGER
);

-- state: pending | done | failed | cancelled. Whether a pending task is
-- queued or running follows from its active leases.
CREATE TABLE tasks (
    workload_id     TEXT NOT NULL REFERENCES workloads (id),
    idx             INTEGER NOT NULL,
    input           BLOB NOT NULL,
    state           TEXT NOT NULL,
    -- the accepted result (state done), or why the task failed
    output          BLOB,
    status_kind     INTEGER,
    status_code     INTEGER,
    status_message  TEXT,
    fuel_consumed   INTEGER,
    peak_memory     INTEGER,
    wall_time_ms    INTEGER,
    error           TEXT,
    finished_ms     INTEGER,
    PRIMARY KEY (workload_id, idx)
);
CREATE INDEX tasks_by_state ON tasks (workload_id, state);

-- One row per run of a task on an agent.
-- state: active | reported | expired | released | revoked
CREATE TABLE leases (
    id                TEXT PRIMARY KEY,
    workload_id       TEXT NOT NULL,
    idx               INTEGER NOT NULL,
    agent_id          TEXT NOT NULL REFERENCES agents (id),
    state             TEXT NOT NULL,
    started_ms        INTEGER NOT NULL,
    deadline_ms       INTEGER NOT NULL,
    ended_ms          INTEGER,
    -- whether the report counted towards the task (the lease was active)
    counted           INTEGER NOT NULL DEFAULT 0,
    status_kind       INTEGER,
    status_code       INTEGER,
    status_message    TEXT,
    output_sha256     TEXT,
    output            BLOB,
    stderr            BLOB,
    fuel_consumed     INTEGER,
    peak_memory       INTEGER,
    wall_time_ms      INTEGER,
    metering_version  TEXT
);
CREATE INDEX leases_by_task ON leases (workload_id, idx);
CREATE INDEX leases_by_state ON leases (state, deadline_ms);
CREATE INDEX leases_by_agent ON leases (agent_id, state);

-- Every transition of a task, with agent and time.
CREATE TABLE task_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workload_id  TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    event        TEXT NOT NULL,
    lease_id     TEXT,
    agent_id     TEXT,
    at_ms        INTEGER NOT NULL,
    detail       TEXT
);
CREATE INDEX task_events_by_task ON task_events (workload_id, idx);
