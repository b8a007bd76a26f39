/* Syntax checks for values clients send: UUIDs, E.164 numbers, URLs, ISO 8601 timestamps. */
#ifndef PL_VALIDATE_H
#define PL_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* 1 for the canonical 8-4-4-4-12 hex form (either case). */
int pl_is_uuid(const char *s);

/* An id given as a dashed UUID or as its 32 hex digits (Bolna writes some ids that way), in
 * either case, as the lowercase dashed form into out. 0, or -1 when it is neither. */
int pl_uuid_canon(const char *s, char out[37]);

/* 1 for E.164: '+', a non-zero digit, then 6 to 14 more digits (7..15 in all). */
int pl_is_e164(const char *s);

/* 1 for an absolute http:// or https:// URL with a non-empty host and no whitespace. */
int pl_is_http_url(const char *s);

/* Parses ISO 8601 / RFC 3339 date-time: "YYYY-MM-DDTHH:MM[:SS[.fff]]" followed by "Z", an offset
 * "+05:30" / "+0530" / "+05", or nothing (taken as UTC, as Bolna's own example sends). A space
 * may replace the 'T'. Returns 0 and Unix ms in *out, or PL_ERR_INVALID. */
int pl_parse_iso8601(const char *s, int64_t *out);

/* 1 if the len bytes are well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) and contain no NUL. Postgres rejects anything else in text columns. */
int pl_is_utf8(const char *s, size_t len);

/* Deepest nesting of JSON arrays/objects in text (strings skipped). Parsers recurse per level:
 * refuse deep documents before parsing them. */
int pl_json_depth(const char *s, size_t len);

/* Parses a whole decimal integer within [min, max] (no sign games, no trailing text): the
 * checked replacement for atoi on values read from Redis jobs or database columns. Returns 0 and
 * *out, or PL_ERR_INVALID (then *out = fallback). */
int pl_parse_int(const char *s, int min, int max, int fallback, int *out);

#endif
