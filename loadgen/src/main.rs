//! Load generator for the order matching service.
//!
//! Not written yet: it is a later issue's work. Until then the service is
//! loaded with `wrk` and the Lua scripts of `../shared/bench/`, as
//! README.md's Benchmarks section shows (`scripts/bench_lib.sh` runs them
//! side by side). This binary says so and exits non-zero rather than pretend.

fn main() {
    eprintln!(
        "loadgen: not written yet; load the service with wrk and the scripts in \
         ../shared/bench/ (README.md, Benchmarks)"
    );
    std::process::exit(2);
}
