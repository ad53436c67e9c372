//! Hostile: executes the wasm `unreachable` instruction, the plainest trap,
//! with nothing printed first.

fn main() {
    core::arch::wasm32::unreachable();
}
