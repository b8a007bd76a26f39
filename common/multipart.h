/* multipart/form-data bodies (RFC 7578 over RFC 2046): the boundary of a Content-Type header,
 * and the parts of a body held whole in memory.
 *
 * Strict where the RFCs are: every delimiter is CRLF "--" boundary (the CRLF before it belongs
 * to the delimiter, not to the part), part headers end with CRLF, and the body must end with the
 * close delimiter "--" boundary "--"; anything else is an error naming what is wrong. Part
 * contents are binary-safe: they are (pointer, length) views into the caller's body and may
 * hold NULs, bare CR or LF, and "--" lines that are not the boundary.
 *
 * Ownership: pl_multipart_parse fills a pl_multipart whose names and filenames it allocates
 * (pl_multipart_free releases them, also after a failure); part data points into `body`, which
 * the caller keeps alive and unchanged while it reads the parts.
 */
#ifndef PL_MULTIPART_H
#define PL_MULTIPART_H

#include <stddef.h>

#define PL_MULTIPART_MAX_PARTS    64   /* more parts: PL_ERR_TOOBIG */
#define PL_MULTIPART_MAX_HEADERS  8192 /* bytes of one part's header block: PL_ERR_TOOBIG */
#define PL_MULTIPART_MAX_BOUNDARY 70   /* RFC 2046 */

typedef struct {
    char *name;         /* Content-Disposition name="...", unquoted; never NULL */
    char *filename;     /* filename="...", unquoted, or NULL when the part is not a file */
    char *content_type; /* the part's Content-Type, or NULL */
    const char *data;   /* the content, inside the caller's body; not NUL-terminated */
    size_t len;
} pl_mpart;

typedef struct {
    pl_mpart parts[PL_MULTIPART_MAX_PARTS];
    int nparts;
} pl_multipart;

/* Copies the boundary parameter of a multipart/form-data Content-Type value (quoted or token,
 * parameter name in any case) into out. 0, or PL_ERR_INVALID with the reason in err when the
 * media type is not multipart/form-data or the boundary is absent, empty or over 70 chars. */
int pl_multipart_boundary(const char *content_type, char *out, size_t cap, char *err,
                          size_t errcap);

/* Splits body into its parts. 0, or PL_ERR_INVALID / PL_ERR_TOOBIG / PL_ERR_NOMEM with the
 * reason in err. Every part must carry Content-Disposition: form-data with a name. */
int pl_multipart_parse(const char *body, size_t len, const char *boundary, pl_multipart *out,
                       char *err, size_t errcap);

/* The idx-th part (0 first) named `name`, or NULL. Repeated fields share a name. */
const pl_mpart *pl_multipart_get(const pl_multipart *m, const char *name, int idx);

/* Releases what parse allocated; safe on a zeroed or partly filled pl_multipart. */
void pl_multipart_free(pl_multipart *m);

#endif
