/* Hashes, MACs and random tokens (OpenSSL). */
#ifndef PL_CRYPTO_H
#define PL_CRYPTO_H

#include <stddef.h>

/* Lowercase hex SHA-256 of data into out (65 bytes). */
void pl_sha256_hex(const void *data, size_t len, char out[65]);

/* Lowercase hex HMAC-SHA256(key, data) into out (65 bytes). */
void pl_hmac_sha256_hex(const void *key, size_t klen, const void *data, size_t len, char out[65]);

/* nbytes of CSPRNG output as hex into out (2*nbytes+1). 0 or PL_ERR_IO. */
int pl_random_hex(char *out, size_t nbytes);

/* A random (version 4) UUID in its dashed text form into out (37 bytes). 0 or PL_ERR_IO. */
int pl_uuid_v4(char out[37]);

/* Constant-time comparison of two NUL-terminated strings. 1 if equal. */
int pl_secure_equal(const char *a, const char *b);

#endif
