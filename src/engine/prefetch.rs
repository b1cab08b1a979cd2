//! A cache hint: start loading the line holding a value without waiting
//! for it, so that several commands' misses overlap instead of queueing.

/// Asks for the cache line of `value` in every cache level. Only a hint:
/// it cannot fault and changes no later load's result.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}
