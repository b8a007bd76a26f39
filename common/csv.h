/* CSV records (RFC 4180) read one at a time from text held whole in memory.
 *
 * - Fields are separated by ',' and records by CRLF, LF or a lone CR (spreadsheets write all
 *   three); a final line ending is optional.
 * - A field that starts with '"' is quoted: it may hold ',', '"' written as "", and line breaks
 *   (kept verbatim). A quote that is never closed, or text after a closing quote other than a
 *   separator or a line end, is an error naming the line. A '"' inside an unquoted field is
 *   kept as an ordinary character (lenient, as most readers are).
 * - A UTF-8 byte order mark at the very start is skipped; empty lines are skipped (a line of
 *   only commas is a record of empty fields, not an empty line).
 * - Binary-safe: fields are returned with their lengths (and NUL-terminated for convenience).
 *
 * Ownership: the reader borrows the input (keep it alive) and owns the field storage, which is
 * valid until the next pl_csv_next or pl_csv_free. Memory grows with the largest record only.
 */
#ifndef PL_CSV_H
#define PL_CSV_H

#include <stddef.h>

#define PL_CSV_MAX_FIELDS 1024 /* fields in one record; more is PL_ERR_TOOBIG */

typedef struct {
    /* The current record, after pl_csv_next returned 1. */
    int nfields;
    char **fields;      /* fields[i] is NUL-terminated ... */
    size_t *lens;       /* ... and lens[i] bytes long (it may hold NULs) */
    long record_line;   /* the line (1-based) where the record starts */
    long record_number; /* 1 for the first record returned, empty lines not counted */

    /* Private. */
    const char *p, *end;
    long line;
    size_t *offs;
    int fcap;
    char *buf;
    size_t bufcap, buflen;
} pl_csv;

/* Starts reading data[0..len). */
void pl_csv_init(pl_csv *c, const char *data, size_t len);

/* Reads the next record: 1 (the record is in c), 0 at the end of the input, or a negative
 * pl_err (PL_ERR_INVALID malformed, PL_ERR_TOOBIG too many fields, PL_ERR_NOMEM) with the
 * reason, starting with "line N:", in err. After an error the reader must not be advanced. */
int pl_csv_next(pl_csv *c, char *err, size_t errcap);

void pl_csv_free(pl_csv *c);

#endif
