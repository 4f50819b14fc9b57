/* SHA-256 (FIPS 180-4), for the name of a handed-off DEL request. */
#ifndef NETSCHED_CNI_SHA256_H
#define NETSCHED_CNI_SHA256_H

#include <stddef.h>

/* The digest of data as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t n, char hex[65]);

#endif
