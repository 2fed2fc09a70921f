/* Standard Webhooks signing: secrets in the whsec_BASE64 form (24 to 64 key bytes), signatures
 * "v1,BASE64(HMAC-SHA256(key, id.timestamp.body))". HMAC and base64 come from OpenSSL. */
#ifndef GW_SIGN_H
#define GW_SIGN_H

#include <stddef.h>

#define GW_KEY_MIN 24
#define GW_KEY_MAX 64

/* Decodes "whsec_…" into key (GW_KEY_MAX bytes); returns the key length, or -1 if malformed or
 * not 24 to 64 bytes. */
int gw_secret_decode(const char *secret, unsigned char *key);

/* Writes a new random secret "whsec_…" (32 key bytes) into out (at least 64 bytes). 0 or -1. */
int gw_secret_generate(char *out, size_t outlen);

/* Writes "v1,BASE64SIG" for id, timestamp and body into out (at least 64 bytes). 0 or -1. */
int gw_sign(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
            const char *body, size_t body_len, char *out, size_t outlen);

/* Lower-case hex HMAC-SHA256 of data with key, into out (at least 65 bytes). 0 or -1. */
int gw_hmac_hex(const unsigned char *key, size_t keylen, const char *data, size_t len, char *out);

/* Lower-case hex of the n bytes in, into out (at least 2n + 1 bytes, NUL-terminated). */
void gw_hex(const unsigned char *in, size_t n, char *out);

/* SHA-256 of data into out (32 bytes). */
void gw_sha256(const void *data, size_t len, unsigned char *out);

/* Constant-time comparison of n bytes; 1 when equal. */
int gw_const_eq_n(const unsigned char *a, const unsigned char *b, size_t n);

/* Constant-time comparison of two NUL-terminated strings; 1 when equal. */
int gw_const_eq(const char *a, const char *b);

/* Fills buf with len random bytes; 0 or -1. */
int gw_random(void *buf, size_t len);

#endif
