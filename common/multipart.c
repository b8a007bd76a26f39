#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "multipart.h"

/* Longest parameter value kept (a filename, a field name). */
#define MAX_VALUE 1024

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_ws(const char *p)
{
    while (is_ws(*p))
        p++;
    return p;
}

/* Finds parameter `want` (case-insensitive) among the "; name=value" pairs of a header value
 * that starts at p (just after the media or disposition type). Values are tokens or quoted
 * strings; in a quoted string a backslash escapes only '"' and '\' (browsers send Windows paths
 * with bare backslashes). 1 found (copied into out), 0 absent, PL_ERR_INVALID malformed,
 * PL_ERR_TOOBIG value longer than cap - 1. */
static int param_get(const char *p, const char *want, char *out, size_t cap)
{
    int found = 0;
    for (;;) {
        p = skip_ws(p);
        if (*p == '\0')
            return found;
        if (*p != ';')
            return PL_ERR_INVALID;
        p = skip_ws(p + 1);
        if (*p == '\0') /* a trailing ';' is harmless */
            return found;
        const char *name = p;
        while (*p != '\0' && *p != '=' && *p != ';' && !is_ws(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        p = skip_ws(p);
        if (nlen == 0 || *p != '=')
            return PL_ERR_INVALID;
        p = skip_ws(p + 1);
        int match = !found && strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
        size_t n = 0;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return PL_ERR_INVALID;
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                if (match && n + 1 >= cap)
                    return PL_ERR_TOOBIG;
                if (match)
                    out[n++] = *p;
            }
            p++;
        } else {
            const char *v = p;
            while (*p != '\0' && *p != ';' && !is_ws(*p))
                p++;
            n = (size_t)(p - v);
            if (n == 0)
                return PL_ERR_INVALID;
            if (match && n >= cap)
                return PL_ERR_TOOBIG;
            if (match)
                memcpy(out, v, n);
        }
        if (match) {
            out[n] = '\0';
            found = 1;
        }
    }
}

/* RFC 2046 bchars, space excepted (handled by the caller: allowed but not last). */
static int bchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=?", c) != NULL;
}

int pl_multipart_boundary(const char *content_type, char *out, size_t cap, char *err, size_t errcap)
{
    static const char type[] = "multipart/form-data";
    char b[PL_MULTIPART_MAX_BOUNDARY + 2];
    if (content_type == NULL)
        return fail(err, errcap, PL_ERR_INVALID, "Content-Type is missing");
    const char *p = skip_ws(content_type);
    if (strncasecmp(p, type, sizeof(type) - 1) != 0 ||
        (p[sizeof(type) - 1] != '\0' && p[sizeof(type) - 1] != ';' && !is_ws(p[sizeof(type) - 1])))
        return fail(err, errcap, PL_ERR_INVALID, "Content-Type is not multipart/form-data");
    int rc = param_get(p + sizeof(type) - 1, "boundary", b, sizeof(b));
    if (rc == PL_ERR_TOOBIG || (rc == 1 && strlen(b) > PL_MULTIPART_MAX_BOUNDARY))
        return fail(err, errcap, PL_ERR_INVALID,
                    "Content-Type: the boundary is longer than %d characters",
                    PL_MULTIPART_MAX_BOUNDARY);
    if (rc < 0)
        return fail(err, errcap, PL_ERR_INVALID, "Content-Type: malformed parameters");
    if (rc == 0 || b[0] == '\0')
        return fail(err, errcap, PL_ERR_INVALID, "Content-Type: the boundary parameter is missing");
    size_t n = strlen(b);
    for (size_t i = 0; i < n; i++)
        if (!bchar(b[i]) && !(b[i] == ' ' && i + 1 < n))
            return fail(err, errcap, PL_ERR_INVALID,
                        "Content-Type: the boundary holds a character RFC 2046 does not allow");
    if (n + 1 > cap)
        return fail(err, errcap, PL_ERR_INVALID, "Content-Type: the boundary is too long");
    memcpy(out, b, n + 1);
    return PL_OK;
}

/* Reads one header line [p, eol) of part `idx` into the part. */
static int part_header(pl_mpart *part, int idx, const char *line, size_t n, char *err,
                       size_t errcap)
{
    char buf[PL_MULTIPART_MAX_HEADERS + 1], val[MAX_VALUE];
    memcpy(buf, line, n);
    buf[n] = '\0';
    if (memchr(line, '\0', n) != NULL)
        return fail(err, errcap, PL_ERR_INVALID, "part %d: a header holds a NUL byte", idx + 1);
    char *colon = strchr(buf, ':');
    if (colon == NULL || colon == buf)
        return fail(err, errcap, PL_ERR_INVALID, "part %d: header line without a name and ':'",
                    idx + 1);
    *colon = '\0';
    const char *v = skip_ws(colon + 1);
    if (strcasecmp(buf, "Content-Type") == 0) {
        free(part->content_type);
        size_t vl = strlen(v);
        while (vl > 0 && is_ws(v[vl - 1]))
            vl--;
        part->content_type = strndup(v, vl);
        return part->content_type != NULL ? PL_OK : PL_ERR_NOMEM;
    }
    if (strcasecmp(buf, "Content-Disposition") != 0)
        return PL_OK; /* other part headers carry nothing a form field needs */
    if (strncasecmp(v, "form-data", 9) != 0 || (v[9] != '\0' && v[9] != ';' && !is_ws(v[9])))
        return fail(err, errcap, PL_ERR_INVALID, "part %d: Content-Disposition is not form-data",
                    idx + 1);
    int rc = param_get(v + 9, "name", val, sizeof(val));
    if (rc <= 0 || val[0] == '\0')
        return fail(err, errcap, rc == PL_ERR_TOOBIG ? PL_ERR_TOOBIG : PL_ERR_INVALID,
                    "part %d: Content-Disposition %s", idx + 1,
                    rc == PL_ERR_TOOBIG    ? "has a name that is too long"
                    : rc == PL_ERR_INVALID ? "is malformed"
                                           : "has no name");
    free(part->name);
    if ((part->name = strdup(val)) == NULL)
        return PL_ERR_NOMEM;
    rc = param_get(v + 9, "filename", val, sizeof(val));
    if (rc < 0)
        return fail(err, errcap, rc, "part %d (%s): the filename is malformed or too long", idx + 1,
                    part->name);
    free(part->filename);
    part->filename = NULL;
    if (rc == 1 && (part->filename = strdup(val)) == NULL)
        return PL_ERR_NOMEM;
    return PL_OK;
}

