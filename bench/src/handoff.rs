//! The baseline for round trips: the cost of handing an empty job to
//! another thread and waiting for its reply, with the same std channels
//! and boxed closures the runtime's executor uses, but no sandbox.
//!
//! A trivial task's round trip minus this is what the sandbox itself costs;
//! on a VM, a cross-CPU wake-up alone can take tens of microseconds.

use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};

use crate::stats::Summary;

type Job = Box<dyn FnOnce() + Send>;

/// Round trips of `iterations` empty jobs through one worker thread.
pub fn measure(iterations: usize) -> Result<Summary> {
    let (queue, jobs) = mpsc::channel::<Job>();
    let worker = thread::Builder::new()
        .name("bench-handoff".into())
        .spawn(move || {
            while let Ok(job) = jobs.recv() {
                job();
            }
        })
        .context("start hand-off thread")?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..=iterations {
        let (done, reply) = mpsc::channel::<()>();
        let started = Instant::now();
        queue
            .send(Box::new(move || {
                let _ = done.send(());
            }))
            .map_err(|_| anyhow!("hand-off thread gone"))?;
        reply.recv().context("hand-off reply")?;
        samples.push(started.elapsed());
    }
    drop(queue);
    worker
        .join()
        .map_err(|_| anyhow!("hand-off thread panicked"))?;
    // The first round trip also starts the thread: drop it as a warm-up.
    Summary::of(&samples[1..])
}
