//! Embedding the sandbox: run one task under hard limits and read what it
//! used. `cargo run -p wasmgrid-runtime --example embed --
//! target/wasm32-wasip1/release/primes.wasm '{"start":0,"end":1000000}'`
use std::time::Duration;

use wasmgrid_runtime::{Limits, Runtime, RuntimeConfig, TaskModule};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: embed TASK.wasm [INPUT]")?;
    let input = std::env::args().nth(2).unwrap_or_default();
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let module = TaskModule::new(std::fs::read(&path)?);
    let limits = Limits {
        memory_bytes: 64 << 20,
        fuel: 10_000_000_000,
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    };
    let outcome = runtime.run_blocking(&module, input.into_bytes(), &limits, 7)?;
    println!("status  {}", outcome.status);
    println!("output  {}", String::from_utf8_lossy(&outcome.output));
    println!(
        "fuel    {} (the same on every machine)",
        outcome.usage.fuel_consumed
    );
    println!("memory  {} bytes at peak", outcome.usage.peak_memory_bytes);
    Ok(())
}
