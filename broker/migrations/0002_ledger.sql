-- Credits, verification and reputation (docs/ledger.md).

-- Verification and pricing of a workload. `quorum` is the number of
-- agreeing results a task needs (≤ replicas, the runs dispatched at once);
-- rates are credits per unit of fuel and per MiB-second of peak memory;
-- `fee_basis_points` is the broker's fee, fixed at submit; `escrow_micro`
-- what submit moved from the issuer into the workload's escrow account.
ALTER TABLE workloads ADD COLUMN quorum INTEGER NOT NULL DEFAULT 1;
ALTER TABLE workloads ADD COLUMN adaptive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workloads ADD COLUMN credits_per_mib_second REAL NOT NULL DEFAULT 0;
ALTER TABLE workloads ADD COLUMN fee_basis_points INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workloads ADD COLUMN escrow_micro INTEGER NOT NULL DEFAULT 0;

-- Whether a run was dispatched alone to a trusted agent (adaptive
-- replication): its OK result is accepted without a replica. `verdict` is
-- 'agreed' or 'disagreed' once the task has a result; `paid_micro` what the
-- run earned.
ALTER TABLE leases ADD COLUMN solo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN verdict TEXT;
ALTER TABLE leases ADD COLUMN paid_micro INTEGER NOT NULL DEFAULT 0;

-- Who runs an agent and from where (replicas can be kept apart by either),
-- and its record: results that agreed with the accepted one, that did not,
-- and agreeing results since it was last caught.
ALTER TABLE agents ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN results_valid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN results_invalid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN streak INTEGER NOT NULL DEFAULT 0;

-- Balances in micro-credits. Only the mint (the source of admin grants)
-- goes negative, so the sum of all balances is always zero and the sum of
-- all others is what was granted.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    balance     INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    CHECK (kind = 'mint' OR balance >= 0)
);
INSERT INTO accounts (id, kind, balance, created_ms) VALUES ('mint', 'mint', 0, 0);
INSERT INTO accounts (id, kind, balance, created_ms) VALUES ('broker', 'broker', 0, 0);

-- Double entry: every row moves `amount` from one account to another, in
-- the same transaction as the state change that causes it. `cause` is
-- unique (e.g. 'pay:<lease id>'), so nothing is posted twice.
CREATE TABLE ledger (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    cause         TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    from_account  TEXT NOT NULL REFERENCES accounts (id),
    to_account    TEXT NOT NULL REFERENCES accounts (id),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    workload_id   TEXT,
    idx           INTEGER,
    lease_id      TEXT,
    agent_id      TEXT,
    fuel          INTEGER,
    memo          TEXT,
    at_ms         INTEGER NOT NULL
);
CREATE INDEX ledger_by_from ON ledger (from_account, seq);
CREATE INDEX ledger_by_to ON ledger (to_account, seq);
CREATE INDEX ledger_by_workload ON ledger (workload_id, seq);
