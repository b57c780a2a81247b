//! not-a-plugin (test fixture): a WASI command component, valid WebAssembly
//! of another world, that trainbox must refuse with a clear error.

fn main() {
    println!("I am a command, not a trainbox plugin");
}
