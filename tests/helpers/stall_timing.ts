/** Sharding timings of the stalled-writer test and its fixture (3 s lease, 0.5 s renew, 2 s deadline). */
export const STALL_TIMING = {
  leaseDurationMs: 3_000,
  renewIntervalMs: 500,
  renewDeadlineMs: 2_000,
};
