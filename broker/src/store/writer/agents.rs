//! `agents`, as the writer changes it: last-seen times and records.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use crate::error::BrokerResult;

/// Notes that the agent was heard from.
pub fn touch(conn: &Connection, agent_id: &str, now_ms: i64) -> BrokerResult<()> {
    conn.prepare_cached("UPDATE agents SET last_seen_ms = ? WHERE id = ?")?
        .execute(params![now_ms, agent_id])?;
    Ok(())
}

/// Verified results for agents' records, gathered while a call settles
/// tasks and added with one `UPDATE` per agent when it is done
/// ([`ResultTally::store`]): the reports of one `ReportResults` call are
/// mostly one agent's. An agreeing result extends the agent's streak, a
/// disagreeing one ends it.
#[derive(Debug, Default)]
pub struct ResultTally {
    agents: HashMap<String, Tally>,
}

/// One agent's share of a [`ResultTally`].
#[derive(Debug, Default)]
struct Tally {
    valid: i64,
    invalid: i64,
    /// A disagreeing result ended the streak: it starts again from
    /// `streak`.
    ended: bool,
    /// Agreeing results since the last disagreeing one (or the start).
    streak: i64,
}

impl ResultTally {
    /// Notes one verified result of `agent_id`.
    pub fn add(&mut self, agent_id: &str, agreed: bool) {
        let tally = self.agents.entry(agent_id.to_owned()).or_default();
        if agreed {
            tally.valid += 1;
            tally.streak += 1;
        } else {
            tally.invalid += 1;
            tally.ended = true;
            tally.streak = 0;
        }
    }

    /// Adds the results noted to the agents' records.
    pub fn store(self, conn: &Connection) -> BrokerResult<()> {
        let mut statement = conn.prepare_cached(
            "UPDATE agents SET results_valid = results_valid + ?,
                 results_invalid = results_invalid + ?,
                 streak = CASE WHEN ? THEN 0 ELSE streak END + ?
             WHERE id = ?",
        )?;
        for (agent_id, tally) in self.agents {
            statement.execute(params![
                tally.valid,
                tally.invalid,
                tally.ended,
                tally.streak,
                agent_id
            ])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(conn: &Connection, id: &str) -> (i64, i64, i64) {
        conn.query_row(
            "SELECT results_valid, results_invalid, streak FROM agents WHERE id = ?",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("the agent's record")
    }

    #[test]
    fn a_tally_adds_results_and_streaks_as_one_by_one_would() {
        let conn = Connection::open_in_memory().expect("in-memory store");
        conn.execute_batch(
            "CREATE TABLE agents (id TEXT PRIMARY KEY, results_valid INTEGER NOT NULL,
                 results_invalid INTEGER NOT NULL, streak INTEGER NOT NULL);
             INSERT INTO agents VALUES ('steady', 5, 1, 3), ('slipped', 5, 1, 3), ('idle', 2, 0, 2);",
        )
        .expect("agents");
        let mut tally = ResultTally::default();
        for agreed in [true, true] {
            tally.add("steady", agreed);
        }
        for agreed in [true, false, true, true] {
            tally.add("slipped", agreed);
        }
        tally.store(&conn).expect("stored");
        assert_eq!(record(&conn, "steady"), (7, 1, 5), "the streak goes on");
        assert_eq!(
            record(&conn, "slipped"),
            (8, 2, 2),
            "the streak starts again after the disagreeing result"
        );
        assert_eq!(record(&conn, "idle"), (2, 0, 2), "untouched");
    }
}
