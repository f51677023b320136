//! What the seeded simulation tests share: the seed range from the environment.

/// `SIM_SEED_START` (default 0) and `SIM_SEEDS` (default 1000): CI derives the start
/// from the commit, so every run tries schedules no earlier run tried.
pub fn seed_range() -> (u64, u64) {
    (env_u64("SIM_SEED_START", 0), env_u64("SIM_SEEDS", 1000))
}

/// A number from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
