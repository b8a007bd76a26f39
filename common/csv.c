#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "error.h"

void pl_csv_init(pl_csv *c, const char *data, size_t len)
{
    memset(c, 0, sizeof(*c));
    c->p = data;
    c->end = data + len;
    c->line = 1;
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        c->p += 3;
}

void pl_csv_free(pl_csv *c)
{
    free(c->fields);
    free(c->lens);
    free(c->offs);
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

static int put(pl_csv *c, char ch)
{
    if (c->buflen == c->bufcap) {
        size_t cap = c->bufcap != 0 ? c->bufcap * 2 : 256;
        char *b = realloc(c->buf, cap);
        if (b == NULL)
            return PL_ERR_NOMEM;
        c->buf = b;
        c->bufcap = cap;
    }
    c->buf[c->buflen++] = ch;
    return PL_OK;
}

static int start_field(pl_csv *c)
{
    if (c->nfields == c->fcap) {
        if (c->fcap == PL_CSV_MAX_FIELDS)
            return PL_ERR_TOOBIG;
        int cap = c->fcap != 0 ? c->fcap * 2 : 16;
        if (cap > PL_CSV_MAX_FIELDS)
            cap = PL_CSV_MAX_FIELDS;
        char **f = realloc(c->fields, (size_t)cap * sizeof(*f));
        if (f != NULL)
            c->fields = f;
        size_t *l = realloc(c->lens, (size_t)cap * sizeof(*l));
        if (l != NULL)
            c->lens = l;
        size_t *o = realloc(c->offs, (size_t)cap * sizeof(*o));
        if (o != NULL)
            c->offs = o;
        if (f == NULL || l == NULL || o == NULL)
            return PL_ERR_NOMEM;
        c->fcap = cap;
    }
    c->offs[c->nfields] = c->buflen;
    return PL_OK;
}

/* At a line ending: consumes CRLF, LF or CR and counts the line. */
static void eat_eol(pl_csv *c)
{
    if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
        c->p++;
    c->p++;
    c->line++;
}

static int is_eol(char ch)
{
    return ch == '\r' || ch == '\n';
}

int pl_csv_next(pl_csv *c, char *err, size_t errcap)
{
    while (c->p < c->end && is_eol(*c->p))
        eat_eol(c);
    if (c->p >= c->end)
        return 0;
    c->nfields = 0;
    c->buflen = 0;
    c->record_line = c->line;
    for (;;) {
        int rc = start_field(c);
        if (rc == PL_ERR_TOOBIG) {
            snprintf(err, errcap, "line %ld: more than %d fields", c->record_line,
                     PL_CSV_MAX_FIELDS);
            return rc;
        }
        if (rc != PL_OK)
            return snprintf(err, errcap, "out of memory"), rc;
        if (c->p < c->end && *c->p == '"') {
            long opened = c->line;
            c->p++;
            for (;;) {
                if (c->p >= c->end) {
                    snprintf(err, errcap, "line %ld: field %d opens a quote that is never closed",
                             opened, c->nfields + 1);
                    return PL_ERR_INVALID;
                }
                char ch = *c->p++;
                if (ch == '"') {
                    if (c->p < c->end && *c->p == '"')
                        c->p++; /* "" is one quote */
                    else
                        break;
                } else if (ch == '\n' || (ch == '\r' && (c->p >= c->end || *c->p != '\n'))) {
                    c->line++;
                }
                if (put(c, ch) != PL_OK)
                    return snprintf(err, errcap, "out of memory"), PL_ERR_NOMEM;
            }
            if (c->p < c->end && *c->p != ',' && !is_eol(*c->p)) {
                snprintf(err, errcap,
                         "line %ld: field %d has text after its closing quote (write a quote "
                         "inside a quoted field as \"\")",
                         c->line, c->nfields + 1);
                return PL_ERR_INVALID;
            }
        } else {
            while (c->p < c->end && *c->p != ',' && !is_eol(*c->p))
                if (put(c, *c->p++) != PL_OK)
                    return snprintf(err, errcap, "out of memory"), PL_ERR_NOMEM;
        }
        c->lens[c->nfields] = c->buflen - c->offs[c->nfields];
        if (put(c, '\0') != PL_OK)
            return snprintf(err, errcap, "out of memory"), PL_ERR_NOMEM;
        c->nfields++;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end)
            eat_eol(c);
        break;
    }
    for (int i = 0; i < c->nfields; i++)
        c->fields[i] = c->buf + c->offs[i];
    c->record_number++;
    return 1;
}
