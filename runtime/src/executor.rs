//! The threads tasks run on. Wasm runs synchronously on the calling thread's
//! native stack, so tasks need threads with room for the largest wasm stack
//! plus host headroom (tokio's blocking threads have 2 MiB; too little for
//! an 8 MiB wasm stack, which would abort the process instead of trapping).
//! The number of threads is the number of tasks that run at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use crate::RuntimeError;
use crate::limits::MAX_STACK_BYTES;

/// Native stack beyond the wasm stack: host calls, wasmtime's trampolines
/// and signal handling run there.
const HOST_STACK_HEADROOM: usize = 2 << 20;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of task threads fed from one queue.
pub(crate) struct Executor {
    queue: Mutex<Option<Sender<Job>>>,
}

impl Executor {
    pub(crate) fn start(threads: usize) -> Result<Self, RuntimeError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for index in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("wasmgrid-task-{index}"))
                .stack_size(MAX_STACK_BYTES + HOST_STACK_HEADROOM)
                .spawn(move || work(&jobs))
                .map_err(RuntimeError::Thread)?;
        }
        Ok(Executor {
            queue: Mutex::new(Some(queue)),
        })
    }

    /// Queues `job`; it runs on the next free task thread.
    pub(crate) fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), RuntimeError> {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue
            .as_ref()
            .ok_or(RuntimeError::ShuttingDown)?
            .send(Box::new(job))
            .map_err(|_| RuntimeError::ShuttingDown)
    }
}

impl Drop for Executor {
    /// Closing the queue lets each thread finish its current task and exit.
    fn drop(&mut self) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        // A panic is a host bug; it must cost one task, not the thread. The
        // job's result channel is dropped, which its waiter reports.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a task panicked on the host side");
        }
    }
}
