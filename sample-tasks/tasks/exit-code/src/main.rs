//! Exits with the code given as input (decimal `i32` text, surrounding
//! whitespace allowed), to test how the host reports exit codes, including
//! 0, large and negative ones.

use std::io::{self, Read};
use std::process;

use wasmgrid_sdk::failure::EXIT_INVALID_INPUT;

fn main() {
    let mut input = String::new();
    if let Err(error) = io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read input: {error}");
        process::exit(EXIT_INVALID_INPUT);
    }
    match input.trim().parse::<i32>() {
        Ok(code) => process::exit(code),
        Err(error) => {
            eprintln!("invalid input: {error}");
            process::exit(EXIT_INVALID_INPUT);
        }
    }
}
