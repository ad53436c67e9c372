//! `wasmgrid results`: a workload's end result, or its task outputs, on
//! stdout or as files in a directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use wasmgrid_proto::status_from_wire;
use wasmgrid_proto::v1::result_item::Item;
use wasmgrid_proto::v1::{EndResult, TaskResult, WorkloadRequest};

use crate::client::{Broker, BrokerArgs};

/// Arguments of `wasmgrid results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The workload id, as printed by `wasmgrid submit`.
    id: String,
    /// Write the results into this directory (created if needed) instead of
    /// stdout: task-000000.out per task, `result` for a reduced end result,
    /// failures.txt listing failed tasks.
    #[arg(long, short, value_name = "DIR")]
    output: Option<PathBuf>,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Fetches the results; `Ok(false)` when some task failed.
pub async fn run(args: ResultsArgs) -> anyhow::Result<bool> {
    let mut broker = Broker::connect(&args.broker).await?;
    let status = broker
        .issuer
        .get_status(WorkloadRequest {
            workload_id: args.id.clone(),
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    let mut sink = match args.output {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            ResultSink::Directory { dir, written: 0 }
        }
        // Task outputs are only printed if the reducer gave no end result,
        // which is known at the end: hold them until then.
        None if status.has_reducer => ResultSink::Held(Vec::new()),
        None => ResultSink::Stdout,
    };
    let mut failures = Vec::new();
    let end = fetch(&mut broker, &args.id, |task| match failure_reason(&task) {
        Some(failure) => {
            failures.push(failure);
            Ok(())
        }
        None => sink.task(task),
    })
    .await?;
    sink.finish(end.as_ref(), &failures)?;
    Ok(failures.is_empty())
}

/// Where successful task outputs go as they arrive.
#[derive(Debug)]
enum ResultSink {
    /// Each output on stdout followed by a newline.
    Stdout,
    /// Kept until the end result says whether they are to be printed.
    Held(Vec<TaskResult>),
    /// `task-NNNNNN.out` files in a directory.
    Directory { dir: PathBuf, written: usize },
}

impl ResultSink {
    fn task(&mut self, task: TaskResult) -> anyhow::Result<()> {
        match self {
            ResultSink::Stdout => print_output(&task),
            ResultSink::Held(tasks) => {
                tasks.push(task);
                Ok(())
            }
            ResultSink::Directory { dir, written } => {
                write_file(dir, &task_file_name(task.index), &task.output)?;
                *written += 1;
                Ok(())
            }
        }
    }

    fn finish(self, end: Option<&EndResult>, failures: &[String]) -> anyhow::Result<()> {
        let reduced = end.filter(|end| end.reduced);
        match self {
            ResultSink::Stdout => {}
            ResultSink::Held(tasks) => match reduced {
                Some(end) => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&end.output)?;
                    stdout.flush()?;
                }
                None => tasks.iter().try_for_each(print_output)?,
            },
            ResultSink::Directory { dir, written } => {
                let mut summary = format!("wrote {written} task outputs");
                if let Some(end) = reduced {
                    write_file(&dir, "result", &end.output)?;
                    summary.push_str(&format!(" and the end result ({} bytes)", end.output.len()));
                }
                summary.push_str(&format!(" to {}", dir.display()));
                if !failures.is_empty() {
                    let text: String = failures.iter().map(|line| format!("{line}\n")).collect();
                    write_file(&dir, "failures.txt", text.as_bytes())?;
                    summary.push_str(&format!(
                        "; {} tasks failed, see failures.txt",
                        failures.len()
                    ));
                }
                println!("{summary}");
            }
        }
        for failure in failures {
            eprintln!("{failure}");
        }
        Ok(())
    }
}

fn print_output(task: &TaskResult) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&task.output)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Streams `FetchResults`, handing each task result to `on_task` in task
/// order, and returns the end result (`None` if the broker sent none).
pub async fn fetch(
    broker: &mut Broker,
    id: &str,
    mut on_task: impl FnMut(TaskResult) -> anyhow::Result<()>,
) -> anyhow::Result<Option<EndResult>> {
    let mut stream = broker
        .issuer
        .fetch_results(WorkloadRequest {
            workload_id: id.to_owned(),
        })
        .await
        .map_err(|status| broker.error(status))?
        .into_inner();
    let mut end = None;
    while let Some(item) = stream
        .message()
        .await
        .map_err(|status| broker.error(status))?
    {
        match item.item {
            Some(Item::Task(task)) => on_task(task)?,
            Some(Item::End(result)) => end = Some(result),
            None => {}
        }
    }
    Ok(end)
}

/// `task N failed: <status>` for a task that did not succeed.
fn failure_reason(task: &TaskResult) -> Option<String> {
    match status_from_wire(task.status.as_ref()) {
        Ok(status) if status.is_ok() => None,
        Ok(status) => Some(format!("task {} failed: {status}", task.index)),
        Err(_) => Some(format!("task {} failed: no result", task.index)),
    }
}

/// `task-000042.out`: zero-padded so the files list in task order.
fn task_file_name(index: u32) -> String {
    format!("task-{index:06}.out")
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::status_to_wire;
    use wasmgrid_runtime::Status;

    use super::*;

    fn task(index: u32, status: Option<Status>, output: &[u8]) -> TaskResult {
        TaskResult {
            index,
            status: status.as_ref().map(status_to_wire),
            output: output.to_vec(),
            usage: None,
        }
    }

    #[test]
    fn failed_and_missing_results_are_named() {
        assert_eq!(failure_reason(&task(0, Some(Status::Ok), b"1")), None);
        assert_eq!(
            failure_reason(&task(3, Some(Status::OutOfFuel), b"")).as_deref(),
            Some("task 3 failed: out of fuel")
        );
        assert_eq!(
            failure_reason(&task(4, None, b"")).as_deref(),
            Some("task 4 failed: no result")
        );
        assert_eq!(task_file_name(42), "task-000042.out");
    }

    #[test]
    fn a_directory_gets_outputs_result_and_failures() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().to_path_buf();
        let mut sink = ResultSink::Directory {
            dir: out.clone(),
            written: 0,
        };
        sink.task(task(0, Some(Status::Ok), b"7")).expect("written");
        let failures = vec!["task 1 failed: exit code 2".to_owned()];
        let end = EndResult {
            output: b"7".to_vec(),
            reduced: true,
        };
        sink.finish(Some(&end), &failures).expect("finished");
        assert_eq!(
            std::fs::read(out.join("task-000000.out")).expect("out"),
            b"7"
        );
        assert!(!out.join("task-000001.out").exists());
        assert_eq!(std::fs::read(out.join("result")).expect("result"), b"7");
        assert_eq!(
            std::fs::read_to_string(out.join("failures.txt")).expect("failures"),
            "task 1 failed: exit code 2\n"
        );
    }
}
