/* Retry decisions for failed dial attempts (Bolna's retry_config), one copy for every service.
 *
 * retry_config: {enabled [false], max_retries [3, 1..3], retry_on_statuses [no-answer, busy,
 * failed], retry_on_voicemail [false], retry_intervals_minutes [30, 60, 120]}.
 * Attempt 0 is the first dial; attempt k (k ≥ 1) is the k-th retry.
 */
#ifndef PL_RETRY_H
#define PL_RETRY_H

#include <stdint.h>

#include "state.h"

/* Given the outcome of attempt `attempt` (a status such as PL_ST_NO_ANSWER, or PL_ST_COMPLETED
 * with voicemail=1 for a machine), returns 1 and the delay before the next attempt in
 * *delay_ms when a retry is due, else 0. retry_config_json may be NULL (no retries).
 * minute_ms is the length of the configuration's "minute": 60000, except where a test or demo
 * compresses time (PL_RETRY_MINUTE_MS). */
int pl_retry_due(const char *retry_config_json, int attempt, pl_status outcome, int voicemail,
                 int64_t minute_ms, int64_t *delay_ms);

#endif
