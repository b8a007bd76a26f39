/* Phone numbers: the recipient's local time from the E.164 country code, for calling hours.
 *
 * The table covers +1 (US Eastern time, the most populous zone of the NANP; DST by US rules),
 * +44, +49, +33 (EU summer time rules), +91, +65, +971 (no DST) and +61 (Sydney, Australian
 * DST). Countries not in the table have no known offset: callers decide (we treat them as UTC
 * and log it). */
#ifndef PL_PHONE_H
#define PL_PHONE_H

#include <stdint.h>

/* Minutes east of UTC at unix_ms for the number's country. 0 and PL_OK, or PL_ERR_NOTFOUND when
 * the country code is not in the table (*offset_min is then 0). */
int pl_phone_utc_offset(const char *e164, int64_t unix_ms, int *offset_min);

/* 1 if the recipient's local hour at unix_ms is within [start_hour, end_hour) (a window may
 * wrap past midnight, e.g. 20..8). start == end means always allowed. */
int pl_phone_within_hours(const char *e164, int64_t unix_ms, int start_hour, int end_hour);

/* The earliest time ≥ unix_ms at which the window is open (unix_ms itself when it already is). */
int64_t pl_phone_next_window(const char *e164, int64_t unix_ms, int start_hour, int end_hour);

#endif