/* After a delimiter's boundary: 1 close delimiter ("--"), 0 ordinary (LWSP* CRLF, *after set
 * past it), -1 neither (the boundary text was only a prefix of a content line). */
static int delimiter_end(const char *p, const char *end, const char **after)
{
    if (end - p >= 2 && p[0] == '-' && p[1] == '-')
        return 1;
    while (p < end && is_ws(*p))
        p++;
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
        *after = p + 2;
        return 0;
    }
    return -1;
}

int pl_multipart_parse(const char *body, size_t len, const char *boundary, pl_multipart *out,
                       char *err, size_t errcap)
{
    char delim[PL_MULTIPART_MAX_BOUNDARY + 5]; /* CRLF "--" boundary */
    size_t blen = strlen(boundary);
    memset(out, 0, sizeof(*out));
    if (blen == 0 || blen > PL_MULTIPART_MAX_BOUNDARY)
        return fail(err, errcap, PL_ERR_INVALID, "the boundary must be 1 to %d characters",
                    PL_MULTIPART_MAX_BOUNDARY);
    size_t dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    const char *end = body + len;

    /* The first delimiter may open the body (no CRLF before it) or follow a preamble. */
    const char *p = NULL;
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
        p = body + dlen - 2;
    for (const char *s = body; p == NULL;) {
        const char *hit = memmem(s, (size_t)(end - s), delim, dlen);
        if (hit == NULL)
            return fail(err, errcap, PL_ERR_INVALID, "no boundary line '--%s' found in the body",
                        boundary);
        p = hit + dlen;
        const char *after;
        if (delimiter_end(p, end, &after) < 0) {
            s = hit + 1;
            p = NULL;
        }
    }

    for (;;) {
        const char *after = NULL;
        int kind = delimiter_end(p, end, &after);
        if (kind == 1)
            return PL_OK; /* the close delimiter; an epilogue after it is ignored */
        if (kind < 0)
            return fail(err, errcap, PL_ERR_INVALID,
                        p == end ? "the body ends without the closing boundary '--%s--'"
                                 : "a boundary line '--%s' is not followed by CRLF",
                        boundary);
        if (out->nparts == PL_MULTIPART_MAX_PARTS)
            return fail(err, errcap, PL_ERR_TOOBIG, "more than %d parts", PL_MULTIPART_MAX_PARTS);
        int idx = out->nparts++;
        pl_mpart *part = &out->parts[idx];
        p = after;

        /* Header lines up to the empty line. */
        const char *hstart = p;
        for (;;) {
            const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
            if (eol == NULL)
                return fail(err, errcap, PL_ERR_INVALID,
                            "part %d: the headers do not end with an empty CRLF line", idx + 1);
            if (eol - hstart > PL_MULTIPART_MAX_HEADERS)
                return fail(err, errcap, PL_ERR_TOOBIG, "part %d: headers over %d bytes", idx + 1,
                            PL_MULTIPART_MAX_HEADERS);
            if (eol == p) {
                p = eol + 2;
                break;
            }
            int rc = part_header(part, idx, p, (size_t)(eol - p), err, errcap);
            if (rc != PL_OK)
                return rc == PL_ERR_NOMEM ? fail(err, errcap, rc, "out of memory") : rc;
            p = eol + 2;
        }
        if (part->name == NULL)
            return fail(err, errcap, PL_ERR_INVALID,
                        "part %d: no Content-Disposition: form-data header with a name", idx + 1);

        /* The content runs to the next CRLF "--" boundary that is a real delimiter. */
        const char *s = p;
        for (;;) {
            const char *hit = memmem(s, (size_t)(end - s), delim, dlen);
            if (hit == NULL)
                return fail(err, errcap, PL_ERR_INVALID,
                            "part '%s': the body ends without the closing boundary '--%s--'",
                            part->name, boundary);
            if (delimiter_end(hit + dlen, end, &after) >= 0) {
                part->data = p;
                part->len = (size_t)(hit - p);
                p = hit + dlen;
                break;
            }
            s = hit + 1;
        }
    }
}

const pl_mpart *pl_multipart_get(const pl_multipart *m, const char *name, int idx)
{
    for (int i = 0; i < m->nparts; i++)
        if (m->parts[i].name != NULL && strcmp(m->parts[i].name, name) == 0 && idx-- == 0)
            return &m->parts[i];
    return NULL;
}

void pl_multipart_free(pl_multipart *m)
{
    for (int i = 0; i < m->nparts; i++) {
        free(m->parts[i].name);
        free(m->parts[i].filename);
        free(m->parts[i].content_type);
    }
    memset(m, 0, sizeof(*m));
}
