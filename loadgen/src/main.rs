//! Load generator for the order matching service.
//!
//! The HTTP front is not built yet, so there is nothing on the wire to load;
//! until then this binary says so and exits non-zero rather than pretend.

fn main() {
    eprintln!("loadgen: the HTTP front is not built yet; see the project's issues");
    std::process::exit(2);
}
