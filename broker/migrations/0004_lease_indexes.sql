-- Index maintenance on the dispatch path (docs/performance.md, issue 7):
-- both lease indexes contained `state`, so every lease moved inside both at
-- each transition. Only active leases are looked up by deadline: keep just
-- those in that index, which a lease leaves once when it ends. Leases are
-- looked up by agent in every state (agent statistics): index the agent
-- alone, which never changes.
DROP INDEX leases_by_state;
DROP INDEX leases_by_agent;
CREATE INDEX leases_active_by_deadline ON leases (deadline_ms) WHERE state = 'active';
CREATE INDEX leases_by_agent ON leases (agent_id);
